"""A validator for the part of Kubernetes' structural CRD schemas (openAPIV3Schema) that Istio's
and Higress's CRDs use: `type` (with `nullable`, `x-kubernetes-int-or-string`), `properties`,
`additionalProperties`, `items`, `required`, `enum`, `minimum`/`maximum`, `minLength`/
`maxLength`, `minItems`/`maxItems`, `maxProperties`, `pattern`, `oneOf`/`anyOf`/`allOf`/`not`,
and unknown fields refused unless `x-kubernetes-preserve-unknown-fields` (as `kubectl apply
--validate=strict` does). Not checked: `format` and the CEL rules of `x-kubernetes-validations`
(the API server evaluates them). Any other keyword raises, so a CRD cannot start using one this
does not read."""
import re

READ = {"type", "nullable", "x-kubernetes-int-or-string", "properties", "additionalProperties",
        "items", "required", "enum", "minimum", "maximum", "minLength", "maxLength", "minItems",
        "maxItems", "maxProperties", "pattern", "oneOf", "anyOf", "allOf", "not",
        "x-kubernetes-preserve-unknown-fields"}
NOT_CHECKED = {"description", "format", "x-kubernetes-validations", "x-kubernetes-list-type",
               "x-kubernetes-list-map-keys", "default"}
TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


def is_type(kind, value):
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, TYPES[kind])


def errors(schema, value, at="", strict=True):
    """Every way `value` (at path `at`) breaks `schema`. `strict`: unknown fields are errors
    (not inside oneOf/anyOf/not branches, which only constrain)."""
    unknown = set(schema) - READ - NOT_CHECKED
    if unknown:
        raise ValueError(f"{at or '(top)'}: keywords this validator does not read: {unknown}")
    here = at or "(top)"
    found = []
    if value is None:
        return [] if schema.get("nullable") or "type" not in schema else [f"{here}: null"]
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or is_type("integer", value)):
            found.append(f"{here}: {value!r} is neither an integer nor a string")
    elif "type" in schema and not is_type(schema["type"], value):
        return [f"{here}: {value!r} is not of type {schema['type']}"]
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{here}: {value!r} is not one of {schema['enum']}")
    if is_type("number", value):
        if "minimum" in schema and value < schema["minimum"]:
            found.append(f"{here}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            found.append(f"{here}: {value} > {schema['maximum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 1e18):
            found.append(f"{here}: length {len(value)} out of bounds")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            found.append(f"{here}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", 1e18):
            found.append(f"{here}: {len(value)} items out of bounds")
        if "items" in schema:
            for index, item in enumerate(value):
                found += errors(schema["items"], item, f"{at}[{index}]", strict)
    if isinstance(value, dict):
        found += object_errors(schema, value, at, strict)
    for keyword, count_ok in (("oneOf", lambda n, total: n == 1),
                              ("anyOf", lambda n, total: n >= 1),
                              ("allOf", lambda n, total: n == total)):
        if keyword in schema:
            branches = schema[keyword]
            matching = sum(not errors(branch, value, at, False) for branch in branches)
            if not count_ok(matching, len(branches)):
                found.append(f"{here}: {matching} of {len(branches)} {keyword} branches match")
    if "not" in schema and not errors(schema["not"], value, at, False):
        found.append(f"{here}: matches what `not` refuses")
    return found


def object_errors(schema, value, at, strict):
    found = []
    here = at or "(top)"
    if len(value) > schema.get("maxProperties", 1e18):
        found.append(f"{here}: more than {schema['maxProperties']} fields")
    for name in schema.get("required", []):
        if name not in value:
            found.append(f"{here}: `{name}` is required")
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    for name, field in value.items():
        path = f"{at}.{name}" if at else name
        if name in properties:
            found += errors(properties[name], field, path, strict)
        elif isinstance(extra, dict):
            found += errors(extra, field, path, strict)
        elif strict and extra is not True and schema.get("type") == "object" \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            found.append(f"{path}: unknown field")
    return found
