"""Renames exports of a WebAssembly module in place of binaryen: the export section is parsed
and rewritten with the new names (and its size re-encoded); every other byte stays as it was.

    rename_export(module_bytes, old, new) -> new module bytes
    exports(module_bytes) -> [(name, kind)]

Used to let upstream Envoy load a Higress Go plugin: Higress's SDK exports
`proxy_abi_version_0_2_100`, which upstream Envoy does not know, while the host calls the
plugin makes are the 0.2.1 ones.
"""
MAGIC = b"\0asm\x01\0\0\0"
EXPORT_SECTION = 7


class WasmError(ValueError):
    pass


def _uleb(data, at):
    """(value, next offset) of the unsigned LEB128 at `at`."""
    value = shift = 0
    while True:
        if at >= len(data):
            raise WasmError("truncated LEB128")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def _encode_uleb(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def sections(data):
    """[(id, section start, payload start, end)] of every section; raises WasmError if the
    module is not well formed at the section level."""
    if data[:8] != MAGIC:
        raise WasmError("not a WebAssembly 1.0 module")
    found, at = [], 8
    while at < len(data):
        size, payload = _uleb(data, at + 1)
        end = payload + size
        if end > len(data):
            raise WasmError(f"section {data[at]} runs past the end")
        found.append((data[at], at, payload, end))
        at = end
    return found


def _parse_exports(payload):
    count, at = _uleb(payload, 0)
    entries = []
    for _ in range(count):
        length, at = _uleb(payload, at)
        name = payload[at:at + length].decode("utf-8")
        at += length
        kind = payload[at]
        index, at = _uleb(payload, at + 1)
        entries.append((name, kind, index))
    if at != len(payload):
        raise WasmError("export section has trailing bytes")
    return entries


def _export_section(data):
    found = [(at, payload, end) for section_id, at, payload, end in sections(data)
             if section_id == EXPORT_SECTION]
    if len(found) != 1:
        raise WasmError(f"{len(found)} export sections")
    return found[0]


def exports(data):
    _, payload, end = _export_section(data)
    return [(name, kind) for name, kind, _ in _parse_exports(data[payload:end])]


def rename_export(data, old, new):
    at, payload_start, end = _export_section(data)
    entries = _parse_exports(data[payload_start:end])
    names = [name for name, _, _ in entries]
    if old not in names:
        raise WasmError(f"no export named {old!r}")
    if new in names:
        raise WasmError(f"an export named {new!r} exists already")
    payload = bytearray(_encode_uleb(len(entries)))
    for name, kind, index in entries:
        encoded = (new if name == old else name).encode("utf-8")
        payload += _encode_uleb(len(encoded)) + encoded + bytes([kind]) + _encode_uleb(index)
    section = bytes([EXPORT_SECTION]) + _encode_uleb(len(payload)) + bytes(payload)
    patched = data[:at] + section + data[end:]
    if [name for name, _ in exports(patched)] != [new if n == old else n for n in names]:
        raise WasmError("the rewritten export section does not read back")
    return bytes(patched)
