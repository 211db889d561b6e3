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
/// Annotations first, in this order, so a reader of the YAML sees what a field is before its
/// structure; other keywords follow in the order the schema has them.
const FIRST: &[&str] = &[
    "type",
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
    schema.get("type").is_some_and(is_null_type) || schema.get("const") == Some(&Node::Null)
}

/// `FIRST`'s keywords first, then the others as they came; a lone `const` reads as an `enum`.
fn ordered(entries: Vec<(String, Node)>) -> Vec<(String, Node)> {
    let rank = |key: &str| {
        FIRST
            .iter()
            .position(|first| *first == key)
            .unwrap_or(FIRST.len())
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
