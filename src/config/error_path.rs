//! Which field a configuration error is about. A document is read from its compact JSON text,
//! and serde_json places each error just past what failed: the value, or the key of an unknown
//! field. The keys and list indexes still open at that byte are the field's path.
//!
//! serde_path_to_error gives the same paths by wrapping the deserializer of every type it
//! reads: with it, the Higress module measured 531,134 bytes, over its 512 KB budget; with
//! this, 511,106 (the same features). Natively it stays as the oracle: tests/fuzz's
//! `error_paths` checks that both name the same path for mutated configurations.

/// A container open at the error's byte.
enum Open {
    /// The last key read in it, if any yet.
    Mapping(Option<String>),
    /// The index of the item being read.
    List(usize),
}

/// The path (`providers[1].weight`) of the field a serde_json error in `text` (a JSON document
/// on one or more lines) is about, and the error's message without its position; the path is
/// empty at the top level.
///
/// serde_json places a fault just past the value at fault (the document's own types check a
/// value while it is read, values.rs, so theirs too), or past the key of an unknown field: the
/// containers open there name it. A missing field is placed past its mapping's end, which
/// names the mapping. A value refused for its kind, a mapping or list where something else was
/// expected ("…, got a list" in the document's words, serde_json's "expected value" for a
/// name), may be placed just inside its start: that container is the value at fault.
pub fn error_path(text: &str, error: &serde_json::Error) -> (String, String) {
    let (open, message) = fault(text, error);
    (path(&open), message)
}

/// The same, as a JSON pointer (`/providers/1/weight`) to the value at fault.
pub fn error_pointer(text: &str, error: &serde_json::Error) -> String {
    let mut pointer = String::new();
    for container in fault(text, error).0 {
        match container {
            Open::Mapping(Some(key)) => {
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            Open::Mapping(None) => {}
            Open::List(index) => {
                pointer.push('/');
                pointer.push_str(&index.to_string());
            }
        }
    }
    pointer
}

fn fault(text: &str, error: &serde_json::Error) -> (Vec<Open>, String) {
    let (offset, message) = located(text, error);
    let (mut open, last) = open_at(text, offset);
    let the_container_s = [
        "missing field `",
        "invalid type: map",
        "invalid type: sequence",
        // An enum given another type: serde_json peeked the value's first byte.
        "expected value",
    ]
    .iter()
    .any(|fault| message.starts_with(fault))
        // The document's own value types name a value of the wrong kind last (values.rs).
        || message.ends_with("got a list")
        || message.ends_with("got a mapping");
    match last {
        Last::Opened if the_container_s => {
            open.pop();
        }
        // A name written as a mapping's only key (`{name: {...}}`): the key is the value.
        Last::Key if message.starts_with("unknown variant `") => {
            open.pop();
        }
        _ => {}
    }
    (open, message)
}

/// What the byte before the error's did.
enum Last {
    Opened,
    Closed,
    /// Ended a mapping's key.
    Key,
    Other,
}

/// The containers open just before byte `offset`, and what the byte before it did.
fn open_at(text: &str, offset: usize) -> (Vec<Open>, Last) {
    let bytes = text.as_bytes();
    let end = offset.min(bytes.len());
    let mut open: Vec<Open> = Vec::new();
    let mut last = Last::Other;
    let mut key_next = false;
    let mut at = 0;
    while at < end {
        last = Last::Other;
        match bytes[at] {
            b'{' => {
                open.push(Open::Mapping(None));
                key_next = true;
                last = Last::Opened;
            }
            b'[' => {
                open.push(Open::List(0));
                last = Last::Opened;
            }
            b'}' | b']' => {
                open.pop();
                last = Last::Closed;
                key_next = false;
            }
            b',' => match open.last_mut() {
                Some(Open::List(index)) => *index += 1,
                Some(Open::Mapping(_)) => key_next = true,
                None => {}
            },
            b'"' => {
                let start = at;
                at += 1;
                while at < bytes.len() && bytes[at] != b'"' {
                    // An escape's next byte is never the string's end.
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
                if key_next {
                    if let Some(Open::Mapping(key)) = open.last_mut() {
                        *key = text
                            .get(start..=at)
                            .and_then(|quoted| serde_json::from_str(quoted).ok());
                    }
                    key_next = false;
                    last = Last::Key;
                }
            }
            _ => {}
        }
        at += 1;
    }
    (open, last)
}

fn path(open: &[Open]) -> String {
    let mut path = String::new();
    for container in open {
        match container {
            Open::Mapping(Some(key)) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Open::Mapping(None) => {}
            Open::List(index) => {
                path.push('[');
                path.push_str(&index.to_string());
                path.push(']');
            }
        }
    }
    path
}

/// Where in `text` serde_json's error points (its line and column, 1-based, as a byte offset),
/// and its message without the position.
fn located(text: &str, error: &serde_json::Error) -> (usize, String) {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(error.line().saturating_sub(1))
        .map(str::len)
        .sum();
    let message = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    let message = message
        .strip_suffix(&position)
        .map_or_else(|| message.clone(), str::to_string);
    (line_start + error.column(), message)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;
    use crate::config::document::{Text, Whole};

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        name: Option<Text>,
        size: Option<Whole<0, 9>>,
    }

    fn fault_text(text: &str) -> String {
        let error = serde_json::from_str::<BTreeMap<String, Vec<Item>>>(text).unwrap_err();
        let (path, message) = error_path(text, &error);
        format!("{path}: {message}")
    }

    #[test]
    fn names_the_field_whatever_its_place() {
        let bound = "must be a whole number from 0 to 9";
        // Last in its mapping and list, and not.
        assert_eq!(
            fault_text(r#"{"a":[{"size":12}]}"#),
            format!("a[0].size: {bound}, got 12")
        );
        assert_eq!(
            fault_text(r#"{"a":[{"size":12,"name":"x"}]}"#),
            format!("a[0].size: {bound}, got 12")
        );
        assert_eq!(
            fault_text(r#"{"a":[{"size":1},{"name":" "}],"b":[]}"#),
            "a[1].name: must not be empty"
        );
        // A list or mapping where a number belongs, empty or not.
        assert_eq!(
            fault_text(r#"{"a":[{"size":[]}]}"#),
            format!("a[0].size: {bound}, got a list")
        );
        assert_eq!(
            fault_text(r#"{"a":[{"size":{"x":[1]},"name":"n"}]}"#),
            format!("a[0].size: {bound}, got a mapping")
        );
        // serde_json's own faults: a type, an unknown field, a list expected.
        assert_eq!(
            fault_text(r#"{"a":[{"name":5}]}"#),
            "a[0].name: invalid type: integer `5`, expected a string"
        );
        assert!(
            fault_text(r#"{"a":[{},{"nmae":"x"}]}"#).starts_with("a[1].nmae: unknown field `nmae`")
        );
        assert_eq!(
            fault_text(r#"{"a":{}}"#),
            "a: invalid type: map, expected a sequence"
        );
        assert_eq!(fault_text("[]"), ": invalid type: sequence, expected a map");
    }

    #[test]
    fn keys_are_unescaped_and_strings_may_hold_brackets() {
        let text = r#"{"x\"]}":[{"name":"[{,\"]}"},{"size":10}]}"#;
        assert_eq!(
            fault_text(text),
            r#"x"]}[1].size: must be a whole number from 0 to 9, got 10"#
        );
        let error = serde_json::from_str::<BTreeMap<String, Vec<Item>>>(text).unwrap_err();
        assert_eq!(error_pointer(text, &error), "/x\"]}/1/size");
    }

    #[test]
    fn a_missing_field_is_its_mapping_s() {
        #[derive(Debug, Deserialize)]
        struct Needs {
            #[allow(dead_code)]
            key: String,
        }
        let text = r#"{"a":[{"key":"k"},{}]}"#;
        let error = serde_json::from_str::<BTreeMap<String, Vec<Needs>>>(text).unwrap_err();
        assert_eq!(error_path(text, &error).0, "a[1]");
    }

    #[test]
    fn positions_on_later_lines_count_from_their_line() {
        let text = "{\n\"a\": [{\"size\": 1},\n {\"size\": 30}]}";
        assert_eq!(
            fault_text(text),
            "a[1].size: must be a whole number from 0 to 9, got 30"
        );
    }
}
