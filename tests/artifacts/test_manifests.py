"""Every shipped Kubernetes manifest against the CRD it instantiates (issue 18): Higress's
WasmPlugins against Higress's CRD, the Istio resources against Istio's, read from the vendored
upstream schemas at ../shared/schemas/ (as CI has them; copied nowhere). Without that folder the
tests skip and say why."""
import glob
import os

import pytest
import yaml

import crd

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCHEMAS = os.path.join(ROOT, "..", "shared", "schemas")
CRD_FILES = ["istio-crds.yaml", "higress-wasmplugin-crd.yaml"]
# Where manifests live; envoy/envoy.yaml is an Envoy bootstrap, examples/ are plugin
# configurations (tests/examples.rs, tests/higress_console.rs).
MANIFEST_GLOBS = ["higress/*.yaml", "envoy/istio/*.yaml"]
NOT_MANIFESTS = {"higress/spec.yaml", "higress/console.yaml"}


def shipped_manifests():
    """(file, index, resource) for every YAML document with apiVersion and kind."""
    found = []
    for pattern in MANIFEST_GLOBS:
        for path in sorted(glob.glob(os.path.join(ROOT, pattern))):
            relative = os.path.relpath(path, ROOT)
            if relative in NOT_MANIFESTS:
                continue
            with open(path, encoding="utf-8") as source:
                documents = [d for d in yaml.safe_load_all(source) if d]
            assert documents and all("kind" in d for d in documents), relative
            found += [(relative, index, document) for index, document in enumerate(documents)]
    return found


@pytest.fixture(scope="module")
def crds():
    """{(group, kind): CRD} from the vendored files."""
    if not os.path.isdir(SCHEMAS):
        pytest.skip(f"{os.path.normpath(SCHEMAS)} is absent (CI has Istio's and Higress's CRDs "
                    "there; a clone of this repository alone does not)")
    found = {}
    for name in CRD_FILES:
        with open(os.path.join(SCHEMAS, name), encoding="utf-8") as source:
            for document in yaml.safe_load_all(source):
                if document and document.get("kind") == "CustomResourceDefinition":
                    spec = document["spec"]
                    found[(spec["group"], spec["names"]["kind"])] = document
    assert len(found) >= 6, sorted(found)
    return found


def schema_of(crds, resource):
    group, _, version = resource["apiVersion"].rpartition("/")
    definition = crds.get((group, resource["kind"]))
    assert definition, f"no CRD for {resource['apiVersion']} {resource['kind']}"
    served = {v["name"]: v for v in definition["spec"]["versions"] if v.get("served")}
    assert version in served, f"{resource['kind']} {version} not served: {sorted(served)}"
    return served[version]["schema"]["openAPIV3Schema"]


def manifest_errors(crds, resource):
    """The resource's fields against its CRD; apiVersion, kind and metadata are the API
    server's (only metadata.name is checked)."""
    body = {k: v for k, v in resource.items() if k not in ("apiVersion", "kind", "metadata")}
    found = crd.errors(schema_of(crds, resource), body)
    if not resource.get("metadata", {}).get("name"):
        found.append("metadata.name is missing")
    return found


MANIFESTS = shipped_manifests()


@pytest.mark.parametrize("file,index,resource", MANIFESTS,
                         ids=[f"{f}#{i}:{r['kind']}" for f, i, r in MANIFESTS])
def test_a_shipped_manifest_validates_against_its_crd(crds, file, index, resource):
    assert manifest_errors(crds, resource) == []


def test_every_manifest_directory_is_covered():
    files = {file for file, _, _ in MANIFESTS}
    assert files == {"higress/wasmplugin.yaml", "higress/wasmplugin-local.yaml",
                     "envoy/istio/envoyfilter.yaml", "envoy/istio/routes.yaml",
                     "envoy/istio/wasmplugin.yaml", "envoy/istio/wasmplugin-oci.yaml"}
    kinds = sorted({(r["apiVersion"], r["kind"]) for _, _, r in MANIFESTS})
    assert len(kinds) == 6, kinds


def test_the_validator_refuses_what_the_api_server_would(crds):
    """Mistakes the API server refuses, on a copy of a shipped WasmPlugin each: the validator
    must see them, or the tests above prove nothing."""
    [higress] = [r for f, _, r in MANIFESTS if f == "higress/wasmplugin.yaml"]
    [istio_routes] = [r for f, _, r in MANIFESTS
                      if f == "envoy/istio/routes.yaml" and r["kind"] == "VirtualService"]

    def broken(resource, change):
        copy = yaml.safe_load(yaml.safe_dump(resource))
        change(copy["spec"])
        return manifest_errors(crds, copy)

    # The console spec's phase name is not the CRD's.
    assert broken(higress, lambda s: s.update(phase="default"))
    assert broken(higress, lambda s: s.update(priority="250"))
    assert broken(higress, lambda s: s.update(match_rules=[]))
    assert broken(higress, lambda s: s["matchRules"][0].update(ingress="masgod"))
    assert not broken(higress, lambda s: s["defaultConfig"].update(anything={"goes": 1}))
    assert broken(istio_routes, lambda s: s["http"][0].update(rout=[]))
    v1 = dict(higress, apiVersion="extensions.higress.io/v1")
    with pytest.raises(AssertionError, match="not served"):
        manifest_errors(crds, v1)
