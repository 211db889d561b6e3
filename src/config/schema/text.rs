//! An ordered document tree and its YAML text. A schema reads best, and a console form renders
//! best, with fields in the order they are described; the writers read the JSON Schema's text
//! into this tree, which keeps that order whatever serde_json's `Map` does (it keeps it natively,
//! schemars' `preserve_order`, and sorts in the module).

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(u64),
    /// Any other number: negative or fractional.
    Num(f64),
    Str(String),
    List(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    pub fn str(text: &str) -> Self {
        Node::Str(text.to_string())
    }

    /// Reads JSON text, keeping every object's keys in their order.
    pub fn from_json(text: &str) -> Result<Node, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries()
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value)
    }

    /// A mapping's entries; none for anything else.
    pub fn entries(&self) -> &[(String, Node)] {
        match self {
            Node::Map(entries) => entries,
            _ => &[],
        }
    }

    /// A list's items; none for anything else.
    pub fn items(&self) -> &[Node] {
        match self {
            Node::List(items) => items,
            _ => &[],
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(text) => Some(text),
            _ => None,
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(flag) => Value::Bool(*flag),
            Node::Int(number) => Value::from(*number),
            // Written as `2`, read back as an integer: the value says so too.
            Node::Num(number) if number.fract() == 0.0 && (0.0..9e15).contains(number) => {
                Value::from(*number as u64)
            }
            Node::Num(number) => Number::from_f64(*number).map_or(Value::Null, Value::Number),
            Node::Str(text) => Value::String(text.clone()),
            Node::List(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Node::Map(entries) => {
                let mut map = Map::new();
                for (key, value) in entries {
                    map.insert(key.clone(), value.to_value());
                }
                Value::Object(map)
            }
        }
    }

    /// Block-style YAML, each line indented by `indent` spaces at least; sequences are indented
    /// under their key, as Higress's own plugin specs write them.
    pub fn to_yaml(&self, indent: usize) -> String {
        let mut out = String::new();
        match self {
            Node::Map(entries) if !entries.is_empty() => write_yaml_map(entries, &mut out, indent),
            Node::List(items) if !items.is_empty() => write_yaml_list(items, &mut out, indent),
            other => {
                push_indent(&mut out, indent);
                out.push_str(&other.yaml_inline());
                out.push('\n');
            }
        }
        out
    }

    /// A scalar or an empty collection, on the line of its key.
    fn yaml_inline(&self) -> String {
        match self {
            Node::List(_) => "[]".to_string(),
            Node::Map(_) => "{}".to_string(),
            scalar => scalar.scalar_text(true),
        }
    }

    fn is_block(&self) -> bool {
        match self {
            Node::List(items) => !items.is_empty(),
            Node::Map(entries) => !entries.is_empty(),
            _ => false,
        }
    }

    fn scalar_text(&self, yaml: bool) -> String {
        match self {
            Node::Null => "null".to_string(),
            Node::Bool(flag) => flag.to_string(),
            Node::Int(number) => number.to_string(),
            Node::Num(number) => number.to_string(),
            Node::Str(text) if yaml && is_plain_yaml(text) => text.clone(),
            Node::Str(text) => quoted(text),
            Node::List(_) | Node::Map(_) => String::new(),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_bool<E>(self, flag: bool) -> Result<Node, E> {
        Ok(Node::Bool(flag))
    }

    fn visit_u64<E>(self, number: u64) -> Result<Node, E> {
        Ok(Node::Int(number))
    }

    fn visit_i64<E>(self, number: i64) -> Result<Node, E> {
        Ok(u64::try_from(number).map_or(Node::Num(number as f64), Node::Int))
    }

    fn visit_f64<E>(self, number: f64) -> Result<Node, E> {
        Ok(Node::Num(number))
    }

    fn visit_str<E>(self, text: &str) -> Result<Node, E> {
        Ok(Node::str(text))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Node::Map(entries))
    }
}

fn write_yaml_map(entries: &[(String, Node)], out: &mut String, indent: usize) {
    for (key, value) in entries {
        push_indent(out, indent);
        out.push_str(&yaml_key(key));
        out.push(':');
        if value.is_block() {
            out.push('\n');
            out.push_str(&value.to_yaml(indent + 2));
        } else {
            out.push(' ');
            out.push_str(&value.yaml_inline());
            out.push('\n');
        }
    }
}

fn write_yaml_list(items: &[Node], out: &mut String, indent: usize) {
    for item in items {
        push_indent(out, indent);
        out.push('-');
        match item {
            // The first entry on the dash's line, the others under it.
            Node::Map(entries) if !entries.is_empty() => {
                let block = item.to_yaml(indent + 2);
                out.push(' ');
                out.push_str(&block[indent + 2..]);
            }
            Node::List(nested) if !nested.is_empty() => {
                out.push('\n');
                write_yaml_list(nested, out, indent + 2);
            }
            scalar => {
                out.push(' ');
                out.push_str(&scalar.yaml_inline());
                out.push('\n');
            }
        }
    }
}

fn yaml_key(key: &str) -> String {
    if is_plain_yaml(key) {
        key.to_string()
    } else {
        quoted(key)
    }
}

/// Whether `text` reads back as this string when written unquoted, in YAML 1.2 and in the YAML
/// 1.1 readers consoles use (SnakeYAML): no indicator first, no `: ` or ` #`, nothing a reader
/// takes for a boolean, null or number. Anything else is written double-quoted.
fn is_plain_yaml(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    let lower = text.to_ascii_lowercase();
    let reserved = [
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~",
    ];
    !(first.is_whitespace()
        || first.is_ascii_digit()
        || "-?:,[]{}#&*!|>'\"%@`+.<=\\".contains(first)
        || text.ends_with(char::is_whitespace)
        || text.ends_with(':')
        || text.contains(": ")
        || text.contains(" #")
        || text.chars().any(char::is_control)
        || reserved.contains(&lower.as_str()))
}

fn quoted(text: &str) -> String {
    // A JSON string is a YAML double-quoted scalar too; writing a `&str` cannot fail.
    serde_json::to_string(text).unwrap_or_default()
}

fn push_indent(out: &mut String, indent: usize) {
    for _ in 0..indent {
        out.push(' ');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_a_reader_would_take_for_something_else_are_quoted() {
        for text in [
            "",
            "true",
            "No",
            "~",
            "5xx",
            "-1",
            "a: b",
            "a #b",
            "'x'",
            " x",
            "x ",
            "*x",
            "1.5",
            "ai_metric:",
        ] {
            assert!(!is_plain_yaml(text), "{text:?} must be quoted");
        }
        for text in [
            "least_load",
            "x-selected-provider",
            "/v1/models",
            "AI 负载均衡",
        ] {
            assert!(is_plain_yaml(text), "{text:?} reads back unquoted");
        }
    }

    #[test]
    fn yaml_round_trips_through_the_configuration_reader() {
        let node = Node::Map(vec![
            ("name".into(), Node::str("a: b # c")),
            ("count".into(), Node::Int(3)),
            ("ratio".into(), Node::Num(0.25)),
            (
                "items".into(),
                Node::List(vec![
                    Node::Map(vec![
                        ("x".into(), Node::str("5xx")),
                        ("y".into(), Node::List(vec![])),
                    ]),
                    Node::str("中文：说明"),
                    Node::Bool(false),
                ]),
            ),
            ("empty".into(), Node::Map(vec![])),
        ]);
        let parsed = crate::config::yaml::parse(&node.to_yaml(0));
        assert_eq!(parsed.ok(), Some(node.to_value()));
        let json = serde_json::to_string(&node.to_value()).unwrap_or_default();
        assert_eq!(Node::from_json(&json).ok(), Some(node));
    }

    #[test]
    fn json_is_read_in_its_order() {
        let node = Node::from_json(r#"{"b": -2, "a": [null, 1.5, {"z": true, "y": "x"}]}"#);
        let expected = Node::Map(vec![
            ("b".into(), Node::Num(-2.0)),
            (
                "a".into(),
                Node::List(vec![
                    Node::Null,
                    Node::Num(1.5),
                    Node::Map(vec![
                        ("z".into(), Node::Bool(true)),
                        ("y".into(), Node::str("x")),
                    ]),
                ]),
            ),
        ]);
        assert_eq!(node.ok(), Some(expected));
        assert!(Node::from_json("{").is_err());
    }
}
