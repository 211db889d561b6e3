//! A validator for the part of JSON Schema (draft-07, and 2020-12 as schemars 1.x writes it) the
//! generated schema uses: `type` (one or a list), `enum`, `const`, `minimum`/`maximum`,
//! `minLength`/`minItems`/`minProperties`, `required`, `items`, `properties`,
//! `additionalProperties`, `oneOf`, `anyOf`, and `$ref` within the document. Any other keyword
//! fails the test, so the schema cannot start using one this does not check.

use serde_json::Value;

const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$comment",
    "title",
    "description",
    "x-title-i18n",
    "x-description-i18n",
    "default",
    "x-default-description",
    "example",
    // Definitions are checked where a `$ref` uses them; `uint32`, `double` and the like are
    // annotations in 2020-12, and `minimum`/`maximum` carry their bounds.
    "$defs",
    "definitions",
    "format",
];

/// Adds to `errors` every way `value` (at path `at`) breaks `schema`.
pub fn validate(schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    check(schema, schema, value, at, errors);
}

fn check(root: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let Some(keywords) = schema.as_object() else {
        panic!("{at}: schema is not an object");
    };
    let here = if at.is_empty() { "(top)" } else { at };
    for (keyword, rule) in keywords {
        match keyword.as_str() {
            "type" => {
                let kinds = match rule {
                    Value::Array(kinds) => kinds.iter().collect(),
                    one => vec![one],
                };
                if !kinds.iter().any(|kind| is_of_type(kind, value, at)) {
                    let kind = rule
                        .as_str()
                        .map_or_else(|| rule.to_string(), str::to_string);
                    errors.push(format!("{here}: is not of type {kind}: {value}"));
                }
            }
            "const" => {
                if rule != value {
                    errors.push(format!("{here}: {value} is not {rule}"));
                }
            }
            "$ref" => {
                let reference = rule.as_str().expect("a reference");
                let pointer = reference
                    .strip_prefix('#')
                    .expect("a reference within the document");
                let target = root
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("{at}: no {reference}"));
                check(root, target, value, at, errors);
            }
            "enum" => {
                if !rule.as_array().expect("enum list").contains(value) {
                    errors.push(format!("{here}: {value} is not one of {rule}"));
                }
            }
            "minimum" | "maximum" => {
                if let (Some(number), Some(bound)) = (value.as_f64(), rule.as_f64()) {
                    let ok = if keyword == "minimum" {
                        number >= bound
                    } else {
                        number <= bound
                    };
                    if !ok {
                        errors.push(format!("{here}: {number} is beyond {keyword} {bound}"));
                    }
                }
            }
            "minLength" | "minItems" | "minProperties" => {
                let bound = rule.as_u64().expect("a count") as usize;
                let length = match value {
                    Value::String(text) => Some(text.chars().count()),
                    Value::Array(items) => Some(items.len()),
                    Value::Object(map) => Some(map.len()),
                    _ => None,
                };
                if length.is_some_and(|n| n < bound) {
                    errors.push(format!("{here}: has fewer than {bound} ({keyword})"));
                }
            }
            "required" => {
                if let Some(map) = value.as_object() {
                    for name in rule.as_array().expect("required list") {
                        let name = name.as_str().expect("a field name");
                        if !map.contains_key(name) {
                            errors.push(format!("{here}: {name} is required"));
                        }
                    }
                }
            }
            "items" => {
                if let Some(items) = value.as_array() {
                    for (index, item) in items.iter().enumerate() {
                        check(root, rule, item, &format!("{at}[{index}]"), errors);
                    }
                }
            }
            "properties" | "additionalProperties" => {
                let Some(map) = value.as_object() else {
                    continue;
                };
                let properties = keywords.get("properties").and_then(Value::as_object);
                for (name, field) in map {
                    let path = if at.is_empty() {
                        name.clone()
                    } else {
                        format!("{at}.{name}")
                    };
                    let known = properties.and_then(|p| p.get(name));
                    match (keyword.as_str(), known) {
                        ("properties", Some(field_schema)) => {
                            check(root, field_schema, field, &path, errors)
                        }
                        ("additionalProperties", None) => match rule {
                            Value::Bool(false) => errors.push(format!("{path}: unknown field")),
                            Value::Bool(true) => {}
                            other => check(root, other, field, &path, errors),
                        },
                        _ => {}
                    }
                }
            }
            "oneOf" | "anyOf" => {
                let variants = rule.as_array().expect("variant list");
                let matching = variants
                    .iter()
                    .filter(|variant| {
                        let mut inner = Vec::new();
                        check(root, variant, value, at, &mut inner);
                        inner.is_empty()
                    })
                    .count();
                let ok = if keyword == "oneOf" {
                    matching == 1
                } else {
                    matching >= 1
                };
                if !ok {
                    errors.push(format!(
                        "{here}: {matching} of the {keyword} alternatives match"
                    ));
                }
            }
            annotation if ANNOTATIONS.contains(&annotation) => {}
            other => panic!("{at}: the test's validator does not know the keyword {other}"),
        }
    }
}

fn is_of_type(kind: &Value, value: &Value, at: &str) -> bool {
    match kind.as_str().expect("a type name") {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "number" => value.is_number(),
        "integer" => {
            value.is_u64() || value.is_i64() || value.as_f64().is_some_and(|n| n.fract() == 0.0)
        }
        "null" => value.is_null(),
        other => panic!("{at}: type {other}"),
    }
}
