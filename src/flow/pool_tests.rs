//! Model pools in the request flow: the body's model picks the pool, each backend gets its own
//! model name, unknown models are answered or passed as configured, and what the strategies
//! share (round-robin ticket, in-flight counts, latency) is kept in shared data.

use super::*;

const POOLS: &str = r#"
providers:
- {name: minmax, model: MiniMax-M2.1}
- {name: qianwen, model: qwen3-max-preview}
load_source: in_flight
list_models: true
models:
  auto:
    strategy: round_robin
    backends:
    - {provider: minmax, model: abab-fast}
    - {provider: qianwen}
  gpt-4:
    strategy: failover
    backends:
    - {provider: qianwen, priority: 1}
    - {provider: minmax, priority: 2}
"#;

fn pools_flow(unknown_model: &str) -> RequestFlow {
    flow(&format!("{POOLS}unknown_model: {unknown_model}\n"))
}

fn chat(model: &str) -> Vec<u8> {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#).into_bytes()
}

/// Sends headers then the whole body; returns the verdicts.
fn send(flow: &mut RequestFlow, host: &mut FakeHost) -> (Verdict, Verdict) {
    send_on(flow, host, &mut FakeWorker::new(7))
}

fn send_on(
    flow: &mut RequestFlow,
    host: &mut FakeHost,
    worker: &mut FakeWorker,
) -> (Verdict, Verdict) {
    let headers = flow.on_request_headers(host, false, worker);
    let size = host.body.len();
    let body = flow.on_request_body(host, size, true, worker);
    (headers, body)
}

fn body_model(host: &FakeHost) -> String {
    let value: serde_json::Value = serde_json::from_slice(&host.body).unwrap();
    value["model"].as_str().unwrap().to_string()
}

#[test]
fn the_body_model_picks_the_pool_and_each_backend_gets_its_own_model() {
    let mut shared = BTreeMap::new();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let mut flow = pools_flow("reject");
        let mut host = post(&chat("auto"));
        host.shared = shared;
        assert_eq!(
            send(&mut flow, &mut host),
            (Verdict::Pause, Verdict::Continue)
        );
        let provider = host.header("x-selected-provider").unwrap().to_string();
        seen.push((provider, body_model(&host)));
        assert_eq!(
            host.header("content-length"),
            Some(host.body.len().to_string().as_str())
        );
        shared = host.shared;
    }
    let expected = [("minmax", "abab-fast"), ("qianwen", "qwen3-max-preview")];
    let expected: Vec<(String, String)> = expected
        .iter()
        .cycle()
        .take(4)
        .map(|(p, m)| (p.to_string(), m.to_string()))
        .collect();
    // Round robin: one sequence, whichever request takes the next ticket.
    assert!(seen == expected || seen == [&expected[1..], &expected[..1]].concat());
}

#[test]
fn failover_takes_the_lowest_priority_number() {
    let mut flow = pools_flow("reject");
    let mut host = post(&chat("gpt-4"));
    send(&mut flow, &mut host);
    assert_eq!(host.header("x-selected-provider"), Some("qianwen"));
    assert_eq!(body_model(&host), "qwen3-max-preview");
}

#[test]
fn an_unknown_model_is_answered_404_listing_the_names() {
    let mut flow = pools_flow("reject");
    let mut host = post(&chat("gpt-5"));
    let (_, body) = send(&mut flow, &mut host);
    assert_eq!(body, Verdict::Pause, "answered locally, never forwarded");
    let (status, answer) = &host.answered[0];
    assert_eq!(*status, 404);
    let answer: serde_json::Value = serde_json::from_slice(answer).unwrap();
    assert_eq!(answer["error"]["code"], "model_not_found");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("gpt-5") && message.contains("auto, gpt-4"),
        "{message}"
    );
    assert_eq!(host.header("x-selected-provider"), None);
    assert_eq!(host.counted("ai_lb.requests.unknown_model"), 1);
}

#[test]
fn an_unknown_model_passes_through_or_uses_the_default_pool_as_configured() {
    let mut flow = pools_flow("pass_through");
    let mut host = post(&chat("gpt-5"));
    host.headers
        .insert("x-selected-provider".into(), "minmax".into());
    assert_eq!(send(&mut flow, &mut host).1, Verdict::Continue);
    assert_eq!(
        host.header("x-selected-provider"),
        None,
        "client's header removed"
    );
    assert_eq!(body_model(&host), "gpt-5", "body untouched");
    assert!(host.answered.is_empty());

    let mut flow = pools_flow("gpt-4");
    let mut host = post(&chat("gpt-5"));
    send(&mut flow, &mut host);
    assert_eq!(host.header("x-selected-provider"), Some("qianwen"));
    assert_eq!(body_model(&host), "qwen3-max-preview");
}

#[test]
fn a_body_that_is_not_json_passes_through_untouched() {
    let mut flow = pools_flow("reject");
    let mut host = post(b"not json at all");
    assert_eq!(send(&mut flow, &mut host).1, Verdict::Continue);
    assert_eq!(host.body, b"not json at all");
    assert_eq!(host.header("x-selected-provider"), None);
    assert!(host.answered.is_empty());
}

#[test]
fn models_are_listed_locally_in_openai_format() {
    let mut flow = pools_flow("reject");
    let mut host = FakeHost::request(&[(":method", "GET"), (":path", "/masgod/v1/models?x=1")]);
    let verdict = flow.on_request_headers(&mut host, true, &mut FakeWorker::new(1));
    assert_eq!(verdict, Verdict::Pause);
    let (status, answer) = &host.answered[0];
    assert_eq!(*status, 200);
    let answer: serde_json::Value = serde_json::from_slice(answer).unwrap();
    assert_eq!(answer["object"], "list");
    let ids: Vec<&str> = answer["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["auto", "gpt-4"]);
    assert_eq!(answer["data"][0]["object"], "model");

    // A POST to the same path, or a GET elsewhere, is not the list.
    let mut host = FakeHost::request(&[(":method", "GET"), (":path", "/v1/models/auto")]);
    assert_eq!(
        flow.on_request_headers(&mut host, true, &mut FakeWorker::new(1)),
        Verdict::Continue
    );
    assert!(host.answered.is_empty());
}

#[test]
fn in_flight_counts_steer_away_until_the_request_ends() {
    let config = r#"
providers:
- {name: a}
- {name: b}
load_source: in_flight
"#;
    let mut shared = BTreeMap::new();
    let mut open = Vec::new();
    let worker = &mut FakeWorker::new(7);
    worker.id = 9;
    // Three requests held open: least load spreads them, never 3 on one.
    for _ in 0..3 {
        let mut flow = flow(config);
        let mut host = post(BODY);
        host.shared = shared;
        send_on(&mut flow, &mut host, worker);
        open.push((
            flow,
            host.header("x-selected-provider").unwrap().to_string(),
        ));
        shared = host.shared;
    }
    let on_a = open.iter().filter(|(_, p)| p == "a").count();
    assert!(on_a == 1 || on_a == 2, "{on_a}");
    // Ending them returns every count to zero.
    for (mut flow, _) in open {
        let mut host = post(BODY);
        host.shared = shared;
        flow.on_done(&mut host, worker);
        shared = host.shared;
    }
    let slot = crate::inflight::Slot::decode(&shared[&crate::inflight::slot_key(9)]).unwrap();
    assert_eq!((slot.count("a"), slot.count("b")), (0, 0));
}

#[test]
fn across_replicas_counts_are_read_from_redis_and_kept_there() {
    let config = "providers:\n- {name: a}\n- {name: b}\nload_source: in_flight\n\
                  in_flight: {scope: replicas}\nredis: {cluster: r, key_prefix: 'lb:'}\n";
    let plugin = PluginConfig::from_yaml(config, Build::Higress).unwrap();
    let mut flow = RequestFlow::new(Rc::new(plugin));
    let mut host = post(BODY);
    let worker = &mut FakeWorker::new(3);
    assert_eq!(
        flow.on_request_headers(&mut host, false, worker),
        Verdict::Pause
    );
    let StoreQuery::Resp { command, .. } = &host.sent[0] else {
        panic!("RESP query expected")
    };
    let command = String::from_utf8_lossy(command);
    assert!(command.contains("EVAL") && command.contains("lb:inflight:workers"));
    assert!(command.contains("lb:inflight:a") && command.contains("lb:inflight:b"));
    flow.on_store_reply(&mut host, Ok(mget(&[Some("4"), Some("1")])), worker);
    assert_eq!(host.header("x-selected-provider"), Some("b"));
    assert_eq!(worker.redis_counts, [("lb:inflight:b".to_string(), 1)]);
    flow.on_done(&mut host, worker);
    assert_eq!(worker.redis_counts[1], ("lb:inflight:b".to_string(), -1));
}

#[test]
fn the_prompt_prefix_is_hashed_with_the_requests_own_pools_length() {
    let config = "providers:\n- {name: a}\n- {name: b}\nload_source: in_flight\nmodels:
  short: {strategy: {name: prefix_affinity, prefix_bytes: 8}, backends: [{provider: a}, {provider: b}]}
  long: {strategy: {name: prefix_affinity, prefix_bytes: 4096}, backends: [{provider: a}, {provider: b}]}
";
    for model in ["short", "long"] {
        let body = chat(model);
        let mut flow = flow(config);
        let mut host = post(&body);
        send(&mut flow, &mut host);
        let bytes = if model == "short" { 8 } else { 4096 };
        let expected = crate::rewrite::body_facts(&body, bytes)
            .unwrap()
            .prefix_hash;
        let sent = flow.phase.sent().unwrap();
        assert_eq!(sent.prefix_hash, expected, "{model}");
    }
}
