//! The modes counted, and one measured request: what `make bench` runs (the Envoy build,
//! `allow_on_headers_stop_iteration: true`, a 1 KB chat body), each strategy family with and
//! without a pool read from the body, retry on, and rate limits read from the answers.

use std::time::Duration;

use serde_json::{json, Value};

use crate::host::{BodyDelivery, Build, Host, HttpReply, Ledger, Tally, Vm};
use crate::table::{Measured, Row};

pub struct Mode {
    pub name: &'static str,
    pub what: &'static str,
    /// The plugin configuration's fields beside `providers`.
    fields: fn() -> Value,
    /// What the filter holds before requests come: nothing, or loads published on the tick.
    warm: Warm,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Warm {
    Nothing,
    /// `refresh: background`: one tick reads the store and publishes the loads.
    Refreshed,
    /// `load_source: engine_metrics`: one tick scrapes both engines and publishes their loads.
    Scraped,
}

const WEBDIS: &str = "webdis";
const REFRESH: Duration = Duration::from_millis(500);
const SCRAPE: Duration = Duration::from_millis(1000);
const MINMAX_MODEL: &str = "MiniMax-M2.1";
const QIANWEN_MODEL: &str = "qwen3-max-preview";
/// Requests before counting (first-use allocations, the round-robin record's creation) and
/// requests counted (even, so round robin sends as many to each provider).
const WARM_UP_REQUESTS: usize = 2;
const MEASURED_REQUESTS: usize = 4;
const BODY_BYTES: usize = 1024;

pub const MODES: &[Mode] = &[
    Mode {
        name: "store_free",
        what: "`round_robin`, `load_source: none`",
        fields: || json!({"strategy": "round_robin"}),
        warm: Warm::Nothing,
    },
    Mode {
        name: "store_free_pools",
        what: "the same, one `models` pool (model read from the body)",
        fields: || json!({"models": {"auto": pool("round_robin")}}),
        warm: Warm::Nothing,
    },
    Mode {
        name: "per_request",
        what: "per-request Webdis read (`least_load`)",
        fields: || json!({"redis": webdis()}),
        warm: Warm::Nothing,
    },
    Mode {
        name: "per_request_pools",
        what: "the same, one `models` pool",
        fields: || json!({"redis": webdis(), "models": {"auto": pool("least_load")}}),
        warm: Warm::Nothing,
    },
    Mode {
        name: "background",
        what: "`refresh: background` (loads published)",
        fields: || json!({"redis": background_webdis()}),
        warm: Warm::Refreshed,
    },
    Mode {
        name: "background_pools",
        what: "the same, one `models` pool",
        fields: || json!({"redis": background_webdis(), "models": {"auto": pool("least_load")}}),
        warm: Warm::Refreshed,
    },
    Mode {
        name: "engine_metrics",
        what: "`load_source: engine_metrics` (scrape published)",
        fields: engine_metrics,
        warm: Warm::Scraped,
    },
    Mode {
        name: "engine_metrics_pools",
        what: "the same, one `models` pool",
        fields: || {
            let mut fields = engine_metrics();
            fields["models"] = json!({"auto": pool("least_load")});
            fields
        },
        warm: Warm::Scraped,
    },
    Mode {
        name: "retry",
        what: "`round_robin` with `retry: {max_retries: 1}` (first answer 200)",
        fields: || {
            json!({"strategy": "round_robin", "retry": {"max_retries": 1},
                   "health": {"probe": false}})
        },
        warm: Warm::Nothing,
    },
    Mode {
        name: "rate_limits",
        what:
            "`round_robin` with `rate_limits` (answers tell a plentiful budget: read, not written)",
        fields: || json!({"strategy": "round_robin", "rate_limits": {}}),
        warm: Warm::Nothing,
    },
];

fn pool(strategy: &str) -> Value {
    json!({"strategy": strategy,
           "backends": [{"provider": "minmax"}, {"provider": "qianwen"}]})
}

fn webdis() -> Value {
    json!({"cluster": WEBDIS, "protocol": "webdis", "timeout_ms": 100})
}

fn background_webdis() -> Value {
    let mut store = webdis();
    store["refresh"] = json!("background");
    store["refresh_interval_ms"] = json!(REFRESH.as_millis() as u64);
    store
}

fn engine_metrics() -> Value {
    json!({"load_source": "engine_metrics",
           "engine_metrics": {"interval_ms": SCRAPE.as_millis() as u64, "timeout_ms": 500}})
}

/// The seed's providers as the benchmark configures them (bench/gateways.py), with what the
/// engine-metrics and retry modes need beside: each one's engine `/metrics` and its cluster.
fn providers(mode: &Mode) -> Value {
    let provider = |name: &str, key: &str, model: &str| {
        let mut provider = json!({"name": name, "key": key, "model": model});
        if mode.warm == Warm::Scraped {
            provider["metrics"] = json!({"cluster": engine(name), "path": "/metrics"});
        }
        if mode.name == "retry" {
            provider["cluster"] = json!(name);
        }
        provider
    };
    json!([
        provider("minmax", "minimax_1", MINMAX_MODEL),
        provider("qianwen", "qwen_1", QIANWEN_MODEL)
    ])
}

fn engine(provider: &str) -> String {
    format!("{provider}-engine")
}

/// Today's counts for `mode`: one row per import called, and the wasm instructions run, each
/// the largest of the measured requests.
pub fn measure(mode: &Mode) -> Measured {
    let mut host = Host::new(Build::Envoy).body_delivery(BodyDelivery::WhileHeadersPaused);
    for cluster in [
        WEBDIS,
        "minmax",
        "qianwen",
        &engine("minmax"),
        &engine("qianwen"),
    ] {
        host = host.cluster(cluster, None);
    }
    let mut config = (mode.fields)();
    config["providers"] = providers(mode);
    let vm = host
        .start_vm(&config.to_string())
        .unwrap_or_else(|refused| panic!("{}: refused: {}", mode.name, refused.message()));
    warm(&mut host, vm, mode);
    let body = chat_body();
    for _ in 0..WARM_UP_REQUESTS {
        exchange(&mut host, vm, &body, mode);
    }
    let mut instructions = 0;
    let counted: Vec<Ledger> = (0..MEASURED_REQUESTS)
        .map(|_| {
            let before = host.ledger();
            let run_before = host.vm(vm).instructions();
            exchange(&mut host, vm, &body, mode);
            instructions = instructions.max(host.vm(vm).instructions() - run_before);
            host.ledger().since(&before)
        })
        .collect();
    host.vm(vm).assert_survived();
    Measured {
        rows: worst_of(mode, &counted),
        instructions,
    }
}

/// One row per import: its calls (the same in every request, or the mode is not steady) and
/// the most bytes any request copied each way.
fn worst_of(mode: &Mode, requests: &[Ledger]) -> Vec<Row> {
    let calls = |ledger: &Ledger| -> Vec<(String, u64)> {
        ledger
            .imports()
            .map(|(import, tally)| (import.to_string(), tally.calls))
            .collect()
    };
    for request in &requests[1..] {
        assert_eq!(
            calls(request),
            calls(&requests[0]),
            "{}: two steady requests made different host calls",
            mode.name
        );
    }
    requests[0]
        .imports()
        .map(|(import, first)| {
            let tallies = requests.iter().filter_map(|request| {
                request
                    .imports()
                    .find(|(name, _)| *name == import)
                    .map(|(_, tally)| tally)
            });
            let tally = tallies.fold(first, |most, tally| Tally {
                calls: most.calls,
                bytes_out: most.bytes_out.max(tally.bytes_out),
                bytes_in: most.bytes_in.max(tally.bytes_in),
            });
            Row {
                import: import.to_string(),
                tally,
            }
        })
        .collect()
}

fn warm(host: &mut Host, vm: usize, mode: &Mode) {
    match mode.warm {
        Warm::Nothing => {}
        Warm::Refreshed => {
            host.advance(REFRESH);
            answer_calls(host.vm(vm));
            assert_eq!(
                host.metric("ai_lb.refresh.published"),
                1,
                "{}: loads published",
                mode.name
            );
        }
        Warm::Scraped => {
            host.advance(SCRAPE);
            answer_calls(host.vm(vm));
            assert_eq!(
                host.metric("ai_lb.scrape.published"),
                2,
                "{}: both scraped",
                mode.name
            );
        }
    }
}

/// One whole request: sent, the store answered if asked, routed, answered 200, ended.
fn exchange(host: &mut Host, vm: usize, body: &[u8], mode: &Mode) {
    let vm = host.vm(vm);
    let request = vm.send_chat(body);
    answer_calls(vm);
    let stream = vm.stream(request);
    let provider = stream
        .upstream_header("x-selected-provider")
        .unwrap_or_else(|| panic!("{}: not routed: {:?}", mode.name, stream.actions));
    assert!(
        ["minmax", "qianwen"].contains(&provider),
        "{}: routed to {provider}",
        mode.name
    );
    assert!(
        stream.upstream_body().starts_with(b"{\"model\":\""),
        "{}: body not forwarded",
        mode.name
    );
    let completion = br#"{"id":"chatcmpl-bench","object":"chat.completion","choices":[]}"#;
    let length = completion.len().to_string();
    let mut headers = vec![
        (":status", "200"),
        ("content-type", "application/json"),
        ("content-length", length.as_str()),
    ];
    if mode.name == "rate_limits" {
        // What OpenAI sends on every answer.
        headers.extend([
            ("x-ratelimit-limit-requests", "10000"),
            ("x-ratelimit-remaining-requests", "9999"),
            ("x-ratelimit-reset-requests", "6ms"),
            ("x-ratelimit-limit-tokens", "2000000"),
            ("x-ratelimit-remaining-tokens", "1999000"),
            ("x-ratelimit-reset-tokens", "30ms"),
        ]);
    }
    vm.send_response_headers(request, &headers, false);
    vm.send_response_body(request, completion, true);
    vm.finish(request);
}

/// Answers every call out: Webdis's MGET as Webdis 0.1.9 answers it (every header it sends),
/// or an engine's vLLM `/metrics` page.
fn answer_calls(vm: &mut Vm) {
    let calls: Vec<(u32, String)> = vm
        .http_calls()
        .iter()
        .map(|call| (call.token, call.cluster.clone()))
        .collect();
    for (token, cluster) in calls {
        let reply = match cluster.as_str() {
            WEBDIS => webdis_reply(br#"{"MGET":["30","10"]}"#),
            "minmax-engine" => HttpReply::new(200, vllm_page(MINMAX_MODEL, 3).as_bytes()),
            "qianwen-engine" => HttpReply::new(200, vllm_page(QIANWEN_MODEL, 1).as_bytes()),
            other => panic!("a call to {other:?}"),
        };
        vm.answer_http_call(token, Some(reply));
    }
}

fn webdis_reply(body: &[u8]) -> HttpReply {
    let mut reply = HttpReply::new(200, body);
    let length = body.len().to_string();
    reply.headers = [
        ("server", "Webdis"),
        ("allow", "GET,POST,PUT,OPTIONS"),
        ("access-control-allow-methods", "GET,POST,PUT,OPTIONS"),
        ("access-control-allow-origin", "*"),
        (
            "access-control-allow-headers",
            "X-Requested-With, Content-Type, Authorization",
        ),
        ("content-type", "application/json"),
        ("etag", "\"73cdcec3e426eb43450ca558048d1b68\""),
        ("content-length", length.as_str()),
    ]
    .iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect();
    reply
}

fn vllm_page(model: &str, running: u32) -> String {
    let labels = format!("engine=\"0\",model_name=\"{model}\"");
    format!(
        "# TYPE vllm:num_requests_running gauge\n\
         vllm:num_requests_running{{{labels}}} {running}.0\n\
         # TYPE vllm:num_requests_waiting gauge\n\
         vllm:num_requests_waiting{{{labels}}} 0.0\n\
         # TYPE vllm:kv_cache_usage_perc gauge\n\
         vllm:kv_cache_usage_perc{{{labels}}} 0.25\n"
    )
}

/// A chat body of exactly BODY_BYTES, `model: auto` first, as bench/bodies.py's are.
fn chat_body() -> Vec<u8> {
    let head = r#"{"model":"auto","messages":[{"role":"user","content":""#;
    let tail = r#""}]}"#;
    let filler = "x".repeat(BODY_BYTES - head.len() - tail.len());
    let body = format!("{head}{filler}{tail}").into_bytes();
    assert_eq!(body.len(), BODY_BYTES);
    body
}
