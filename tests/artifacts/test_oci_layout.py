"""`make oci`'s layouts (scripts/oci_layout.py, issue 18): index → manifest → blobs, each blob
of the size and digest its descriptor says, Higress's media types in Higress's order, the last
layer a tar.gz holding exactly plugin.wasm, the module itself; the same inputs give the same
bytes. The real modules are checked when dist/ has them (`make build`)."""
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import oci_layout  # noqa: E402

SPEC = os.path.join(ROOT, "higress", "spec.yaml")
README = os.path.join(ROOT, "higress", "README.md")
MODULES = {"ai-provider-balancer": ("ai-load-balancer.wasm", "higress/README.md"),
           "ai-load-balancer-envoy": ("ai-load-balancer-envoy.wasm", "envoy/istio/README.md")}


def blob(layout, descriptor):
    """The blob a descriptor names, checked against its digest and size."""
    algorithm, digest = descriptor["digest"].split(":")
    assert algorithm == "sha256"
    with open(os.path.join(layout, "blobs", "sha256", digest), "rb") as source:
        content = source.read()
    assert hashlib.sha256(content).hexdigest() == digest
    assert len(content) == descriptor["size"]
    return content


def check_layout(layout, wasm, spec, readme, tag):
    """Walks the layout from oci-layout and index.json down; returns the manifest."""
    with open(os.path.join(layout, "oci-layout")) as source:
        assert json.load(source) == {"imageLayoutVersion": "1.0.0"}
    with open(os.path.join(layout, "index.json")) as source:
        index = json.load(source)
    assert index["schemaVersion"] == 2
    [entry] = index["manifests"]
    assert entry["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert entry["annotations"] == {"org.opencontainers.image.ref.name": tag}
    manifest = json.loads(blob(layout, entry))
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == entry["mediaType"]
    assert manifest["config"]["mediaType"] == "application/vnd.unknown.config.v1+json"
    assert blob(layout, manifest["config"]) == b"{}"
    layers = manifest["layers"]
    assert [(layer["mediaType"], layer["annotations"]["org.opencontainers.image.title"])
            for layer in layers] == [
        ("application/vnd.module.wasm.spec.v1+yaml", "spec.yaml"),
        ("application/vnd.module.wasm.doc.v1+markdown", "README.md"),
        ("application/vnd.oci.image.layer.v1.tar+gzip", "plugin.tar.gz"),
    ]
    assert blob(layout, layers[0]) == spec
    assert blob(layout, layers[1]) == readme
    plugin = blob(layout, layers[-1])
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(plugin))) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["plugin.wasm"] and members[0].isfile()
        assert tar.extractfile(members[0]).read() == wasm
    # Nothing in blobs/ that the manifest does not name.
    named = {d["digest"].split(":")[1] for d in [entry, manifest["config"], *layers]}
    assert set(os.listdir(os.path.join(layout, "blobs", "sha256"))) == named
    return manifest


def read(path):
    with open(path, "rb") as source:
        return source.read()


def test_a_layout_holds_the_module_in_higress_format(tmp_path):
    wasm = tmp_path / "module.wasm"
    wasm.write_bytes(b"\0asm\1\0\0\0" + bytes(range(256)) * 64)
    layout = str(tmp_path / "layout")
    oci_layout.write_layout(layout, str(wasm), SPEC, README, "0.1.0")
    check_layout(layout, wasm.read_bytes(), read(SPEC), read(README), "0.1.0")


def test_the_same_inputs_give_the_same_digests(tmp_path):
    wasm = tmp_path / "module.wasm"
    wasm.write_bytes(b"\0asm\1\0\0\0")
    first, second = str(tmp_path / "first"), str(tmp_path / "second")
    oci_layout.write_layout(first, str(wasm), SPEC, README, "1")
    os.utime(wasm, (1, 1))  # a new mtime must not change a byte
    oci_layout.write_layout(second, str(wasm), SPEC, README, "1")
    assert read(os.path.join(first, "index.json")) == read(os.path.join(second, "index.json"))
    # Rewriting a layout in place leaves only the new blobs.
    wasm.write_bytes(b"\0asm\1\0\0\0\0")
    oci_layout.write_layout(first, str(wasm), SPEC, README, "1")
    check_layout(first, wasm.read_bytes(), read(SPEC), read(README), "1")


def test_a_missing_module_is_an_error_that_says_what_to_do(tmp_path, capsys):
    code = oci_layout.main(["--wasm", str(tmp_path / "none.wasm"), "--spec", SPEC,
                            "--readme", README, "--tag", "1", "--out", str(tmp_path / "out")])
    assert code == 1
    assert "make build" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(MODULES))
def test_the_built_modules_layouts(tmp_path, name):
    module, readme = MODULES[name]
    wasm = os.path.join(ROOT, "dist", module)
    if not os.path.isfile(wasm):
        pytest.skip(f"dist/{module} is not built (make build)")
    layout = str(tmp_path / name)
    # As `make oci` runs it.
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "oci_layout.py"),
                    "--wasm", wasm, "--spec", SPEC, "--readme", os.path.join(ROOT, readme),
                    "--tag", "0.1.0", "--out", layout], check=True, capture_output=True)
    check_layout(layout, read(wasm), read(SPEC), read(os.path.join(ROOT, readme)), "0.1.0")


def test_make_oci_writes_both_modules_layouts():
    makefile = read(os.path.join(ROOT, "Makefile")).decode()
    for name, (module, readme) in MODULES.items():
        assert f"--wasm $(DIST)/{module}" in makefile and f"$(OCI_DIR)/{name}" in makefile
        assert f"--readme {readme}" in makefile
