//! Health in the request flow: ejected providers are skipped, responses eject and restore,
//! tokens are written, a failed response is retried on another provider, and the status page.

use super::*;
use crate::call::CallReply;
use crate::health::{health_key, ProviderHealth, State};

const HEALTH: &str = r#"
providers:
- {name: minmax, model: MiniMax-M2.1, cluster: minmax, prefix_rewrite: {from: /masgod/, to: /}}
- name: qianwen
  model: qwen3-max-preview
  cluster: qianwen_cluster
  prefix_rewrite: {from: /masgod/, to: /}
  api_tokens: [sk-qianwen-key-0001]
load_source: none
strategy: failover
health: {failure_threshold: 2, cooldown_ms: 10000}
status_endpoint: {path: /ai-lb/status, allowed_sources: ["127.0.0.1"]}
"#;

const CHAT: &[u8] = br#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#;

/// One request through the flow on `shared` data at `now_ms`; returns the host and the flow.
fn request(
    config: &str,
    shared: &BTreeMap<String, Vec<u8>>,
    now_ms: u64,
) -> (RequestFlow, FakeHost) {
    let mut flow = flow(config);
    let mut host = post(CHAT);
    host.headers
        .insert(":authority".into(), "gateway.local".into());
    host.headers
        .insert("authorization".into(), "Bearer client-key".into());
    host.shared = shared.clone();
    host.now_ms = now_ms;
    let worker = &mut FakeWorker::new(3);
    send_whole(&mut flow, &mut host, worker);
    (flow, host)
}

/// The upstream answers `status`: returns what the filter did with the response headers.
fn respond(
    flow: &mut RequestFlow,
    host: &mut FakeHost,
    status: u32,
    retry_after: Option<&str>,
) -> Verdict {
    host.response_headers
        .insert(":status".into(), status.to_string());
    if let Some(seconds) = retry_after {
        host.response_headers
            .insert("retry-after".into(), seconds.into());
    }
    flow.on_response_headers(host, false, &mut FakeWorker::new(5))
}

/// Shared data where each named provider is ejected until the given time.
fn ejected(until: &[(&str, u64)]) -> BTreeMap<String, Vec<u8>> {
    until
        .iter()
        .map(|(provider, until_ms)| {
            let record = ProviderHealth {
                state: State::Ejected {
                    until_ms: *until_ms,
                },
                ..ProviderHealth::default()
            };
            (health_key(provider), record.encode())
        })
        .collect()
}

fn record(shared: &BTreeMap<String, Vec<u8>>, provider: &str) -> ProviderHealth {
    ProviderHealth::read(shared.get(&health_key(provider)).map(Vec::as_slice))
}

#[test]
fn failures_eject_a_provider_and_the_next_requests_go_elsewhere() {
    let mut shared = BTreeMap::new();
    for _ in 0..2 {
        let (mut flow, mut host) = request(HEALTH, &shared, 1_000);
        assert_eq!(
            host.header("x-selected-provider"),
            Some("minmax"),
            "failover's first"
        );
        assert_eq!(
            respond(&mut flow, &mut host, 503, None),
            Verdict::Continue,
            "no retry set"
        );
        flow.on_done(&mut host, &mut FakeWorker::new(1));
        shared = host.shared.clone();
        if host.counted("ai_lb.provider.minmax.ejected") == 1 {
            break;
        }
    }
    assert_eq!(
        record(&shared, "minmax").state,
        State::Ejected { until_ms: 11_000 }
    );
    let (_, host) = request(HEALTH, &shared, 5_000);
    assert_eq!(host.header("x-selected-provider"), Some("qianwen"));
    // The pool's token replaced the client's credentials.
    assert_eq!(
        host.header("authorization"),
        Some("Bearer sk-qianwen-key-0001")
    );
    // A client error says nothing against the provider.
    let (mut flow, mut host) = request(HEALTH, &shared, 5_000);
    respond(&mut flow, &mut host, 400, None);
    assert_eq!(record(&host.shared, "qianwen"), ProviderHealth::default());
}

#[test]
fn after_the_cooldown_one_trial_decides_and_others_wait() {
    let shared = ejected(&[("minmax", 10_000)]);
    let (mut trial, mut host) = request(HEALTH, &shared, 10_000);
    assert_eq!(
        host.header("x-selected-provider"),
        Some("minmax"),
        "the trial"
    );
    let (_, other) = request(HEALTH, &host.shared, 10_001);
    assert_eq!(
        other.header("x-selected-provider"),
        Some("qianwen"),
        "waits for the trial"
    );
    respond(&mut trial, &mut host, 200, None);
    assert_eq!(host.counted("ai_lb.provider.minmax.restored"), 1);
    let (_, after) = request(HEALTH, &host.shared, 10_002);
    assert_eq!(after.header("x-selected-provider"), Some("minmax"));
}

#[test]
fn a_trial_whose_client_left_lets_the_next_request_try() {
    let shared = ejected(&[("minmax", 10_000)]);
    let (mut trial, mut host) = request(HEALTH, &shared, 10_000);
    trial.on_done(&mut host, &mut FakeWorker::new(1)); // no response: the client went away
    let (_, next) = request(HEALTH, &host.shared, 10_001);
    assert_eq!(next.header("x-selected-provider"), Some("minmax"));
}

#[test]
fn with_every_provider_out_the_one_back_first_is_used() {
    let shared = ejected(&[("minmax", 30_000), ("qianwen", 20_000)]);
    let (_, host) = request(HEALTH, &shared, 1_000);
    assert_eq!(host.header("x-selected-provider"), Some("qianwen"));
    assert_eq!(host.counted("ai_lb.provider.qianwen.fallback"), 1);
    assert!(host.answered.is_empty(), "never a 503 of the filter's own");
}

#[test]
fn a_429_with_retry_after_ejects_at_once() {
    let (mut flow, mut host) = request(HEALTH, &BTreeMap::new(), 1_000);
    respond(&mut flow, &mut host, 429, Some("3"));
    assert_eq!(
        record(&host.shared, "minmax").state,
        State::Ejected { until_ms: 4_000 }
    );
    assert_eq!(host.counted("ai_lb.provider.minmax.ejected"), 1);
}

fn retrying() -> String {
    format!("{HEALTH}retry: {{max_retries: 1, budget_ms: 5000}}\n")
}

#[test]
fn a_failed_response_is_retried_on_another_provider_and_its_reply_answers() {
    let config = retrying();
    let (mut flow, mut host) = request(&config, &BTreeMap::new(), 1_000);
    assert_eq!(host.header("x-selected-provider"), Some("minmax"));
    host.now_ms = 1_400;
    assert_eq!(
        respond(&mut flow, &mut host, 503, None),
        Verdict::Pause,
        "held"
    );
    assert_eq!(flow.on_response_body(&mut host, 0, false), Verdict::Pause);
    let [call] = host.dispatched.as_slice() else {
        panic!("one retry expected: {:?}", host.dispatched)
    };
    assert_eq!(call.cluster, "qianwen_cluster");
    assert_eq!(call.timeout_ms, 4_600, "what is left of the budget");
    let header = |name: &str| {
        call.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    assert_eq!(header(":method"), Some("POST"));
    assert_eq!(header(":path"), Some("/v1/chat/completions"));
    assert_eq!(header(":authority"), Some("gateway.local"));
    assert_eq!(header("authorization"), Some("Bearer sk-qianwen-key-0001"));
    assert_eq!(
        header("content-length"),
        None,
        "the gateway frames the body"
    );
    assert_eq!(header("x-selected-provider"), None);
    let body: serde_json::Value = serde_json::from_slice(call.body.as_ref().unwrap()).unwrap();
    assert_eq!(body["model"], "qwen3-max-preview");
    assert_eq!(body["messages"][0]["content"], "hi");

    let reply = CallReply {
        status: Some(200),
        headers: vec![
            (":status".into(), "200".into()),
            ("content-type".into(), "application/json".into()),
            ("content-length".into(), "9".into()),
            ("x-mock-provider".into(), "qianwen".into()),
        ],
        body: br#"{"ok":1}"#.to_vec(),
    };
    flow.on_call_reply(&mut host, reply, &mut FakeWorker::new(1));
    let [answer] = host.responded.as_slice() else {
        panic!("one answer expected")
    };
    assert_eq!(answer.status, Some(200));
    assert_eq!(answer.body, br#"{"ok":1}"#.to_vec());
    assert_eq!(
        answer.headers,
        vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("x-mock-provider".to_string(), "qianwen".to_string())
        ]
    );
    assert_eq!(
        flow.on_response_body(&mut host, 0, false),
        Verdict::Continue
    );
    assert_eq!(host.counted("ai_lb.retry.sent"), 1);
    assert_eq!(host.counted("ai_lb.retry.recovered"), 1);
    assert_eq!(host.counted("ai_lb.provider.qianwen.retried"), 1);
    assert_eq!(
        record(&host.shared, "minmax").failures,
        1,
        "the failure counted"
    );
}

#[test]
fn when_every_retry_fails_the_first_answer_goes_on() {
    let config = retrying();
    let (mut flow, mut host) = request(&config, &BTreeMap::new(), 1_000);
    assert_eq!(respond(&mut flow, &mut host, 502, None), Verdict::Pause);
    flow.on_call_reply(&mut host, CallReply::failed(), &mut FakeWorker::new(1));
    assert!(host.responded.is_empty());
    assert_eq!(host.response_resumed, 1);
    assert_eq!(host.counted("ai_lb.retry.exhausted"), 1);
    assert_eq!(
        record(&host.shared, "qianwen").failures,
        1,
        "no reply is a failure"
    );
    assert_eq!(host.dispatched.len(), 1, "max_retries 1");
}

#[test]
fn no_retry_without_budget_or_without_another_provider() {
    let config = retrying();
    let (mut flow, mut host) = request(&config, &BTreeMap::new(), 1_000);
    host.now_ms = 6_000;
    assert_eq!(
        respond(&mut flow, &mut host, 503, None),
        Verdict::Continue,
        "budget spent"
    );
    assert!(host.dispatched.is_empty());

    let shared = ejected(&[("qianwen", 60_000)]);
    let (mut flow, mut host) = request(&config, &shared, 1_000);
    assert_eq!(host.header("x-selected-provider"), Some("minmax"));
    assert_eq!(
        respond(&mut flow, &mut host, 503, None),
        Verdict::Continue,
        "the other is out"
    );
    assert!(host.dispatched.is_empty());
    // A success is never retried.
    let (mut flow, mut host) = request(&config, &BTreeMap::new(), 1_000);
    assert_eq!(respond(&mut flow, &mut host, 200, None), Verdict::Continue);
    assert!(host.dispatched.is_empty());
}

#[test]
fn the_status_page_is_served_only_to_allowed_sources() {
    let shared = ejected(&[("minmax", 4_000)]);
    for (source, served) in [("127.0.0.1:40000", true), ("10.1.2.3:40000", false)] {
        let mut flow = flow(HEALTH);
        let mut host = FakeHost::request(&[(":method", "GET"), (":path", "/ai-lb/status?x=1")]);
        host.properties
            .insert("source.address".into(), source.into());
        host.shared = shared.clone();
        host.now_ms = 1_000;
        let verdict = flow.on_request_headers(&mut host, true, &mut FakeWorker::new(1));
        assert_eq!(verdict == Verdict::Pause, served, "{source}");
        assert_eq!(host.answered.len(), usize::from(served), "{source}");
        if served {
            let page: serde_json::Value = serde_json::from_slice(&host.answered[0].1).unwrap();
            assert_eq!(page["providers"][0]["health"], "ejected");
            assert_eq!(page["providers"][0]["cooldown_remaining_ms"], 3_000);
            assert_eq!(page["providers"][1]["tokens"][0]["token"], "sk-…0001");
            assert_eq!(page["providers"][1]["tokens"][0]["available"], true);
        }
    }
}

#[test]
fn a_failed_answer_teaches_least_latency_nothing() {
    let config = HEALTH.replace("strategy: failover", "strategy: least_latency");
    let latencies = |shared: &BTreeMap<String, Vec<u8>>| {
        shared
            .keys()
            .filter(|key| key.starts_with("ai_lb/latency/"))
            .count()
    };
    let (mut flow, mut host) = request(&config, &BTreeMap::new(), 1_000);
    host.now_ms = 1_005;
    respond(&mut flow, &mut host, 503, None);
    flow.on_done(&mut host, &mut FakeWorker::new(1));
    assert_eq!(
        latencies(&host.shared),
        0,
        "a quick 503 is not a fast provider"
    );
    let (mut flow, mut host) = request(&config, &BTreeMap::new(), 1_000);
    host.now_ms = 1_300;
    respond(&mut flow, &mut host, 200, None);
    flow.on_done(&mut host, &mut FakeWorker::new(1));
    assert_eq!(latencies(&host.shared), 1);
}

#[test]
fn a_request_of_a_removed_provider_does_not_bring_its_record_back() {
    let mut shared = BTreeMap::new();
    let (mut flow, mut host) = request(HEALTH, &shared, 1_000);
    assert_eq!(host.header("x-selected-provider"), Some("minmax"));
    // While it was out, a configuration update removed minmax and cleared its record.
    shared.insert(crate::health::REGISTRY_KEY.to_string(), b"qianwen".to_vec());
    host.shared = shared;
    respond(&mut flow, &mut host, 503, None);
    assert_eq!(host.shared.get(&health_key("minmax")), None);
    // A provider still listed is judged as usual.
    host.shared.insert(
        crate::health::REGISTRY_KEY.to_string(),
        b"minmax\nqianwen".to_vec(),
    );
    let (mut flow, mut host) = request(HEALTH, &host.shared, 1_000);
    respond(&mut flow, &mut host, 503, None);
    assert_eq!(record(&host.shared, "minmax").failures, 1);
}
