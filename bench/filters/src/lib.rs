//! Benchmark-only proxy-wasm filters that the real filter is measured against. One module; the
//! plugin configuration (a JSON object) picks the `mode`:
//!
//! * `store_round_trip` — the floor of any per-request design: one Webdis GET per request with
//!   a body, then a fixed `x-selected-provider: minmax` and a route re-match. No parsing, no body
//!   handling. Fields: `cluster` (default `webdis`), `path` (default the real filter's MGET),
//!   `timeout_ms` (default 100), `shared_data_key` (none by default): when set, each request
//!   also reads that shared-data key once (the root context writes it at start), the floor of a
//!   per-request design that keeps anything in shared data.
//! * `serde_rewrite` — a plain serde_json baseline for the body rewrite inside Envoy: buffer the
//!   whole body, parse it into a `Value`, set `model`, serialize it back. Field: `new_model`
//!   (default `qwen3-max-preview`).
//! * `buffer_only` — `serde_rewrite` without the parse: the same header change and the same
//!   buffering, the body never read, so a harness can tell Envoy's buffering cost from the
//!   parse's.
//! * `body_round_trip` — holds the headers until the body is whole (as the real filter does
//!   under `allow_on_headers_stop_iteration: true`), then copies the whole body into the VM and
//!   back unchanged (one `get_buffer`, one `set_buffer`): the floor of any filter that rewrites
//!   the body. Needs `allow_on_headers_stop_iteration: true` (without it Envoy hands a filter
//!   holding the headers no body, and the request waits for its stream timeout). Field
//!   `route_to` (a list of provider names, none by default): each request then also sets
//!   `x-selected-provider` to the next name in turn and re-matches its route, the floor of any
//!   filter that both rewrites the body and chooses the provider (what Envoy does for the
//!   header write and the route re-match, with no decision in the VM). Field `header_reads`
//!   (0 by default, at most 100): that many extra reads of a request header no client sends,
//!   the cheapest host call there is, so that a floor can make as many host calls as the real
//!   filter and show what the calls themselves cost. Fields that add host calls of one kind
//!   each (0 by default, at most 100), so that a floor can make the real filter's calls kind by
//!   kind with no decision behind them: `header_writes` (writes of a request header
//!   `x-bench-written`), `shared_reads` (reads of one shared-data key the root context writes
//!   at start, its value empty as the real filter's per-request reads find it), `shared_writes` (compare-and-swap writes, as a
//!   round-robin ticket makes them: read the ticket with its cas, write it back incremented
//!   with that cas), `counter_increments` (increments of as many counters, defined once at
//!   start: `bench_floor.increments_<n>`, each moved once per request), `clock_reads`, and on
//!   the response side, where the real filter meters a successful answer: `response_reads`
//!   (reads of the response body chunk, `get_http_response_body(0, size)`, in the
//!   response-body callback, for each chunk with bytes), `response_header_reads` (reads of the
//!   response's `content-type`, in the response-headers callback) and `histogram_records`
//!   (histograms defined once at start, `bench_floor.histogram_<n>`, each given one sample per
//!   request: the first at the response headers, as the real filter's time to first byte, the
//!   others at the response's end, as its duration; the sample is a fixed 1 ms, since reading
//!   the clock for it would add calls `clock_reads` already makes). The response passes
//!   unchanged, never held. Field
//!   `at_headers` (false by default): true decides at the request headers instead, as the
//!   real filter does when it chooses on the headers: the route header set, `content-length`
//!   removed (a rewrite may change the length, so Envoy sends the body upstream chunked), the
//!   request-side extra calls made and the headers continued at once; each body chunk is then copied into
//!   the VM and back unchanged as it passes.
//! * `noop` — continues at every callback: what any proxy-wasm filter costs in Envoy before it
//!   does anything (the VM calls per request: context creation, each callback, the end).
//!
//! Unknown fields, and fields the chosen mode does not use, are refused by name, so that a typo
//! in a benchmark's configuration cannot silently measure the wrong thing.
//!
//! Everything here is host-independent and unit-tested natively; `filter` holds the proxy-wasm
//! glue and is compiled for wasm only.

use serde_json::{Map, Value};

#[cfg(target_arch = "wasm32")]
mod extra_calls;
#[cfg(target_arch = "wasm32")]
mod filter;

pub const DEFAULT_CLUSTER: &str = "webdis";
pub const DEFAULT_PATH: &str = "/MGET/ai_metric:minimax_1/ai_metric:qwen_1.json";
pub const DEFAULT_TIMEOUT_MS: u64 = 100;
pub const DEFAULT_NEW_MODEL: &str = "qwen3-max-preview";
const MAX_TIMEOUT_MS: u64 = 60_000;
/// The most calls of one kind a floor makes per request.
const MAX_CALLS: u64 = 100;
const MODES: &[&str] = &[
    "store_round_trip",
    "serde_rewrite",
    "buffer_only",
    "body_round_trip",
    "noop",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    StoreRoundTrip {
        cluster: String,
        path: String,
        timeout_ms: u64,
        shared_data_key: Option<String>,
    },
    SerdeRewrite {
        new_model: String,
    },
    BufferOnly,
    BodyRoundTrip {
        route_to: Vec<String>,
        /// Decide and continue at the request headers, streaming the body (see the module doc).
        at_headers: bool,
        calls: ExtraCalls,
    },
    Noop,
}

/// Host calls a `body_round_trip` floor makes per request beside its body copy and route, by
/// kind; each count is at most `MAX_CALLS`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtraCalls {
    pub header_reads: u64,
    pub header_writes: u64,
    pub shared_reads: u64,
    pub shared_writes: u64,
    pub counter_increments: u64,
    pub clock_reads: u64,
    /// Reads of the response body chunk, in the response-body callback, each chunk.
    pub response_reads: u64,
    /// Reads of the response's `content-type`, in the response-headers callback.
    pub response_header_reads: u64,
    /// Histograms each given one sample per request (the first at the response headers, the
    /// others at the response's end).
    pub histogram_records: u64,
}

const BODY_ROUND_TRIP_FIELDS: &[&str] = &[
    "route_to",
    "at_headers",
    "header_reads",
    "header_writes",
    "shared_reads",
    "shared_writes",
    "counter_increments",
    "clock_reads",
    "response_reads",
    "response_header_reads",
    "histogram_records",
];

impl ExtraCalls {
    fn parse(fields: &Map<String, Value>) -> Result<Self, String> {
        let count = |name| count(fields, name, MAX_CALLS);
        Ok(Self {
            header_reads: count("header_reads")?,
            header_writes: count("header_writes")?,
            shared_reads: count("shared_reads")?,
            shared_writes: count("shared_writes")?,
            counter_increments: count("counter_increments")?,
            clock_reads: count("clock_reads")?,
            response_reads: count("response_reads")?,
            response_header_reads: count("response_header_reads")?,
            histogram_records: count("histogram_records")?,
        })
    }
}

impl Mode {
    pub fn name(&self) -> &'static str {
        match self {
            Mode::StoreRoundTrip { .. } => "store_round_trip",
            Mode::SerdeRewrite { .. } => "serde_rewrite",
            Mode::BufferOnly => "buffer_only",
            Mode::BodyRoundTrip { .. } => "body_round_trip",
            Mode::Noop => "noop",
        }
    }
}

/// Parses the plugin configuration; an error names the offending field.
pub fn parse_config(bytes: &[u8]) -> Result<Mode, String> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|err| format!("the configuration is not JSON: {err}"))?;
    let Value::Object(fields) = value else {
        return Err("the configuration is not a JSON object".into());
    };
    let mode = match fields.get("mode") {
        Some(Value::String(mode)) => mode.as_str(),
        Some(_) => return Err("field `mode`: not a string".into()),
        None => return Err("field `mode`: missing".into()),
    };
    let (mode, allowed): (Mode, &[&str]) = match mode {
        "store_round_trip" => (
            Mode::StoreRoundTrip {
                cluster: text(&fields, "cluster", DEFAULT_CLUSTER)?,
                path: path(&fields)?,
                timeout_ms: timeout_ms(&fields)?,
                shared_data_key: match fields.get("shared_data_key") {
                    None => None,
                    Some(_) => Some(text(&fields, "shared_data_key", "")?),
                },
            },
            &["cluster", "path", "timeout_ms", "shared_data_key"],
        ),
        "serde_rewrite" => (
            Mode::SerdeRewrite {
                new_model: text(&fields, "new_model", DEFAULT_NEW_MODEL)?,
            },
            &["new_model"],
        ),
        "buffer_only" => (Mode::BufferOnly, &[]),
        "body_round_trip" => (
            Mode::BodyRoundTrip {
                route_to: names(&fields, "route_to")?,
                at_headers: flag(&fields, "at_headers")?,
                calls: ExtraCalls::parse(&fields)?,
            },
            BODY_ROUND_TRIP_FIELDS,
        ),
        "noop" => (Mode::Noop, &[]),
        other => {
            return Err(format!(
                "field `mode`: {other:?} is not one of {}",
                MODES.join(", ")
            ))
        }
    };
    if let Some(field) = fields
        .keys()
        .find(|key| *key != "mode" && !allowed.contains(&key.as_str()))
    {
        return Err(format!(
            "field `{field}`: unknown, or not used by mode {}",
            mode.name()
        ));
    }
    Ok(mode)
}

fn text(fields: &Map<String, Value>, name: &str, default: &str) -> Result<String, String> {
    match fields.get(name) {
        None => Ok(default.to_string()),
        Some(Value::String(value)) if !value.is_empty() => Ok(value.clone()),
        Some(_) => Err(format!("field `{name}`: not a non-empty string")),
    }
}

/// A list of non-empty strings; absent: none.
fn names(fields: &Map<String, Value>, name: &str) -> Result<Vec<String>, String> {
    let Some(value) = fields.get(name) else {
        return Ok(Vec::new());
    };
    let not_names = || format!("field `{name}`: not a list of non-empty strings");
    let items = value.as_array().ok_or_else(not_names)?;
    items
        .iter()
        .map(|item| match item {
            Value::String(text) if !text.is_empty() => Ok(text.clone()),
            _ => Err(not_names()),
        })
        .collect()
}

fn path(fields: &Map<String, Value>) -> Result<String, String> {
    let path = text(fields, "path", DEFAULT_PATH)?;
    if !path.starts_with('/') {
        return Err("field `path`: must start with /".into());
    }
    Ok(path)
}

/// A whole number from 0 to `max`; absent: 0.
fn count(fields: &Map<String, Value>, name: &str, max: u64) -> Result<u64, String> {
    match fields.get(name) {
        None => Ok(0),
        Some(value) => match value.as_u64() {
            Some(count) if count <= max => Ok(count),
            _ => Err(format!("field `{name}`: not an integer from 0 to {max}")),
        },
    }
}

/// true or false; absent: false.
fn flag(fields: &Map<String, Value>, name: &str) -> Result<bool, String> {
    match fields.get(name) {
        None => Ok(false),
        Some(Value::Bool(value)) => Ok(*value),
        Some(_) => Err(format!("field `{name}`: not true or false")),
    }
}

fn timeout_ms(fields: &Map<String, Value>) -> Result<u64, String> {
    match fields.get("timeout_ms") {
        None => Ok(DEFAULT_TIMEOUT_MS),
        Some(value) => match value.as_u64() {
            Some(ms) if (1..=MAX_TIMEOUT_MS).contains(&ms) => Ok(ms),
            _ => Err(format!(
                "field `timeout_ms`: not an integer from 1 to {MAX_TIMEOUT_MS}"
            )),
        },
    }
}

/// The body with its top-level `model` set to `model`, re-serialized by serde_json; `None` when
/// the body is not a JSON object (it is then forwarded untouched).
pub fn rewrite_model(body: &[u8], model: &str) -> Option<Vec<u8>> {
    let mut value: Value = serde_json::from_slice(body).ok()?;
    value
        .as_object_mut()?
        .insert("model".into(), Value::String(model.into()));
    serde_json::to_vec(&value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_defaults() {
        assert_eq!(
            parse_config(br#"{"mode":"store_round_trip"}"#).unwrap(),
            Mode::StoreRoundTrip {
                cluster: "webdis".into(),
                path: DEFAULT_PATH.into(),
                timeout_ms: 100,
                shared_data_key: None
            }
        );
        assert_eq!(
            parse_config(
                br#"{"mode":"store_round_trip","cluster":"w","path":"/PING.json","timeout_ms":5}"#
            )
            .unwrap(),
            Mode::StoreRoundTrip {
                cluster: "w".into(),
                path: "/PING.json".into(),
                timeout_ms: 5,
                shared_data_key: None
            }
        );
        assert_eq!(
            parse_config(br#"{"mode":"store_round_trip","shared_data_key":"bench.loads"}"#)
                .unwrap(),
            Mode::StoreRoundTrip {
                cluster: "webdis".into(),
                path: DEFAULT_PATH.into(),
                timeout_ms: 100,
                shared_data_key: Some("bench.loads".into())
            }
        );
        assert_eq!(
            parse_config(br#"{"mode":"body_round_trip"}"#).unwrap(),
            Mode::BodyRoundTrip {
                route_to: vec![],
                at_headers: false,
                calls: ExtraCalls::default()
            }
        );
        assert_eq!(
            parse_config(br#"{"mode":"body_round_trip","route_to":["a","b"],"header_reads":16}"#)
                .unwrap(),
            Mode::BodyRoundTrip {
                route_to: vec!["a".into(), "b".into()],
                at_headers: false,
                calls: ExtraCalls {
                    header_reads: 16,
                    ..ExtraCalls::default()
                }
            }
        );
        assert_eq!(
            parse_config(
                br#"{"mode":"body_round_trip","route_to":["a"],"at_headers":true,
                     "header_reads":5,"header_writes":1,"shared_reads":3,"shared_writes":1,
                     "counter_increments":3,"clock_reads":2,"response_reads":1,
                     "response_header_reads":3,"histogram_records":2}"#
            )
            .unwrap(),
            Mode::BodyRoundTrip {
                route_to: vec!["a".into()],
                at_headers: true,
                calls: ExtraCalls {
                    header_reads: 5,
                    header_writes: 1,
                    shared_reads: 3,
                    shared_writes: 1,
                    counter_increments: 3,
                    clock_reads: 2,
                    response_reads: 1,
                    response_header_reads: 3,
                    histogram_records: 2
                }
            }
        );
        assert_eq!(
            parse_config(br#"{"mode":"body_round_trip","at_headers":false,"clock_reads":100}"#)
                .unwrap(),
            Mode::BodyRoundTrip {
                route_to: vec![],
                at_headers: false,
                calls: ExtraCalls {
                    clock_reads: 100,
                    ..ExtraCalls::default()
                }
            }
        );
        assert_eq!(
            parse_config(br#"{"mode":"body_round_trip","histogram_records":100}"#).unwrap(),
            Mode::BodyRoundTrip {
                route_to: vec![],
                at_headers: false,
                calls: ExtraCalls {
                    histogram_records: 100,
                    ..ExtraCalls::default()
                }
            }
        );
        assert_eq!(
            parse_config(br#"{"mode":"serde_rewrite"}"#).unwrap(),
            Mode::SerdeRewrite {
                new_model: "qwen3-max-preview".into()
            }
        );
        assert_eq!(parse_config(br#"{"mode":"noop"}"#).unwrap(), Mode::Noop);
        assert_eq!(
            parse_config(br#"{"mode":"buffer_only"}"#).unwrap(),
            Mode::BufferOnly
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "not JSON"),
            (b"[]", "not a JSON object"),
            (b"{}", "field `mode`: missing"),
            (br#"{"mode":1}"#, "field `mode`"),
            (br#"{"mode":"fast"}"#, "field `mode`"),
            (
                br#"{"mode":"buffer_only","new_model":"x"}"#,
                "field `new_model`",
            ),
            (
                br#"{"mode":"serde_rewrite","timeout":1}"#,
                "field `timeout`",
            ),
            (
                br#"{"mode":"serde_rewrite","new_model":""}"#,
                "field `new_model`",
            ),
            (
                br#"{"mode":"store_round_trip","cluster":3}"#,
                "field `cluster`",
            ),
            (
                br#"{"mode":"store_round_trip","path":"MGET"}"#,
                "field `path`",
            ),
            (
                br#"{"mode":"store_round_trip","timeout_ms":0}"#,
                "field `timeout_ms`",
            ),
            (
                br#"{"mode":"store_round_trip","timeout_ms":1.5}"#,
                "field `timeout_ms`",
            ),
            (
                br#"{"mode":"store_round_trip","shared_data_key":""}"#,
                "field `shared_data_key`",
            ),
            (br#"{"mode":"body_round_trip","path":"/x"}"#, "field `path`"),
            (
                br#"{"mode":"body_round_trip","route_to":["a",""]}"#,
                "field `route_to`",
            ),
            (
                br#"{"mode":"body_round_trip","route_to":"a"}"#,
                "field `route_to`",
            ),
            (
                br#"{"mode":"body_round_trip","header_reads":101}"#,
                "field `header_reads`",
            ),
            (
                br#"{"mode":"body_round_trip","header_writes":101}"#,
                "field `header_writes`",
            ),
            (
                br#"{"mode":"body_round_trip","header_writes":-1}"#,
                "field `header_writes`",
            ),
            (
                br#"{"mode":"body_round_trip","shared_reads":101}"#,
                "field `shared_reads`",
            ),
            (
                br#"{"mode":"body_round_trip","shared_reads":-1}"#,
                "field `shared_reads`",
            ),
            (
                br#"{"mode":"body_round_trip","shared_writes":101}"#,
                "field `shared_writes`",
            ),
            (
                br#"{"mode":"body_round_trip","shared_writes":-1}"#,
                "field `shared_writes`",
            ),
            (
                br#"{"mode":"body_round_trip","counter_increments":101}"#,
                "field `counter_increments`",
            ),
            (
                br#"{"mode":"body_round_trip","counter_increments":-1}"#,
                "field `counter_increments`",
            ),
            (
                br#"{"mode":"body_round_trip","clock_reads":101}"#,
                "field `clock_reads`",
            ),
            (
                br#"{"mode":"body_round_trip","clock_reads":-1}"#,
                "field `clock_reads`",
            ),
            (
                br#"{"mode":"body_round_trip","response_reads":101}"#,
                "field `response_reads`",
            ),
            (
                br#"{"mode":"body_round_trip","response_reads":-1}"#,
                "field `response_reads`",
            ),
            (
                br#"{"mode":"body_round_trip","response_header_reads":101}"#,
                "field `response_header_reads`",
            ),
            (
                br#"{"mode":"body_round_trip","response_header_reads":1.5}"#,
                "field `response_header_reads`",
            ),
            (
                br#"{"mode":"body_round_trip","histogram_records":101}"#,
                "field `histogram_records`",
            ),
            (
                br#"{"mode":"body_round_trip","histogram_records":"2"}"#,
                "field `histogram_records`",
            ),
            (
                br#"{"mode":"noop","histogram_records":1}"#,
                "field `histogram_records`",
            ),
            (
                br#"{"mode":"body_round_trip","shared_reads":"3"}"#,
                "field `shared_reads`",
            ),
            (
                br#"{"mode":"body_round_trip","at_headers":"yes"}"#,
                "field `at_headers`",
            ),
            (
                br#"{"mode":"body_round_trip","at_headers":1}"#,
                "field `at_headers`",
            ),
            (
                br#"{"mode":"buffer_only","at_headers":true}"#,
                "field `at_headers`",
            ),
            (
                br#"{"mode":"store_round_trip","clock_reads":1}"#,
                "field `clock_reads`",
            ),
        ];
        for (config, field) in cases {
            let err = parse_config(config).unwrap_err();
            assert!(err.contains(field), "{config:?}: {err}");
        }
    }

    #[test]
    fn rewrite_sets_model_and_keeps_the_rest() {
        let body = br#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#;
        let out: Value = serde_json::from_slice(&rewrite_model(body, "m").unwrap()).unwrap();
        assert_eq!(out["model"], "m");
        assert_eq!(out["messages"][0]["content"], "hi");
        assert_eq!(
            serde_json::from_slice::<Value>(&rewrite_model(b"{}", "m").unwrap()).unwrap(),
            serde_json::json!({"model": "m"})
        );
        assert_eq!(rewrite_model(b"{", "m"), None);
        assert_eq!(rewrite_model(b"[1]", "m"), None);
    }
}
