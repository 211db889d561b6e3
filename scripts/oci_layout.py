#!/usr/bin/env python3
"""Writes a module as an OCI image layout directory (no Docker daemon, Python stdlib only), in the
format Higress publishes its plugins in, so that any OCI client can push it, e.g.
`oras cp --from-oci-layout dist/oci/ai-provider-balancer:0.1.0 registry.example.com/…:0.1.0`
or `skopeo copy oci:dist/oci/ai-provider-balancer:0.1.0 docker://…`.

The manifest is what Higress's plugin build pushes with `oras push` (oras 1.0.0, see alibaba/higress
.github/workflows/build-and-push-wasm-plugin-image.yaml and hgctl/pkg/plugin/build/build.go):
- layers, in this order: spec.yaml (application/vnd.module.wasm.spec.v1+yaml), README.md
  (application/vnd.module.wasm.doc.v1+markdown), plugin.tar.gz
  (application/vnd.oci.image.layer.v1.tar+gzip) holding plugin.wasm, which Istio and Higress
  read from the last layer;
- each layer titled with its file name (org.opencontainers.image.title), as oras does;
- the config oras 1.0 writes when no artifact type is given: `{}` as
  application/vnd.unknown.config.v1+json.
Every byte is fixed by the inputs (tar and gzip mtimes 0, no timestamps in annotations), so
the digests are stable from one build to the next.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.unknown.config.v1+json"
SPEC_TYPE = "application/vnd.module.wasm.spec.v1+yaml"
README_TYPE = "application/vnd.module.wasm.doc.v1+markdown"
PLUGIN_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
TITLE = "org.opencontainers.image.title"
REF_NAME = "org.opencontainers.image.ref.name"


def plugin_tar_gz(wasm: bytes) -> bytes:
    """plugin.tar.gz with one entry, plugin.wasm, and no time, owner or host in it."""
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        entry = tarfile.TarInfo("plugin.wasm")
        entry.size = len(wasm)
        entry.mode = 0o644
        entry.mtime = 0
        tar.addfile(entry, io.BytesIO(wasm))
    return gzip.compress(tar_bytes.getvalue(), compresslevel=9, mtime=0)


class Layout:
    """An OCI image layout being written: blobs by digest, then index.json."""

    def __init__(self, directory: str):
        self.directory = directory
        os.makedirs(os.path.join(directory, "blobs", "sha256"), exist_ok=True)

    def blob(self, media_type: str, content: bytes, title: str = "") -> dict:
        digest = hashlib.sha256(content).hexdigest()
        with open(os.path.join(self.directory, "blobs", "sha256", digest), "wb") as out:
            out.write(content)
        descriptor = {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(content)}
        if title:
            descriptor["annotations"] = {TITLE: title}
        return descriptor

    def finish(self, manifest: dict, tag: str) -> None:
        text = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
        descriptor = self.blob(MANIFEST_TYPE, text)
        descriptor["annotations"] = {REF_NAME: tag}
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": [descriptor]}
        self._write("index.json", json.dumps(index, indent=2, sort_keys=True) + "\n")
        self._write("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}) + "\n")

    def _write(self, name: str, text: str) -> None:
        with open(os.path.join(self.directory, name), "w", encoding="utf-8") as out:
            out.write(text)


def write_layout(directory: str, wasm_path: str, spec_path: str, readme_path: str,
                 tag: str) -> None:
    """Writes (or overwrites) the layout of one module at `directory`, tagged `tag`."""
    def read(path: str) -> bytes:
        with open(path, "rb") as source:
            return source.read()

    if os.path.isdir(os.path.join(directory, "blobs")):
        for name in os.listdir(os.path.join(directory, "blobs", "sha256")):
            os.remove(os.path.join(directory, "blobs", "sha256", name))
    layout = Layout(directory)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": layout.blob(CONFIG_TYPE, b"{}"),
        "layers": [
            layout.blob(SPEC_TYPE, read(spec_path), "spec.yaml"),
            layout.blob(README_TYPE, read(readme_path), "README.md"),
            layout.blob(PLUGIN_TYPE, plugin_tar_gz(read(wasm_path)), "plugin.tar.gz"),
        ],
    }
    layout.finish(manifest, tag)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wasm", required=True, help="the module, e.g. dist/ai-load-balancer.wasm")
    parser.add_argument("--spec", required=True, help="Higress plugin spec (higress/spec.yaml)")
    parser.add_argument("--readme", required=True, help="the plugin's README")
    parser.add_argument("--tag", required=True, help="the layout's reference name, e.g. 0.1.0")
    parser.add_argument("--out", required=True, help="the layout directory to write")
    args = parser.parse_args(argv)
    for path in (args.wasm, args.spec, args.readme):
        if not os.path.isfile(path):
            print(f"oci_layout: {path} is missing (run `make build` for the modules)",
                  file=sys.stderr)
            return 1
    write_layout(args.out, args.wasm, args.spec, args.readme, args.tag)
    print(f"oci_layout: {args.out} ({args.tag})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
