//! A JSON Schema as the writers read it, whether written out field by field or as schemars 1.x
//! derives it from types: every `$ref` replaced by its definition, `null` taken out (an
//! optional field is one its object does not `require`), alternatives that each are one
//! constant made one `enum`, and what neither Higress's console nor the reference shows
//! (`$defs`, `format`, `$schema`, …) left out.

use std::fmt;

use super::text::Node;

/// Why a schema cannot be written out.
#[derive(Debug, PartialEq)]
pub struct SchemaError(String);

impl fmt::Display for SchemaError {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for SchemaError {}

impl From<serde_json::Error> for SchemaError {
    fn from(err: serde_json::Error) -> Self {
        SchemaError(format!("the JSON Schema is not JSON: {err}"))
    }
}

/// Keywords whose value is one schema.
const SCHEMA_KEYWORDS: &[&str] = &["items", "additionalProperties", "not"];
/// Keywords whose value is a list of schemas.
const SCHEMA_LIST_KEYWORDS: &[&str] = &["oneOf", "anyOf", "allOf", "prefixItems"];
/// Keywords whose value maps names to schemas.
const SCHEMA_MAP_KEYWORDS: &[&str] = &["properties", "patternProperties"];
/// Left out: definitions are inlined where used; `uint32`, `double` and the like are no
/// OpenAPI formats, and `minimum`/`maximum` carry the bounds.
const DROPPED: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "$defs",
    "definitions",
    "format",
];
/// Keywords that say what a field means rather than what it holds, in the order readers see
/// them: after `type`, before the field's structure (shared by every writer).
pub(super) const ANNOTATIONS: &[&str] = &[
    "title",
    "x-title-i18n",
    "description",
    "x-description-i18n",
    "default",
    "x-default-description",
];

/// The schema `root` as the writers read it.
pub fn resolved(root: &Node) -> Result<Node, SchemaError> {
    Resolver {
        root,
        following: Vec::new(),
    }
    .schema(root)
}

struct Resolver<'a> {
    root: &'a Node,
    /// The `$ref`s being inlined, outermost first: one met again is a cycle.
    following: Vec<String>,
}

impl Resolver<'_> {
    fn schema(&mut self, node: &Node) -> Result<Node, SchemaError> {
        let Node::Map(entries) = node else {
            // `true`, `false`: any value, no value.
            return Ok(node.clone());
        };
        let mut own: Vec<(String, Node)> = Vec::new();
        for (key, value) in entries {
            if DROPPED.contains(&key.as_str()) || key == "$ref" {
                continue;
            }
            own.push((key.clone(), self.keyword(key, value)?));
        }
        let mut merged = match node.get("$ref") {
            Some(reference) => self.definition(reference)?,
            None => Vec::new(),
        };
        // `allOf`'s schemas all hold: merged into this one (schemars 0.8 wrapped a described
        // `$ref` in one).
        for part in take(&mut own, "allOf").items() {
            overlay(&mut merged, part.entries().to_vec());
        }
        // The referring schema's own keywords win (a field's description over its type's).
        overlay(&mut merged, own);
        Ok(Node::Map(ordered(without_null(merged))))
    }

    fn keyword(&mut self, key: &str, value: &Node) -> Result<Node, SchemaError> {
        if SCHEMA_KEYWORDS.contains(&key) {
            self.schema(value)
        } else if SCHEMA_LIST_KEYWORDS.contains(&key) {
            let items = value.items().iter().map(|item| self.schema(item));
            Ok(Node::List(items.collect::<Result<_, _>>()?))
        } else if SCHEMA_MAP_KEYWORDS.contains(&key) {
            let mut fields = Vec::new();
            for (name, schema) in value.entries() {
                fields.push((name.clone(), self.schema(schema)?));
            }
            Ok(Node::Map(fields))
        } else {
            Ok(value.clone())
        }
    }

    /// The entries of the schema a `$ref` points to, resolved.
    fn definition(&mut self, reference: &Node) -> Result<Vec<(String, Node)>, SchemaError> {
        let Some(reference) = reference.as_str() else {
            return Err(SchemaError(format!("$ref {reference:?} is not a string")));
        };
        if self.following.iter().any(|known| known == reference) {
            return Err(SchemaError(format!(
                "$ref {reference} refers to itself: a recursive type cannot be written out"
            )));
        }
        let target = pointer(self.root, reference)?;
        self.following.push(reference.to_string());
        let resolved = self.schema(target);
        self.following.pop();
        Ok(resolved?.entries().to_vec())
    }
}

/// Takes `key`'s entry out of `entries`: its value, or nothing.
fn take(entries: &mut Vec<(String, Node)>, key: &str) -> Node {
    match entries.iter().position(|(name, _)| name == key) {
        Some(index) => entries.remove(index).1,
        None => Node::Null,
    }
}

/// The node at a local reference such as `#/$defs/Retry`.
fn pointer<'a>(root: &'a Node, reference: &str) -> Result<&'a Node, SchemaError> {
    let Some(path) = reference.strip_prefix('#') else {
        return Err(SchemaError(format!(
            "$ref {reference}: only references within the document are read"
        )));
    };
    let mut node = root;
    for step in path.split('/').skip(1) {
        let step = step.replace("~1", "/").replace("~0", "~");
        let next = match node {
            Node::List(items) => step.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => node.get(&step),
        };
        node = next.ok_or_else(|| SchemaError(format!("$ref {reference}: nothing at {step}")))?;
    }
    Ok(node)
}

/// `extra`'s entries replace those of the same key in `base`, and the others are added.
fn overlay(base: &mut Vec<(String, Node)>, extra: Vec<(String, Node)>) {
    for (key, value) in extra {
        match base.iter_mut().find(|(name, _)| *name == key) {
            Some(slot) => slot.1 = value,
            None => base.push((key, value)),
        }
    }
}

/// `Option<T>`'s traces out: `"type": [T, "null"]`, a `{"type": "null"}` alternative, a null
/// default or constant. One alternative left stands for the schema; alternatives that each
/// are a constant become one `enum` (a Rust enum whose variants have doc comments).
fn without_null(mut entries: Vec<(String, Node)>) -> Vec<(String, Node)> {
    let mut alternatives_left = None;
    for (key, value) in entries.iter_mut() {
        match (key.as_str(), &*value) {
            ("type", Node::List(types)) => {
                let mut kept: Vec<Node> =
                    types.iter().filter(|t| !is_null_type(t)).cloned().collect();
                *value = match kept.len() {
                    1 => kept.remove(0),
                    _ => Node::List(kept),
                };
            }
            ("enum", Node::List(values)) => {
                *value = Node::List(
                    values
                        .iter()
                        .filter(|v| **v != Node::Null)
                        .cloned()
                        .collect(),
                );
            }
            ("oneOf" | "anyOf", Node::List(variants)) => {
                let kept: Vec<Node> = variants
                    .iter()
                    .filter(|variant| !is_null_schema(variant))
                    .cloned()
                    .collect();
                alternatives_left = Some((key.clone(), kept));
            }
            _ => {}
        }
    }
    entries.retain(|(key, value)| !(key == "default" && *value == Node::Null));
    let Some((key, mut kept)) = alternatives_left else {
        return entries;
    };
    let replaced = if kept.len() == 1 {
        kept.remove(0).entries().to_vec()
    } else if let Some(values) = constants(&kept) {
        let mut merged = Vec::new();
        if let Some(kind) = kept.first().and_then(|first| first.get("type")) {
            if kept.iter().all(|variant| variant.get("type") == Some(kind)) {
                merged.push(("type".to_string(), kind.clone()));
            }
        }
        merged.push(("enum".to_string(), Node::List(values)));
        merged
    } else {
        overlay(&mut entries, vec![(key, Node::List(kept))]);
        return entries;
    };
    entries.retain(|(name, _)| *name != key);
    let mut merged = replaced;
    overlay(&mut merged, entries);
    merged
}

/// The values of alternatives that each allow only constants, when they all do.
fn constants(variants: &[Node]) -> Option<Vec<Node>> {
    let mut values = Vec::new();
    for variant in variants {
        match (variant.get("const"), variant.get("enum")) {
            (Some(value), _) => values.push(value.clone()),
            (None, Some(Node::List(listed))) => values.extend(listed.iter().cloned()),
            _ => return None,
        }
    }
    Some(values)
}

fn is_null_type(kind: &Node) -> bool {
    kind.as_str() == Some("null")
}

fn is_null_schema(schema: &Node) -> bool {
    // A `const` is an `enum` of one by now (`ordered`).
    schema.get("type").is_some_and(is_null_type)
        || schema.get("enum") == Some(&Node::List(vec![Node::Null]))
}

/// `type` and the annotations first, so a reader of the YAML sees what a field is before its
/// structure; then the others as they came; a lone `const` reads as an `enum`.
fn ordered(entries: Vec<(String, Node)>) -> Vec<(String, Node)> {
    let rank = |key: &str| match key {
        "type" => 0,
        _ => ANNOTATIONS
            .iter()
            .position(|annotation| *annotation == key)
            .map_or(ANNOTATIONS.len() + 1, |position| position + 1),
    };
    let mut entries: Vec<(String, Node)> = entries
        .into_iter()
        .map(|(key, value)| match key.as_str() {
            "const" => ("enum".to_string(), Node::List(vec![value])),
            _ => (key, value),
        })
        .collect();
    // A stable sort: keywords of equal rank keep their order.
    entries.sort_by_key(|(key, _)| rank(key));
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Node {
        Node::from_json(json).unwrap()
    }

    fn resolve(json: &str) -> Result<Node, SchemaError> {
        resolved(&read(json))
    }

    fn keys(node: &Node) -> Vec<&str> {
        node.entries().iter().map(|(key, _)| key.as_str()).collect()
    }

    /// `testdata/schemars-1.json` is what schemars 1.0 (feature `preserve_order`) derives for
    /// `struct Top { retry: Option<Retry>, again: Retry, #[schemars(length(min = 1))] list:
    /// Vec<Retry>, models: BTreeMap<String, Retry>, kind: Option<Kind>, plain: Plain, either:
    /// Option<NameOrRetry>, #[serde(flatten)] shared: Shared, #[schemars(extend(
    /// "x-default-description" = "the name"))] key: Option<String> }`, where `Retry` has
    /// `max_retries: u32` (range 1 to 10, default 1, a Chinese description) and `ratio:
    /// Option<f64>`, `Kind` is an enum with documented variants, `Plain` one without, and
    /// `NameOrRetry` is `#[serde(untagged)] enum { Name(Kind), Full(Retry) }`.
    #[test]
    fn schemars_output_reads_as_plain_schemas() {
        let schema = resolve(include_str!("testdata/schemars-1.json")).unwrap();
        assert_eq!(
            keys(&schema),
            [
                "type",
                "title",
                "description",
                "properties",
                "additionalProperties",
                "required"
            ],
            "$schema and $defs left out"
        );
        let field = |name: &str| schema.get("properties").and_then(|p| p.get(name)).unwrap();

        let retry = field("retry");
        assert_eq!(
            retry.get("type"),
            Some(&Node::str("object")),
            "null alternative gone"
        );
        assert_eq!(
            retry.get("description"),
            Some(&Node::str("The retry.")),
            "the field's own"
        );
        assert_eq!(
            retry.get("x-title-i18n"),
            Some(&read(r#"{"zh-CN": "重试"}"#)),
            "the type's own annotations kept"
        );
        let max_retries = retry
            .get("properties")
            .and_then(|p| p.get("max_retries"))
            .unwrap();
        assert_eq!(
            max_retries,
            &read(
                r#"{"type": "integer", "description": "Retries on other providers, per request.",
                "x-description-i18n": {"zh-CN": "最大重试次数"}, "default": 1,
                "minimum": 1, "maximum": 10}"#
            ),
            "format left out, annotations first"
        );
        let ratio = retry
            .get("properties")
            .and_then(|p| p.get("ratio"))
            .unwrap();
        assert_eq!(ratio.get("type"), Some(&Node::str("number")));
        assert_eq!(
            field("again").get("description"),
            Some(&Node::str("Another retry."))
        );
        assert_eq!(field("again").get("properties"), retry.get("properties"));
        assert_eq!(
            field("list").get("items"),
            field("models").get("additionalProperties")
        );
        assert_eq!(
            field("list")
                .get("items")
                .and_then(|item| item.get("properties")),
            retry.get("properties")
        );

        let kind = field("kind");
        assert_eq!(
            kind,
            &read(
                r#"{"type": "string", "description": "How requests are spread.",
                "enum": ["least_load", "random"]}"#
            ),
            "documented variants: one enum"
        );
        assert_eq!(
            field("plain"),
            &read(r#"{"type": "string", "enum": ["a", "b"]}"#)
        );
        let either = field("either").get("anyOf").unwrap().items();
        assert_eq!(
            either.len(),
            2,
            "the untagged enum's alternatives stay, null gone"
        );
        assert_eq!(&either[0], kind);
        assert_eq!(either[1].get("properties"), retry.get("properties"));
        assert_eq!(
            field("timeout_ms"),
            &read(r#"{"type": "integer", "description": "Timeout.", "minimum": 0}"#),
            "flattened"
        );
        assert_eq!(
            field("key"),
            &read(r#"{"type": "string", "x-default-description": "the name"}"#)
        );
        assert_eq!(
            schema.get("required"),
            Some(&read(r#"["again", "list", "models", "plain"]"#)),
            "options are not required"
        );
    }

    #[test]
    fn references_outside_the_document_missing_or_circular_are_refused() {
        let refused = [
            (
                r#"{"$ref": "other.json#/a"}"#,
                "only references within the document",
            ),
            (
                r##"{"$ref": "#/$defs/Gone", "$defs": {}}"##,
                "nothing at Gone",
            ),
            (r#"{"$ref": 3}"#, "is not a string"),
            (
                r##"{"properties": {"next": {"$ref": "#/$defs/Node"}},
                "$defs": {"Node": {"properties": {"next": {"$ref": "#/$defs/Node"}}}}}"##,
                "refers to itself",
            ),
        ];
        for (json, reason) in refused {
            let err = resolve(json).unwrap_err().to_string();
            assert!(err.contains(reason), "{json}: {err}");
        }
        let err = config_error("{");
        assert!(err.starts_with("the JSON Schema is not JSON"), "{err}");
    }

    fn config_error(json: &str) -> String {
        Node::from_json(json)
            .map_err(SchemaError::from)
            .and_then(|node| resolved(&node))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_definition_used_twice_and_pointers_with_escapes_resolve() {
        let schema = resolve(
            r##"{"properties": {
                "a": {"$ref": "#/definitions/a~1b"},
                "b": {"allOf": [{"$ref": "#/definitions/a~1b"}], "description": "B."}},
            "definitions": {"a/b": {"type": "object", "description": "Shared.",
                "properties": {"x": {"type": "integer", "format": "int64"}}}}}"##,
        )
        .unwrap();
        let field = |name: &str| schema.get("properties").and_then(|p| p.get(name)).unwrap();
        let shared = r#"{"type": "object", "description": "Shared.",
            "properties": {"x": {"type": "integer"}}}"#;
        assert_eq!(field("a"), &read(shared));
        assert_eq!(field("b"), &read(&shared.replace("Shared.", "B.")));
        assert_eq!(keys(&schema), ["properties"]);
    }

    #[test]
    fn nulls_go_and_constants_become_enums() {
        let schema = resolve(
            r#"{"properties": {
                "level": {"enum": ["low", "high", null], "default": null, "type": ["string", "null"]},
                "one": {"const": "only"},
                "mode": {"oneOf": [{"const": "a", "description": "A."}, {"const": null}]},
                "either": {"type": ["integer", "string", "null"]},
                "mixed": {"anyOf": [{"type": "boolean"}, {"const": "x"}]}}}"#,
        )
        .unwrap();
        let field = |name: &str| schema.get("properties").and_then(|p| p.get(name)).unwrap();
        assert_eq!(
            field("level"),
            &read(r#"{"type": "string", "enum": ["low", "high"]}"#)
        );
        assert_eq!(field("one"), &read(r#"{"enum": ["only"]}"#));
        assert_eq!(
            field("mode"),
            &read(r#"{"description": "A.", "enum": ["a"]}"#)
        );
        assert_eq!(field("either"), &read(r#"{"type": ["integer", "string"]}"#));
        assert_eq!(
            field("mixed"),
            &read(r#"{"anyOf": [{"type": "boolean"}, {"enum": ["x"]}]}"#),
            "not all constants: the alternatives stay"
        );
    }
}
