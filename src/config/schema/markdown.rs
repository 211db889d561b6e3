//! The configuration reference (`docs/config-reference.md`): one table per object, in the
//! order the fields are described; an object or group of fields met again is referred to, not
//! repeated.

use super::{plugin_object, Default, Field, Literal, Object, Shape};
use crate::float_text::write_float;

const INTRO: &str = "\
# Configuration reference

<!-- Generated from src/config/schema.rs by tests/schema.rs; do not edit. Regenerate with
`UPDATE_SCHEMA=1 cargo test --test schema`. -->

Every field of the plugin's configuration (YAML or JSON; Higress's console sends JSON). A field
the plugin does not know is refused, and so is a field that only applies to a mode that is off
(say `redis.refresh_interval_ms` without `refresh: background`): the plugin logs one line naming
the field's path and the reason, and the host does not start it. The same descriptions generate
the JSON Schema [`schema/ai-load-balancer.schema.json`](../schema/ai-load-balancer.schema.json)
and Higress's console form [`higress/spec.yaml`](../higress/spec.yaml). In paths, `[]` stands for
every item of a list and `<name>` for every entry of a mapping; times are in milliseconds.
";

/// The reference, as shipped in `docs/config-reference.md`.
pub fn config_reference_markdown() -> String {
    let mut writer = Writer {
        out: INTRO.to_string(),
        objects: Vec::new(),
        groups: Vec::new(),
    };
    writer.objects.push((plugin_object(), String::new()));
    writer.section("", plugin_object());
    writer.out
}

struct Writer {
    out: String,
    /// Objects already described, and where.
    objects: Vec<(&'static Object, String)>,
    groups: Vec<(&'static [Field], String)>,
}

impl Writer {
    /// An object's table, then its nested objects' (each claimed by the first path it has).
    fn section(&mut self, path: &str, object: &'static Object) {
        let heading = if path.is_empty() {
            "Top level".to_string()
        } else {
            format!("`{path}`")
        };
        self.out.push_str(&format!("\n## {heading}\n\n"));
        self.out
            .push_str("| field | type | default | values | meaning |\n|---|---|---|---|---|\n");
        let mut children: Vec<(String, &'static Object)> = Vec::new();
        let mut shared: Vec<(&'static [Field], String)> = Vec::new();
        for group in object.groups {
            let seen = self
                .groups
                .iter()
                .find(|(known, _)| std::ptr::eq(*known, *group))
                .map(|(_, at)| at.clone());
            if let Some(at) = seen {
                shared.push((group, at));
                continue;
            }
            self.groups.push((*group, path.to_string()));
            for field in group.iter() {
                let field_path = join(path, field.name);
                let mut meaning = field.en.to_string();
                if let Some((child_path, child)) = nested_object(&field.shape, &field_path) {
                    match self.described_at(child) {
                        Some(at) => {
                            meaning.push_str(&format!(" Its fields are described under `{at}`."))
                        }
                        None => {
                            self.objects.push((child, child_path.clone()));
                            children.push((child_path, child));
                        }
                    }
                }
                self.row(field, &meaning);
            }
        }
        for (group, at) in shared {
            let note = self.shared_note(group, &at);
            self.out.push_str(&format!("\n{note}\n"));
        }
        for (child_path, child) in children {
            self.section(&child_path, child);
        }
    }

    /// Says which fields a group shared with an object described before adds to this one.
    fn shared_note(&self, group: &'static [Field], at: &str) -> String {
        let place = if at.is_empty() {
            "the top level".to_string()
        } else {
            format!("`{at}`")
        };
        let owner = self
            .objects
            .iter()
            .find(|(_, path)| path == at)
            .map(|(object, _)| *object);
        let in_group = |field: &Field| group.iter().any(|own| own.name == field.name);
        let mut others: Vec<String> = Vec::new();
        if let Some(owner) = owner {
            for field in owner.fields() {
                if !in_group(field) {
                    others.push(format!("`{}`", field.name));
                }
            }
        }
        let names: Vec<String> = group.iter().map(|f| format!("`{}`", f.name)).collect();
        if group.len() <= others.len() {
            format!("And {}, as described under {place}.", names.join(", "))
        } else if others.is_empty() {
            format!("And every field of {place}, as described there.")
        } else {
            format!(
                "And every field of {place} but {}, as described there.",
                others.join(", ")
            )
        }
    }

    fn described_at(&self, object: &'static Object) -> Option<String> {
        self.objects
            .iter()
            .find(|(known, _)| std::ptr::eq(*known, object))
            .map(|(_, at)| at.clone())
    }

    fn row(&mut self, field: &Field, meaning: &str) {
        let default = match &field.default {
            Default::Value(literal) => format!("`{}`", literal_text(literal)),
            Default::Described(text) => text.to_string(),
            Default::None if field.required => "required".to_string(),
            Default::None => "—".to_string(),
        };
        let cells = [
            format!("`{}`", field.name),
            type_name(&field.shape, false),
            default,
            values(&field.shape),
            meaning.to_string(),
        ];
        self.out.push('|');
        for cell in cells {
            // A `|` ends a table cell even inside backticks.
            self.out
                .push_str(&format!(" {} |", cell.replace('|', "\\|")));
        }
        self.out.push('\n');
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// The object a field's value is (or holds), and the path its fields get.
fn nested_object(shape: &Shape, path: &str) -> Option<(String, &'static Object)> {
    match shape {
        Shape::Object(object) => Some((path.to_string(), object)),
        Shape::List { item, .. } => nested_object(item, &format!("{path}[]")),
        Shape::Map(value) => nested_object(value, &format!("{path}.<name>")),
        Shape::Either(shapes) => shapes.iter().find_map(|shape| nested_object(shape, path)),
        _ => None,
    }
}

fn type_name(shape: &Shape, plural: bool) -> String {
    let s = if plural { "s" } else { "" };
    match shape {
        Shape::Str { .. } => format!("string{s}"),
        Shape::Int { .. } => format!("integer{s}"),
        Shape::Num { .. } => format!("number{s}"),
        Shape::Bool => format!("boolean{s}"),
        Shape::List { item, .. } => format!("list{s} of {}", type_name(item, true)),
        Shape::Object(_) => format!("mapping{s}"),
        Shape::Map(value) => format!("mapping{s} of names to {}", type_name(value, true)),
        Shape::Either(shapes) => shapes
            .iter()
            .map(|shape| type_name(shape, plural))
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

fn values(shape: &Shape) -> String {
    match shape {
        Shape::Str { values, .. } if !values.is_empty() => values
            .iter()
            .map(|value| format!("`{value}`"))
            .collect::<Vec<_>>()
            .join(", "),
        Shape::Str { non_empty, .. } => if *non_empty { "non-empty" } else { "" }.to_string(),
        Shape::Int { min, max } => format!("{min} to {max}"),
        Shape::Num { min, max } => {
            let mut text = String::new();
            write_float(&mut text, *min);
            text.push_str(" to ");
            write_float(&mut text, *max);
            text
        }
        Shape::List { item, non_empty } => {
            let mut parts = Vec::new();
            if *non_empty {
                parts.push("at least one".to_string());
            }
            let each = values(item);
            if !each.is_empty() {
                parts.push(format!("each {each}"));
            }
            parts.join("; ")
        }
        Shape::Map(_) => "at least one".to_string(),
        Shape::Either(shapes) => shapes
            .iter()
            .map(values)
            .filter(|text| !text.is_empty())
            .collect::<Vec<_>>()
            .join(" or "),
        Shape::Bool | Shape::Object(_) => String::new(),
    }
}

fn literal_text(literal: &Literal) -> String {
    match literal {
        Literal::Str("") => "\"\"".to_string(),
        Literal::Str(text) => text.to_string(),
        Literal::Int(number) => number.to_string(),
        Literal::Num(number) => {
            let mut text = String::new();
            write_float(&mut text, *number);
            text
        }
        Literal::Bool(flag) => flag.to_string(),
        Literal::List(items) => {
            let items: Vec<String> = items
                .iter()
                .map(|item| match item {
                    Literal::Str(text) => format!("\"{text}\""),
                    other => literal_text(other),
                })
                .collect();
            format!("[{}]", items.join(", "))
        }
    }
}
