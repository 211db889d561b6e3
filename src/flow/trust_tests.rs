//! What a hostile client can try: trailers while the filter holds the request, control and
//! credential headers of its own, paths that are not inference APIs, a forged X-Forwarded-For.

use super::fake_host::{FakeHost, FakeWorker};
use super::tests::{expected_body, flow, mget, post, BODY, CONFIG};
use super::*;
use crate::call::CallReply;

/// A balanced request whose client also sent control headers of its own.
fn hostile_post() -> FakeHost {
    let mut host = post(BODY);
    host.set_request_header("x-selected-provider", "minmax");
    host.set_request_header("x-rewrite-target-model", "evil");
    host
}

#[test]
fn control_headers_are_gone_when_the_headers_callback_returns() {
    for (path, end_of_stream) in [
        ("/masgod/v1/chat/completions", false),
        ("/v1/chat/completions", true),
        ("/internal/jobs", false),
    ] {
        let mut flow = flow(CONFIG);
        let mut host = hostile_post();
        host.set_request_header(":path", path);
        flow.on_request_headers(&mut host, end_of_stream, &mut FakeWorker::new(1));
        assert_eq!(host.header("x-selected-provider"), None, "{path}");
        assert_eq!(host.header("x-rewrite-target-model"), None, "{path}");
        assert_eq!(
            host.route_cache_cleared, 1,
            "{path}: re-matched without them"
        );
    }
}

/// Headers held and the whole body delivered to them (Envoy with
/// `allow_on_headers_stop_iteration`, Higress), without end of stream: trailers will end it.
fn body_delivered_to_held_headers(config: &str) -> (RequestFlow, FakeHost, FakeWorker) {
    let mut flow = flow(config);
    let mut host = hostile_post();
    let mut worker = FakeWorker::new(1);
    assert_eq!(
        flow.on_request_headers(&mut host, false, &mut worker),
        Verdict::Pause
    );
    assert_eq!(
        flow.on_request_body(&mut host, BODY.len(), false, &mut worker),
        Verdict::Pause
    );
    (flow, host, worker)
}

#[test]
fn trailers_while_the_store_is_asked_are_held_and_the_body_rewritten_after() {
    let (mut flow, mut host, mut worker) = body_delivered_to_held_headers(CONFIG);
    let worker = &mut worker;
    assert_eq!(flow.on_request_trailers(&mut host, worker), Verdict::Pause);
    assert_eq!(host.resumed, 0);
    flow.on_store_reply(&mut host, Ok(mget(&[Some("90"), Some("10"), None])), worker);
    assert_eq!(host.resumed, 1);
    assert_eq!(host.header("x-selected-provider"), Some("qianwen"));
    assert_eq!(host.body, expected_body("qwen3-max-preview"));
    assert_eq!(
        host.header("content-length"),
        Some(host.body.len().to_string().as_str())
    );
}

#[test]
fn trailers_while_a_pool_waits_for_the_body_start_the_choice_and_stay_held() {
    let config = format!("{CONFIG}models:\n  auto: {{backends: [{{provider: minmax}}]}}\n");
    let (mut flow, mut host, mut worker) = body_delivered_to_held_headers(&config);
    let worker = &mut worker;
    assert!(host.sent.is_empty(), "the pool is read from the whole body");
    assert_eq!(flow.on_request_trailers(&mut host, worker), Verdict::Pause);
    assert_eq!(
        host.sent.len(),
        1,
        "the store is asked once the body is whole"
    );
    flow.on_store_reply(&mut host, Ok(mget(&[Some("1"), None, None])), worker);
    assert_eq!(host.resumed, 1);
    assert_eq!(host.body, expected_body("MiniMax-M2.1"));
}

#[test]
fn trailers_pass_on_requests_the_filter_does_not_hold() {
    let mut flow = flow(CONFIG);
    let mut host = hostile_post();
    host.set_request_header(":path", "/internal/jobs");
    let worker = &mut FakeWorker::new(1);
    assert_eq!(
        flow.on_request_headers(&mut host, false, worker),
        Verdict::Continue
    );
    assert_eq!(
        flow.on_request_trailers(&mut host, worker),
        Verdict::Continue
    );
}

#[test]
fn requests_outside_the_scope_keep_their_body_and_get_no_key() {
    let config = r#"
providers:
- {name: qianwen, model: qwen3-max-preview, api_tokens: [sk-qianwen-key-0001]}
load_source: none
strategy: random
"#;
    for (path, balanced) in [
        ("/internal/jobs", false),
        ("/v1/models", false),
        ("/v1/embeddings", true),
        ("/masgod/v1/chat/completions?stream=1", true),
    ] {
        let mut flow = flow(config);
        let mut host = post(BODY);
        host.set_request_header(":path", path);
        host.set_request_header("authorization", "Bearer client-key");
        let worker = &mut FakeWorker::new(1);
        flow.on_request_headers(&mut host, false, worker);
        flow.on_request_body(&mut host, BODY.len(), true, worker);
        let key = if balanced {
            "Bearer sk-qianwen-key-0001"
        } else {
            "Bearer client-key"
        };
        assert_eq!(host.header("authorization"), Some(key), "{path}");
        assert_eq!(
            host.header("x-selected-provider").is_some(),
            balanced,
            "{path}"
        );
        assert_eq!(
            host.body != BODY,
            balanced,
            "{path}: body rewritten only when balanced"
        );
    }
}

#[test]
fn route_names_and_paths_widen_or_narrow_the_scope() {
    let config = r#"
providers: [{name: a, model: m}]
load_source: none
strategy: random
paths: ["*"]
route_names: [jobs]
"#;
    for (route, balanced) in [(Some("jobs"), true), (Some("other"), false), (None, false)] {
        let mut flow = flow(config);
        let mut host = post(BODY);
        host.set_request_header(":path", "/internal/jobs");
        if let Some(route) = route {
            host.properties.insert("route_name".into(), route.into());
        }
        flow.on_request_headers(&mut host, false, &mut FakeWorker::new(1));
        assert_eq!(
            host.header("x-selected-provider").is_some(),
            balanced,
            "{route:?}"
        );
    }
}

const POOLED: &str = r#"
providers:
- {name: azure, model: gpt-4o, cluster: azure, api_tokens: [azure-key-0001], token_header: api-key}
- {name: openai, model: gpt-4o, cluster: openai, api_tokens: [sk-openai-key-0001]}
- {name: local, model: llama, cluster: local}
load_source: none
strategy: failover
"#;

fn with_client_credentials(host: &mut FakeHost) {
    host.set_request_header("authorization", "Bearer client-key");
    host.set_request_header("api-key", "client-key");
    host.set_request_header("x-api-key", "client-key");
}

#[test]
fn a_pooled_provider_gets_its_token_and_none_of_the_clients_credentials() {
    for (provider, expected) in [
        ("azure", [None, Some("azure-key-0001"), None]),
        ("openai", [Some("Bearer sk-openai-key-0001"), None, None]),
        (
            "local",
            [
                Some("Bearer client-key"),
                Some("client-key"),
                Some("client-key"),
            ],
        ),
    ] {
        let line = POOLED
            .lines()
            .find(|line| line.contains(&format!("name: {provider},")))
            .unwrap();
        let config = format!("providers:\n{line}\nload_source: none\nstrategy: random\n");
        let mut flow = flow(&config);
        let mut host = post(BODY);
        with_client_credentials(&mut host);
        let worker = &mut FakeWorker::new(1);
        flow.on_request_headers(&mut host, false, worker);
        let got = ["authorization", "api-key", "x-api-key"].map(|name| host.header(name));
        assert_eq!(got, expected, "{provider}");
    }
}

#[test]
fn a_retry_to_a_pooled_provider_carries_only_its_token() {
    let config = format!("{POOLED}retry: {{max_retries: 2}}\n");
    let mut flow = flow(&config);
    let mut host = post(BODY);
    with_client_credentials(&mut host);
    let worker = &mut FakeWorker::new(1);
    flow.on_request_headers(&mut host, false, worker);
    flow.on_request_body(&mut host, BODY.len(), true, worker);
    assert_eq!(host.header("api-key"), Some("azure-key-0001"));
    host.response_headers.insert(":status".into(), "503".into());
    assert_eq!(
        flow.on_response_headers(&mut host, false, worker),
        Verdict::Pause
    );
    let credentials = |call: &crate::call::CallRequest| {
        let mut found: Vec<(String, String)> = call
            .headers
            .iter()
            .filter(|(name, _)| ["authorization", "api-key", "x-api-key"].contains(&name.as_str()))
            .cloned()
            .collect();
        found.sort();
        found
    };
    let to_openai = host.dispatched.last().cloned().unwrap();
    assert_eq!(to_openai.cluster, "openai");
    assert_eq!(
        credentials(&to_openai),
        [("authorization".into(), "Bearer sk-openai-key-0001".into())]
    );
    flow.on_call_reply(&mut host, CallReply::failed(), worker);
    let to_local = host.dispatched.last().cloned().unwrap();
    assert_eq!(to_local.cluster, "local");
    assert_eq!(
        credentials(&to_local).len(),
        3,
        "no pool: the client's own credentials pass"
    );
}

#[test]
fn a_forged_forwarded_for_does_not_open_the_status_page() {
    let config = |trust: bool| {
        format!(
            "providers: [{{name: a}}]\nload_source: none\nstrategy: random\nstatus_endpoint: \
             {{path: /ai-lb/status, allowed_sources: [10.0.0.0/8], trust_forwarded_for: {trust}}}\n"
        )
    };
    // Envoy reads source.address from X-Forwarded-For under use_remote_address: false.
    for (trust, forwarded, served) in [
        (false, true, false),
        (false, false, true),
        (true, true, true),
    ] {
        let mut flow = flow(&config(trust));
        let mut host = FakeHost::request(&[(":method", "GET"), (":path", "/ai-lb/status")]);
        host.properties
            .insert("source.address".into(), "10.1.2.3:0".into());
        if forwarded {
            host.set_request_header("x-forwarded-for", "10.1.2.3");
        }
        flow.on_request_headers(&mut host, true, &mut FakeWorker::new(1));
        assert_eq!(
            host.answered.len(),
            usize::from(served),
            "trust {trust}, xff {forwarded}"
        );
    }
}
