//! One description of every configuration field (type, bounds, default, meaning in English and
//! Chinese), from which the shipped JSON Schema is generated; from that JSON Schema, writers
//! generate Higress's plugin `spec.yaml` (`spec`) and the Markdown configuration reference
//! (`markdown`). `tests/schema.rs` checks the three shipped files against these, and the
//! description against the parsers' field lists. Compiled off wasm only: the module never needs
//! it.

mod balancer;
mod health;
mod markdown;
mod pools;
mod resolve;
mod sources;
mod spec;
mod text;

use serde_json::Value;

pub use markdown::config_reference_markdown;
pub use resolve::SchemaError;
pub use spec::{english_title, higress_spec_yaml};
use text::Node;

/// One configuration field.
pub struct Field {
    pub name: &'static str,
    pub shape: Shape,
    /// Refused when absent, wherever its object appears.
    pub required: bool,
    pub default: Default,
    /// The field's title in Chinese (the English title is its name, spelt out).
    pub title_zh: &'static str,
    pub en: &'static str,
    pub zh: &'static str,
}

/// What a field's value may be.
pub enum Shape {
    /// A string: one of `values` when there are any; `non_empty` refuses `""`.
    Str {
        values: &'static [&'static str],
        non_empty: bool,
    },
    /// A whole number within `min..=max`.
    Int {
        min: u64,
        max: u64,
    },
    /// Any number within `min..=max`.
    Num {
        min: f64,
        max: f64,
    },
    Bool,
    /// A list of items; `non_empty` refuses `[]`.
    List {
        item: &'static Shape,
        non_empty: bool,
    },
    Object(&'static Object),
    /// A non-empty mapping of names the operator chooses to values of one shape (`models`).
    Map(&'static Shape),
    /// Any one of these shapes.
    Either(&'static [Shape]),
}

/// A mapping with a fixed set of fields; any other field is refused.
pub struct Object {
    /// Its fields, in groups: a group shared by several objects is written into each of their
    /// schemas (the reference then finds the fields described alike, and describes them once).
    pub groups: &'static [&'static [Field]],
    /// Exactly one of these fields must be present (`_rules_` entries' `_match_*_`).
    pub exactly_one_of: &'static [&'static str],
    /// At least one of these fields must be present.
    pub at_least_one_of: &'static [&'static str],
}

/// A non-empty string.
pub const TEXT: Shape = Shape::Str {
    values: &[],
    non_empty: true,
};
/// Any string, `""` included.
pub const ANY_TEXT: Shape = Shape::Str {
    values: &[],
    non_empty: false,
};

impl Field {
    /// An optional field; `.required()` makes it required.
    pub const fn new(
        name: &'static str,
        title_zh: &'static str,
        shape: Shape,
        default: Default,
        en: &'static str,
        zh: &'static str,
    ) -> Self {
        Self {
            name,
            shape,
            required: false,
            default,
            title_zh,
            en,
            zh,
        }
    }

    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
}

/// A string default.
pub const fn text(value: &'static str) -> Default {
    Default::Value(Literal::Str(value))
}

/// A whole-number default.
pub const fn int(value: u64) -> Default {
    Default::Value(Literal::Int(value))
}

impl Object {
    /// An object whose fields all are optional unless marked required.
    pub const fn of(groups: &'static [&'static [Field]]) -> Self {
        Self {
            groups,
            exactly_one_of: &[],
            at_least_one_of: &[],
        }
    }

    pub fn fields(&self) -> impl Iterator<Item = &'static Field> {
        self.groups.iter().flat_map(|group| group.iter())
    }
}

/// A field's value when it is absent.
pub enum Default {
    /// No value: the feature is off, or the field is required.
    None,
    /// This value (written into the schemas' `default`).
    Value(Literal),
    /// A default that depends on other fields or on the build, described in English (written
    /// into the JSON Schema's `x-default-description`, for the reference).
    Described(&'static str),
}

pub enum Literal {
    Str(&'static str),
    Int(u64),
    Num(f64),
    Bool(bool),
    List(&'static [Literal]),
}

/// The whole plugin configuration: a balancer configuration plus `_rules_`.
fn plugin_object() -> &'static Object {
    &balancer::PLUGIN
}

/// The plugin configuration's JSON Schema (draft-07).
pub fn json_schema() -> Value {
    json_schema_node().to_value()
}

/// The JSON Schema as shipped in `schema/ai-load-balancer.schema.json`: fields in the order
/// they are described here, two-space indents, a final line break.
pub fn json_schema_text() -> String {
    let mut out = json_schema_node().to_json();
    out.push('\n');
    out
}

fn json_schema_node() -> Node {
    let mut entries = vec![
        (
            "$schema".to_string(),
            Node::str("http://json-schema.org/draft-07/schema#"),
        ),
        (
            "$comment".to_string(),
            Node::str(
                "Generated from src/config/schema.rs by tests/schema.rs; regenerate with \
                 UPDATE_SCHEMA=1 cargo test --test schema.",
            ),
        ),
    ];
    entries.extend(document_schema(plugin_object()));
    Node::Map(entries)
}

/// A whole document's schema: a title and description, then the object's schema.
fn document_schema(object: &'static Object) -> Vec<(String, Node)> {
    let mut entries = vec![
        ("title".to_string(), Node::str("ai-load-balancer")),
        (
            "description".to_string(),
            Node::str(
                "Configuration of the ai-load-balancer proxy-wasm filter: the LLM providers, \
                 where their loads come from, model pools and strategies, health and retries.",
            ),
        ),
        (
            "x-description-i18n".to_string(),
            zh("ai-load-balancer 插件配置：LLM 服务提供方、负载来源、模型池与策略、健康检查与重试。"),
        ),
    ];
    entries.extend(object_entries(object));
    entries
}

/// Field lists the parsers accept, by where they apply in the schema: `[]` is a list's items,
/// `<name>` a mapping's values; where a field may be a name or a mapping, the mapping's.
pub fn parser_field_lists() -> Vec<(&'static str, Vec<&'static str>)> {
    let balancer_fields = super::balancer::FIELDS.to_vec();
    let mut top = balancer_fields.clone();
    top.push(super::RULES_KEY);
    let mut rule = crate::rules::RuleMatch::MATCH_KEYS.to_vec();
    rule.extend_from_slice(super::balancer::FIELDS);
    vec![
        ("", top),
        ("_rules_[]", rule),
        ("providers[]", super::balancer::PROVIDER_FIELDS.to_vec()),
        (
            "providers[].metrics",
            super::balancer::METRICS_FIELDS.to_vec(),
        ),
        (
            "providers[].prefix_rewrite",
            super::health::REWRITE_FIELDS.to_vec(),
        ),
        ("providers[].probe", super::health::PROBE_FIELDS.to_vec()),
        ("redis", super::sources::REDIS_FIELDS.to_vec()),
        ("redis.hash_fields", super::sources::HASH_FIELDS.to_vec()),
        ("endpoint", super::sources::ENDPOINT_FIELDS.to_vec()),
        ("engine_metrics", super::sources::ENGINE_FIELDS.to_vec()),
        ("in_flight", super::sources::IN_FLIGHT_FIELDS.to_vec()),
        ("strategy", super::pools::STRATEGY_FIELDS.to_vec()),
        ("models.<name>", super::pools::POOL_FIELDS.to_vec()),
        (
            "models.<name>.strategy",
            super::pools::STRATEGY_FIELDS.to_vec(),
        ),
        (
            "models.<name>.backends[]",
            super::pools::BACKEND_FIELDS.to_vec(),
        ),
        ("health", super::health::HEALTH_FIELDS.to_vec()),
        (
            "health.probe",
            super::health::PROBE_SCHEDULE_FIELDS.to_vec(),
        ),
        ("retry", super::health::RETRY_FIELDS.to_vec()),
        ("status_endpoint", super::health::STATUS_FIELDS.to_vec()),
    ]
}

/// The strategy names the pool parser knows, in its order.
pub fn parser_strategy_names() -> Vec<&'static str> {
    super::pools::STRATEGY_NAMES
        .split(',')
        .map(str::trim)
        .collect()
}

fn zh(text: &str) -> Node {
    Node::Map(vec![("zh-CN".to_string(), Node::str(text))])
}

fn field_schema(field: &Field) -> Node {
    let mut annotations = vec![
        ("title".to_string(), Node::str(&english_title(field.name))),
        ("x-title-i18n".to_string(), zh(field.title_zh)),
        ("description".to_string(), Node::str(field.en)),
        ("x-description-i18n".to_string(), zh(field.zh)),
    ];
    match &field.default {
        Default::Value(literal) => annotations.push(("default".to_string(), literal_node(literal))),
        Default::Described(text) => {
            annotations.push(("x-default-description".to_string(), Node::str(text)))
        }
        Default::None => {}
    }
    // After `type`, before the structure: a reader sees the type, then what the field means.
    let mut entries = shape_entries(&field.shape);
    let after_type = usize::from(entries.first().is_some_and(|(key, _)| key == "type"));
    let structure = entries.split_off(after_type);
    entries.extend(annotations);
    entries.extend(structure);
    Node::Map(entries)
}

fn literal_node(literal: &Literal) -> Node {
    match literal {
        Literal::Str(text) => Node::str(text),
        Literal::Int(number) => Node::Int(*number),
        Literal::Num(number) => Node::Num(*number),
        Literal::Bool(flag) => Node::Bool(*flag),
        Literal::List(items) => Node::List(items.iter().map(literal_node).collect()),
    }
}

fn shape_entries(shape: &Shape) -> Vec<(String, Node)> {
    let mut entries: Vec<(String, Node)> = Vec::new();
    match shape {
        Shape::Str { values, non_empty } => {
            entries.push(("type".into(), Node::str("string")));
            if !values.is_empty() {
                let values = values.iter().map(|value| Node::str(value)).collect();
                entries.push(("enum".into(), Node::List(values)));
            } else if *non_empty {
                entries.push(("minLength".into(), Node::Int(1)));
            }
        }
        Shape::Int { min, max } => {
            entries.push(("type".into(), Node::str("integer")));
            entries.push(("minimum".into(), Node::Int(*min)));
            entries.push(("maximum".into(), Node::Int(*max)));
        }
        Shape::Num { min, max } => {
            entries.push(("type".into(), Node::str("number")));
            entries.push(("minimum".into(), Node::Num(*min)));
            entries.push(("maximum".into(), Node::Num(*max)));
        }
        Shape::Bool => entries.push(("type".into(), Node::str("boolean"))),
        Shape::List { item, non_empty } => {
            entries.push(("type".into(), Node::str("array")));
            if *non_empty {
                entries.push(("minItems".into(), Node::Int(1)));
            }
            entries.push(("items".into(), Node::Map(shape_entries(item))));
        }
        Shape::Object(object) => return object_entries(object),
        Shape::Map(value) => {
            entries.push(("type".into(), Node::str("object")));
            entries.push(("minProperties".into(), Node::Int(1)));
            let values = Node::Map(shape_entries(value));
            entries.push(("additionalProperties".into(), values));
        }
        Shape::Either(shapes) => {
            let shapes = shapes
                .iter()
                .map(|shape| Node::Map(shape_entries(shape)))
                .collect();
            entries.push(("oneOf".into(), Node::List(shapes)));
        }
    }
    entries
}

fn object_entries(object: &Object) -> Vec<(String, Node)> {
    let mut entries = vec![("type".to_string(), Node::str("object"))];
    let required: Vec<Node> = object
        .fields()
        .filter(|field| field.required)
        .map(|field| Node::str(field.name))
        .collect();
    if !required.is_empty() {
        entries.push(("required".into(), Node::List(required)));
    }
    let one_each = |names: &[&str]| {
        let alternatives = names
            .iter()
            .map(|name| Node::Map(vec![("required".into(), Node::List(vec![Node::str(name)]))]))
            .collect();
        Node::List(alternatives)
    };
    if !object.exactly_one_of.is_empty() {
        entries.push(("oneOf".into(), one_each(object.exactly_one_of)));
    }
    if !object.at_least_one_of.is_empty() {
        entries.push(("anyOf".into(), one_each(object.at_least_one_of)));
    }
    let properties = object
        .fields()
        .map(|field| (field.name.to_string(), field_schema(field)))
        .collect();
    entries.push(("properties".into(), Node::Map(properties)));
    entries.push(("additionalProperties".into(), Node::Bool(false)));
    entries
}
