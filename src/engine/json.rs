//! The HTTP JSON metrics endpoint (a "metadata center"): one GET answers for every provider,
//! `{"<provider>": {"running": 3, "waiting": 1, "cache_ratio": 0.4, "kv_usage": 0.5}, ...}`,
//! optionally wrapped as `{"providers": {...}}`.

use serde_json::{Map, Value};

use super::{count, ratio};
use crate::load::{Load, Loads};

/// Each figure under the names metadata centers use for it; the first one present wins.
const RUNNING: &[&str] = &["running", "running_requests", "request_load"];
const WAITING: &[&str] = &[
    "waiting",
    "waiting_requests",
    "prefill_requests",
    "prefill_load",
];
const CACHE_RATIO: &[&str] = &["cache_ratio", "cache_hit_ratio"];
const KV_USAGE: &[&str] = &["kv_usage"];

/// The load of each provider in `names`, in that order. A provider that is absent, or whose
/// running figure is missing, not a number or negative, is unknown; a waiting figure that is
/// not a count, or a ratio outside 0 to 1, is only that field unknown. Numbers written as
/// strings (`"3"`) are read as numbers.
pub fn parse_json_loads(body: &[u8], names: &[&str]) -> Result<Loads, String> {
    let reply: Value = serde_json::from_slice(body)
        .map_err(|err| format!("metrics endpoint reply is not JSON: {err}"))?;
    let Value::Object(top) = &reply else {
        return Err(format!(
            "metrics endpoint reply is {}, not an object of providers",
            json_kind(&reply)
        ));
    };
    let providers = match top.get("providers") {
        // Unless a provider is itself called "providers": then the reply is not wrapped.
        Some(Value::Object(inner)) if !names.contains(&"providers") => inner,
        _ => top,
    };
    Ok(names
        .iter()
        .map(|name| providers.get(*name).and_then(provider_load))
        .collect())
}

fn provider_load(metrics: &Value) -> Option<Load> {
    let metrics = metrics.as_object()?;
    Some(Load {
        running: figure(metrics, RUNNING).and_then(count)?,
        waiting: figure(metrics, WAITING).and_then(count),
        cache_ratio: figure(metrics, CACHE_RATIO).and_then(ratio),
        kv_usage: figure(metrics, KV_USAGE).and_then(ratio),
    })
}

/// The first of `names` present and not null, as a number.
fn figure(metrics: &Map<String, Value>, names: &[&str]) -> Option<f64> {
    let value = names
        .iter()
        .find_map(|name| metrics.get(*name).filter(|value| !value.is_null()))?;
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(running: f64, waiting: f64, cache_ratio: f64, kv_usage: f64) -> Option<Load> {
        Some(Load {
            running,
            waiting: Some(waiting),
            cache_ratio: Some(cache_ratio),
            kv_usage: Some(kv_usage),
        })
    }

    #[test]
    fn reads_each_named_provider_in_the_order_asked() {
        let body = br#"{
            "vllm-b": {"running": 7, "waiting": 0, "cache_ratio": 0.9, "kv_usage": 0.75},
            "vllm-a": {"running": 3, "waiting": 1, "cache_ratio": 0.4, "kv_usage": 0.5},
            "not-configured": {"running": 0}
        }"#;
        assert_eq!(
            parse_json_loads(body, &["vllm-a", "vllm-b"]).unwrap(),
            vec![load(3.0, 1.0, 0.4, 0.5), load(7.0, 0.0, 0.9, 0.75)]
        );
    }

    #[test]
    fn accepts_the_metadata_center_names_for_each_figure() {
        let body = br#"{
            "a": {"running_requests": 2, "waiting_requests": 1, "cache_hit_ratio": 0.5},
            "b": {"request_load": 4, "prefill_requests": 2},
            "c": {"request_load": 6, "prefill_load": 3}
        }"#;
        let loads = parse_json_loads(body, &["a", "b", "c"]).unwrap();
        let figures: Vec<_> = loads
            .iter()
            .map(|load| load.map(|load| (load.running, load.waiting, load.cache_ratio)))
            .collect();
        assert_eq!(
            figures,
            vec![
                Some((2.0, Some(1.0), Some(0.5))),
                Some((4.0, Some(2.0), None)),
                Some((6.0, Some(3.0), None)),
            ]
        );
    }

    #[test]
    fn the_first_name_given_wins_and_null_counts_as_absent() {
        let body = br#"{"a": {"running": null, "request_load": 5, "running_requests": 9}}"#;
        assert_eq!(
            parse_json_loads(body, &["a"]).unwrap(),
            vec![Some(Load {
                running: 9.0,
                ..Load::default()
            })]
        );
    }

    #[test]
    fn accepts_the_reply_wrapped_in_providers() {
        let body = br#"{"providers": {"a": {"running": 1}, "b": {"running": "2.5"}}}"#;
        assert_eq!(
            parse_json_loads(body, &["a", "b"]).unwrap(),
            vec![Some(Load::running(1.0)), Some(Load::running(2.5))]
        );
        // A provider called "providers" means the reply is not wrapped.
        let named = br#"{"providers": {"running": 4}}"#;
        assert_eq!(
            parse_json_loads(named, &["providers"]).unwrap(),
            vec![Some(Load::running(4.0))]
        );
    }

    #[test]
    fn a_provider_without_a_readable_running_figure_is_unknown() {
        let body = br#"{
            "negative": {"running": -1, "waiting": 1},
            "text": {"running": "busy"},
            "boolean": {"running": true},
            "missing": {"waiting": 3},
            "not-an-object": 5,
            "ok": {"running": 0}
        }"#;
        let names = [
            "negative",
            "text",
            "boolean",
            "missing",
            "not-an-object",
            "absent",
            "ok",
        ];
        let loads = parse_json_loads(body, &names).unwrap();
        assert_eq!(loads.len(), names.len());
        assert!(loads[..6].iter().all(Option::is_none), "{loads:?}");
        assert_eq!(loads[6], Some(Load::running(0.0)));
    }

    #[test]
    fn an_unreadable_figure_other_than_running_drops_only_that_field() {
        let body = br#"{"a": {"running": 2, "waiting": -3, "cache_ratio": 1.2, "kv_usage": "full"},
                        "b": {"running": 2, "waiting": 1, "cache_ratio": -0.1, "kv_usage": 1}}"#;
        assert_eq!(
            parse_json_loads(body, &["a", "b"]).unwrap(),
            vec![
                Some(Load::running(2.0)),
                Some(Load {
                    running: 2.0,
                    waiting: Some(1.0),
                    cache_ratio: None,
                    kv_usage: Some(1.0),
                }),
            ]
        );
    }

    #[test]
    fn a_reply_that_is_not_an_object_of_providers_is_refused() {
        let err = parse_json_loads(b"[1, 2]", &["a"]).unwrap_err();
        assert_eq!(
            err,
            "metrics endpoint reply is an array, not an object of providers"
        );
        let err = parse_json_loads(b"{\"a\": ", &["a"]).unwrap_err();
        assert!(
            err.starts_with("metrics endpoint reply is not JSON: EOF"),
            "{err}"
        );
        assert!(parse_json_loads(b"", &["a"]).is_err());
    }
}
