//! load_source engine_metrics: on the tick, the worker holding an engine's lease GETs its
//! `/metrics` and publishes the load for every worker; when that worker stops, another takes
//! the lease over once it expires.

use std::time::Duration;

use serde_json::{json, Value};

use super::{exchange, two_workers, Build, Host, Vm, CHAT, MINMAX_MODEL, QIANWEN_MODEL};
use crate::host::HttpReply;

const MINMAX_ENGINE: &str = "minmax-engine";
const QIANWEN_ENGINE: &str = "qianwen-engine";
const INTERVAL: Duration = Duration::from_millis(1000);

/// Scrape every second (each read times out after 500 ms); a load counts for 3 s.
fn engine_config() -> Value {
    json!({
        "providers": [
            {"name": "minmax", "model": MINMAX_MODEL,
             "metrics": {"cluster": MINMAX_ENGINE, "path": "/metrics"}},
            {"name": "qianwen", "model": QIANWEN_MODEL,
             "metrics": {"cluster": QIANWEN_ENGINE, "path": "/metrics"}}
        ],
        "load_source": "engine_metrics",
        "engine_metrics": {"interval_ms": 1000, "timeout_ms": 500, "max_age_ms": 3000}
    })
}

fn gateway(build: Build) -> Host {
    two_workers(build, &engine_config(), &[MINMAX_ENGINE, QIANWEN_ENGINE])
}

/// A vLLM `/metrics` page, as vLLM 0.10 writes it.
fn vllm_page(model: &str, running: u32, waiting: u32) -> String {
    let labels = format!("engine=\"0\",model_name=\"{model}\"");
    format!(
        "# HELP vllm:num_requests_running Number of requests in model execution batches.\n\
         # TYPE vllm:num_requests_running gauge\n\
         vllm:num_requests_running{{{labels}}} {running}.0\n\
         # HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n\
         # TYPE vllm:num_requests_waiting gauge\n\
         vllm:num_requests_waiting{{{labels}}} {waiting}.0\n\
         # HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.\n\
         # TYPE vllm:kv_cache_usage_perc gauge\n\
         vllm:kv_cache_usage_perc{{{labels}}} 0.25\n"
    )
}

/// The engines `vm` is scraping now (the clusters of its pending calls), each checked to be a
/// GET of `/metrics`.
fn scraping(vm: &Vm) -> Vec<String> {
    let mut clusters: Vec<String> = vm
        .http_calls()
        .iter()
        .map(|call| {
            assert_eq!(call.header(":method"), Some("GET"));
            assert_eq!(call.header(":path"), Some("/metrics"));
            call.cluster.clone()
        })
        .collect();
    clusters.sort();
    clusters
}

fn both_engines() -> Vec<String> {
    vec![MINMAX_ENGINE.to_string(), QIANWEN_ENGINE.to_string()]
}

/// Answers `vm`'s scrapes: each engine's running and waiting requests.
fn answer(vm: &mut Vm, minmax: (u32, u32), qianwen: (u32, u32)) {
    let calls: Vec<(u32, String)> = vm
        .http_calls()
        .iter()
        .map(|call| (call.token, call.cluster.clone()))
        .collect();
    for (token, cluster) in calls {
        let page = match cluster.as_str() {
            MINMAX_ENGINE => vllm_page(MINMAX_MODEL, minmax.0, minmax.1),
            QIANWEN_ENGINE => vllm_page(QIANWEN_MODEL, qianwen.0, qianwen.1),
            other => panic!("a call to {other:?}"),
        };
        vm.answer_http_call(token, Some(HttpReply::new(200, page.as_bytes())));
    }
}

/// Where each worker sends its next two requests.
fn both_workers_route(host: &mut Host) -> Vec<String> {
    (0..4).map(|n| exchange(host.vm(n % 2), CHAT)).collect()
}

pub fn one_worker_scrapes_and_every_worker_routes_by_the_loads(build: Build) {
    let mut host = gateway(build);
    // Nothing scraped yet: weights decide, and the stats say so.
    exchange(host.vm(1), CHAT);
    assert_eq!(host.metric("ai_lb.fallback.all_unknown"), 1);

    host.advance(INTERVAL);
    assert_eq!(
        scraping(host.vm(0)),
        both_engines(),
        "worker 0 took both leases"
    );
    assert!(scraping(host.vm(1)).is_empty(), "worker 1 saw them held");
    // minmax: 2 running + 5 waiting; qianwen: 4 running.
    answer(host.vm(0), (2, 5), (4, 0));
    assert_eq!(host.metric("ai_lb.scrape.published"), 2);
    assert_eq!(both_workers_route(&mut host), ["qianwen"; 4]);

    host.advance(INTERVAL);
    assert_eq!(scraping(host.vm(0)), both_engines());
    assert!(scraping(host.vm(1)).is_empty());
    answer(host.vm(0), (1, 0), (3, 6));
    assert_eq!(both_workers_route(&mut host), ["minmax"; 4]);

    assert_eq!(host.metric("ai_lb.scrape.published"), 4);
    assert_eq!(host.metric("ai_lb.scrape.failed"), 0);
    assert_eq!(host.metric("ai_lb.fallback.all_unknown"), 1);
}

pub fn another_worker_scrapes_when_the_holder_stops(build: Build) {
    let mut host = gateway(build);
    host.advance(INTERVAL); // t = 1 s: worker 0 scrapes, and holds the leases for 3.5 s
    assert_eq!(scraping(host.vm(0)), both_engines());
    answer(host.vm(0), (9, 0), (1, 0));
    host.vm(0).halted = true;

    // t = 2, 3, 4 s: the leases still hold; worker 1 scrapes nothing, and routes by the last
    // loads while they are fresh (3 s).
    host.advance(INTERVAL);
    assert!(scraping(host.vm(1)).is_empty());
    assert_eq!(exchange(host.vm(1), CHAT), "qianwen");
    assert_eq!(host.metric("ai_lb.fallback.all_unknown"), 0);
    for _ in 0..2 {
        host.advance(INTERVAL);
        assert!(scraping(host.vm(1)).is_empty(), "at {:?}", host.now());
    }

    // t = 5 s: the leases expired (4.5 s); worker 1 takes them over and scrapes.
    host.advance(INTERVAL);
    assert_eq!(scraping(host.vm(1)), both_engines());
    // Until its answers arrive, the loads of t = 1 s are too old to count.
    exchange(host.vm(1), CHAT);
    assert_eq!(host.metric("ai_lb.fallback.all_unknown"), 1);
    answer(host.vm(1), (0, 0), (8, 0));
    assert_eq!(exchange(host.vm(1), CHAT), "minmax");

    // Worker 1 keeps the leases: it scrapes every interval from now on.
    host.advance(INTERVAL);
    assert_eq!(scraping(host.vm(1)), both_engines());
    assert!(scraping(host.vm(0)).is_empty());
}
