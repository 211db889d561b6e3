//! Loads read from a metrics endpoint's JSON (`parse_json_loads`) and from the Redis hash
//! reply, RESP or Webdis JSON (`parse_hash_loads`). Replies written here read back as written;
//! arbitrary and mutated ones never panic, and every figure read is a count or a ratio.

use ai_load_balancer::engine::{parse_hash_loads, parse_json_loads};
use ai_load_balancer::load::Load;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::mutate::{any_bytes, mutated_from, token_soup};
use crate::runner::config;

#[rustfmt::skip]
const JSON_TOKENS: &[&[u8]] = &[
    b"{", b"}", b"[", b"]", b",", b":", b"\"", b"\\", b"\"running\"", b"\"waiting\"",
    b"\"cache_ratio\"", b"\"providers\"", b"\"a\"", b"null", b"-1", b"1e400", b"\"3\"", b"0.5",
];

fn assert_count(figure: f64) {
    assert!(figure >= 0.0, "not a count: {figure}");
}

fn assert_ratio(figure: Option<f64>) {
    if let Some(figure) = figure {
        assert!((0.0..=1.0).contains(&figure), "not a ratio: {figure}");
    }
}

/// A load's figures are counts (finite unless `finite` is false: an engine page's counts
/// are summed over label sets, and the sum of finite figures may not be) and ratios.
pub fn assert_load(load: &Load, finite: bool) {
    assert_count(load.running);
    if let Some(waiting) = load.waiting {
        assert_count(waiting);
    }
    if finite {
        assert!(
            load.running.is_finite() && load.waiting.is_none_or(f64::is_finite),
            "{load:?}"
        );
    }
    assert_ratio(load.cache_ratio);
    assert_ratio(load.kv_usage);
}

/// Figures as a metrics endpoint may write them, and what the reader must make of them.
fn endpoint_figures() -> impl Strategy<Value = (Value, Option<Load>)> {
    let count = prop_oneof![
        (0..10_000u32).prop_map(|n| (json!(n), Some(f64::from(n)))),
        (0..10_000u32).prop_map(|n| (json!(format!(" {n} ")), Some(f64::from(n)))),
        Just((json!(-1), None)),
        Just((json!("busy"), None)),
        Just((Value::Null, None)),
    ];
    let ratio = prop_oneof![
        (0..=1000u32).prop_map(|k| {
            let ratio = f64::from(k) / 1000.0;
            (json!(ratio), Some(ratio))
        }),
        Just((json!(1.5), None)),
        Just((json!("1e400"), None)),
    ];
    (count.clone(), count, ratio.clone(), ratio).prop_map(|(running, waiting, cache, kv)| {
        let mut figures = Map::new();
        figures.insert("running".into(), running.0);
        figures.insert("waiting".into(), waiting.0);
        figures.insert("cache_ratio".into(), cache.0);
        figures.insert("kv_usage".into(), kv.0);
        let load = running.1.map(|running| Load {
            running,
            waiting: waiting.1,
            cache_ratio: cache.1,
            kv_usage: kv.1,
        });
        (Value::Object(figures), load)
    })
}

/// A hash field as Redis holds it, and what it reads as.
fn hash_field() -> impl Strategy<Value = (Option<String>, Option<f64>)> {
    prop_oneof![
        (0..=1000u32).prop_map(|k| (
            Some(format!("{}", f64::from(k) / 1000.0)),
            Some(f64::from(k) / 1000.0)
        )),
        (0..10_000u32).prop_map(|n| (Some(n.to_string()), Some(f64::from(n)))),
        Just((None, None)),
        Just((Some("-2".to_string()), None)),
        Just((Some("inf".to_string()), None)),
        Just((Some("x".to_string()), None)),
    ]
}

fn ratio(figure: Option<f64>) -> Option<f64> {
    figure.filter(|figure| (0.0..=1.0).contains(figure))
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn endpoint_reads_back_each_provider(
        providers in prop::collection::btree_map("[a-z]{1,6}", endpoint_figures(), 0..6),
        absent in prop::collection::vec("[A-Z]{1,3}", 0..3),
        wrapped in any::<bool>(),
    ) {
        let mut names: Vec<&str> = providers.keys().map(String::as_str).collect();
        names.extend(absent.iter().map(String::as_str));
        let expected: Vec<Option<Load>> = names
            .iter()
            .map(|name| providers.get(*name).and_then(|(_, load)| *load))
            .collect();
        let object: Map<String, Value> = providers
            .iter()
            .map(|(name, (figures, _))| (name.clone(), figures.clone()))
            .collect();
        let body = if wrapped { json!({"providers": object}) } else { Value::Object(object) };
        let loads = parse_json_loads(&serde_json::to_vec(&body).unwrap(), &names).unwrap();
        prop_assert_eq!(loads, expected);
    }

    #[test]
    fn endpoint_never_panics_and_reads_only_counts_and_ratios(
        body in prop_oneof![
            any_bytes(),
            token_soup(JSON_TOKENS),
            mutated_from(
                &[
                    br#"{"a": {"running": 3, "waiting": 1, "cache_ratio": 0.4, "kv_usage": 0.5}}"#,
                    br#"{"providers": {"a": {"request_load": "2"}, "b": {"running_requests": 1e3}}}"#,
                ],
                JSON_TOKENS,
            ),
        ],
    ) {
        let names = ["a", "b", "providers"];
        if let Ok(loads) = parse_json_loads(&body, &names) {
            prop_assert_eq!(loads.len(), names.len());
            for load in loads.iter().flatten() {
                assert_load(load, true);
            }
        }
    }

    #[test]
    fn hash_reply_reads_back_every_field(
        rows in prop::collection::vec(prop::collection::vec(hash_field(), 4), 1..5),
        fields in 3..=4usize,
        as_json in any::<bool>(),
    ) {
        let values: Vec<Option<String>> =
            rows.iter().flat_map(|row| row[..fields].iter().map(|(text, _)| text.clone())).collect();
        let body = if as_json {
            serde_json::to_vec(&json!({ "EVAL": values })).unwrap()
        } else {
            let mut reply = format!("*{}\r\n", values.len()).into_bytes();
            for value in &values {
                let bulk = match value {
                    Some(text) => format!("${}\r\n{text}\r\n", text.len()),
                    None => "$-1\r\n".to_string(),
                };
                reply.extend_from_slice(bulk.as_bytes());
            }
            reply
        };
        let expected: Vec<Option<Load>> = rows
            .iter()
            .map(|row| {
                row[0].1.map(|running| Load {
                    running,
                    waiting: row[1].1,
                    cache_ratio: ratio(row[2].1),
                    kv_usage: if fields == 4 { ratio(row[3].1) } else { None },
                })
            })
            .collect();
        prop_assert_eq!(parse_hash_loads(&body, rows.len()).unwrap(), expected);
    }

    #[test]
    fn hash_reply_never_panics(
        body in prop_oneof![
            any_bytes(),
            token_soup(JSON_TOKENS),
            mutated_from(
                &[
                    b"*6\r\n$1\r\n3\r\n$1\r\n1\r\n$3\r\n0.5\r\n$-1\r\n$-1\r\n$-1\r\n",
                    br#"{"EVAL":["3","1",null,null,null,null]}"#,
                ],
                JSON_TOKENS,
            ),
        ],
        providers in 0..4usize,
    ) {
        if let Ok(loads) = parse_hash_loads(&body, providers) {
            prop_assert_eq!(loads.len(), providers);
            for load in loads.iter().flatten() {
                assert_load(load, true);
            }
        }
    }
}
