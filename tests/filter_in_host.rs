#![allow(clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly
//! The built filter in the test host, both builds: the Higress build reading a real Redis through
//! Higress's Redis calls, the Envoy build reading it through a real Webdis by a dispatched call.
//! Each scenario runs on both builds (`both_builds!`), in every order of body and store reply
//! and with both ways a host delivers a body to paused headers.

mod host;

use host::{
    both_builds, reading, redis_section, Action, BodyDelivery, Build, Host, HttpReply, Outcome,
    RedisServer, Stream, Vm, Webdis, HIGRESS_REDIS_CLUSTER,
};
use serde_json::{json, Value};

/// proxy-wasm log levels, as `Vm::logged` compares them.
const INFO: i32 = 2;
const WARN: i32 = 3;

const SEED_BODY: &[u8] = br#"{"model":"auto","messages":[{"role":"user","content":"hello"}]}"#;

/// A gateway with one VM running the filter, and the real store behind it.
struct Gateway {
    redis: RedisServer,
    webdis: Option<Webdis>,
    host: Host,
}

/// The seed's two providers; `overrides` are merged in (`redis` field by field).
fn config(build: Build, overrides: Value) -> Value {
    let mut config = json!({
        "providers": [
            {"name": "minmax", "key": "minimax_1", "model": "MiniMax-M2.1"},
            {"name": "qianwen", "key": "qwen_1", "model": "qwen3-max-preview"}
        ],
        "redis": redis_section(build)
    });
    let Value::Object(overrides) = overrides else {
        panic!("overrides must be an object")
    };
    for (field, value) in overrides {
        match (field.as_str(), &value) {
            ("redis", Value::Object(redis)) => {
                for (key, value) in redis {
                    config["redis"][key] = value.clone();
                }
            }
            _ => config[field.as_str()] = value,
        }
    }
    config
}

impl Gateway {
    fn start(build: Build, delivery: BodyDelivery) -> Self {
        Self::with_config(build, delivery, config(build, json!({})))
    }

    fn with_config(build: Build, delivery: BodyDelivery, config: Value) -> Self {
        let mut gateway = Self::without_vm(build, delivery);
        gateway
            .host
            .start_vm(&config.to_string())
            .unwrap_or_else(|refused| panic!("configuration refused: {}", refused.message()));
        gateway
    }

    fn without_vm(build: Build, delivery: BodyDelivery) -> Self {
        let redis = RedisServer::start();
        let (host, webdis) = reading(build, &redis);
        Self {
            redis,
            webdis,
            host: host.body_delivery(delivery),
        }
    }

    fn loads(&self, minmax: &str, qianwen: &str) {
        self.redis.set("ai_metric:minimax_1", minmax);
        self.redis.set("ai_metric:qwen_1", qianwen);
    }

    fn restart_redis(&mut self) {
        self.redis.restart();
        if let Some(webdis) = &self.webdis {
            webdis.wait_until_ready();
        }
    }

    fn vm(&mut self) -> &mut Vm {
        self.host.vm(0)
    }

    /// One chat request sent in `order`; returns the request once everything was delivered.
    fn chat(&mut self, body: &[u8], order: Order, extra_headers: &[(&str, &str)]) -> u32 {
        let length = body.len().to_string();
        let mut headers = vec![
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            (":authority", "gateway.local"),
            ("content-type", "application/json"),
            ("content-length", length.as_str()),
        ];
        headers.extend_from_slice(extra_headers);
        let vm = self.vm();
        let request = vm.request(&headers, &[("route_name", "masgod")]);
        assert_eq!(
            vm.send_headers(request, false),
            Action::Pause,
            "headers wait for the store"
        );
        match order {
            Order::BodyThenReply => {
                vm.send_body(request, body, true);
                assert_eq!(vm.deliver_store_replies(), 1);
            }
            Order::ReplyThenBody => {
                assert_eq!(vm.deliver_store_replies(), 1);
                vm.send_body(request, body, true);
            }
            Order::ReplyMidBody => {
                let (head, tail) = body.split_at(body.len() / 2);
                vm.send_body(request, head, false);
                assert_eq!(vm.deliver_store_replies(), 1);
                vm.send_body(request, tail, true);
            }
        }
        request
    }

    fn stream(&mut self, request: u32) -> &Stream {
        self.vm().stream(request)
    }

    fn metric(&self, name: &str) -> u64 {
        self.host.metric(&format!("ai_lb.{name}"))
    }
}

#[derive(Debug, Clone, Copy)]
enum Order {
    BodyThenReply,
    ReplyThenBody,
    /// Half the body, then the reply, then the rest.
    ReplyMidBody,
}

const ORDERS: [Order; 3] = [
    Order::BodyThenReply,
    Order::ReplyThenBody,
    Order::ReplyMidBody,
];
const DELIVERIES: [BodyDelivery; 2] = [
    BodyDelivery::AfterHeadersResume,
    BodyDelivery::WhileHeadersPaused,
];

/// The request reached the upstream whole, routed to `provider`, its model rewritten to `model`,
/// and the route re-matched (by the foreign function on Envoy).
fn assert_routed(stream: &Stream, build: Build, provider: &str, model: &str) {
    stream.assert_forwarded_whole();
    assert_eq!(
        stream.upstream_header("x-selected-provider"),
        Some(provider)
    );
    assert_eq!(
        stream.upstream_header("x-rewrite-target-model"),
        Some(model)
    );
    assert_eq!(stream.upstream_json()["model"], model);
    assert!(stream.route_cache_cleared(), "the route was not re-matched");
    if build == Build::Envoy {
        // After the choice, and before it when the client sent routing headers of its own.
        assert_eq!(
            stream.foreign_calls.last().map(String::as_str),
            Some("clear_route_cache")
        );
        assert!(stream
            .foreign_calls
            .iter()
            .all(|call| call == "clear_route_cache"));
    }
    let routing_headers = stream
        .upstream
        .headers
        .iter()
        .flatten()
        .filter(|(name, _)| name.starts_with("x-"))
        .count();
    assert_eq!(routing_headers, 2, "exactly one of each routing header");
}

both_builds!(
    seed_scenarios_a_and_b_in_every_order,
    the_store_is_asked_for_every_provider_load_at_once,
    store_down_falls_back_to_weights,
    store_slower_than_its_timeout_falls_back_to_weights,
    unusable_loads_fall_back_to_weights,
    rules_pick_the_configuration_by_route,
    a_refused_configuration_names_the_field,
    client_sent_routing_headers_are_overwritten,
    a_body_over_max_body_bytes_is_routed_untouched_unless_it_streams,
    a_body_that_is_not_json_is_routed_untouched,
    a_request_without_body_passes_through,
    two_workers_share_stats_and_the_store,
    debug_lines_follow_the_host_log_level,
);

fn seed_scenarios_a_and_b_in_every_order(build: Build) {
    for delivery in DELIVERIES {
        let mut gateway = Gateway::start(build, delivery);
        for (minmax, qianwen, provider, model) in [
            ("90", "10", "qianwen", "qwen3-max-preview"), // scenario A
            ("10", "90", "minmax", "MiniMax-M2.1"),       // scenario B
        ] {
            gateway.loads(minmax, qianwen);
            for order in ORDERS {
                let before = gateway.metric(&format!("selected.{provider}"));
                let request = gateway.chat(SEED_BODY, order, &[]);
                let stream = gateway.stream(request);
                assert_routed(stream, build, provider, model);
                // Every byte but the model's value is as the client sent it.
                let expected = String::from_utf8_lossy(SEED_BODY).replace("auto", model);
                assert_eq!(
                    stream.upstream_body(),
                    expected.as_bytes(),
                    "{delivery:?} {order:?}"
                );
                assert_eq!(gateway.metric(&format!("selected.{provider}")), before + 1);
            }
        }
        assert_eq!(gateway.metric("rewrite.done"), 6);
        assert_eq!(gateway.metric("fallback.store_error"), 0);
    }
}

fn the_store_is_asked_for_every_provider_load_at_once(build: Build) {
    let mut gateway = Gateway::start(build, BodyDelivery::AfterHeadersResume);
    let vm = gateway.vm();
    let request = vm.request(
        &[(":method", "POST"), (":path", "/v1/chat/completions")],
        &[],
    );
    vm.send_headers(request, false);
    match build {
        Build::Higress => {
            let calls = vm.redis_calls();
            assert_eq!(calls.len(), 1);
            assert_eq!(calls[0].upstream, HIGRESS_REDIS_CLUSTER);
            assert_eq!(
                calls[0].arguments(),
                ["MGET", "ai_metric:minimax_1", "ai_metric:qwen_1"]
            );
        }
        Build::Envoy => {
            let calls = vm.http_calls();
            assert_eq!(calls.len(), 1);
            assert_eq!(calls[0].cluster, "webdis");
            assert_eq!(
                calls[0].header(":path"),
                Some("/MGET/ai_metric:minimax_1/ai_metric:qwen_1.json")
            );
            assert_eq!(calls[0].header(":method"), Some("GET"));
            assert_eq!(calls[0].timeout.as_millis(), 100);
        }
    }
    assert!(
        vm.stream(request).upstream.headers.is_none(),
        "held until the store answers"
    );
}

/// Weight 0 for qianwen: a fallback always picks minmax, although the loads favour qianwen.
fn minmax_by_weight(build: Build) -> Value {
    config(
        build,
        json!({"providers": [
            {"name": "minmax", "key": "minimax_1", "model": "MiniMax-M2.1", "weight": 1},
            {"name": "qianwen", "key": "qwen_1", "model": "qwen3-max-preview", "weight": 0}
        ]}),
    )
}

fn store_down_falls_back_to_weights(build: Build) {
    // Four failures before the store counts as down: one for each order, and one more to see
    // how the host reports it.
    let mut config = minmax_by_weight(build);
    config["redis"]["down_after_failures"] = json!(4);
    for delivery in DELIVERIES {
        let mut gateway = Gateway::with_config(build, delivery, config.clone());
        gateway.loads("90", "10");
        let request = gateway.chat(SEED_BODY, Order::ReplyThenBody, &[]);
        assert_routed(
            gateway.stream(request),
            build,
            "qianwen",
            "qwen3-max-preview",
        );
        gateway.redis.stop();
        for order in ORDERS {
            let request = gateway.chat(SEED_BODY, order, &[]);
            assert_routed(gateway.stream(request), build, "minmax", "MiniMax-M2.1");
        }
        assert_eq!(gateway.metric("fallback.store_error"), 3);
        let vm = gateway.vm();
        let request = vm.request(
            &[(":method", "POST"), (":path", "/v1/chat/completions")],
            &[],
        );
        assert_eq!(vm.send_headers(request, false), Action::Pause);
        if build == Build::Higress {
            // The failure reaches the filter as Higress sends it: a non-zero status, no reply.
            assert!(matches!(vm.redis_calls()[0].outcome, Outcome::Refused(_)));
        }
        vm.send_body(request, SEED_BODY, true);
        vm.deliver_store_replies();
        assert_routed(vm.stream(request), build, "minmax", "MiniMax-M2.1");
        assert!(vm.logged(WARN, "known down after 4 failures in a row"));

        // Known down: the next requests neither ask nor wait.
        for _ in 0..3 {
            let request = vm.request(
                &[(":method", "POST"), (":path", "/v1/chat/completions")],
                &[],
            );
            assert_eq!(vm.send_headers(request, false), Action::Continue);
            assert!(vm.redis_calls().is_empty() && vm.http_calls().is_empty());
            vm.send_body(request, SEED_BODY, true);
            assert_routed(vm.stream(request), build, "minmax", "MiniMax-M2.1");
        }
        assert_eq!(gateway.metric("fallback.store_error"), 4);
        assert_eq!(gateway.metric("fallback.store_down"), 3);

        // Back up: after the retry (1 s by default) one request asks, and the loads decide
        // again (Higress on a fresh connection).
        gateway.restart_redis();
        gateway.loads("90", "10");
        gateway.host.advance(std::time::Duration::from_millis(1000));
        let request = gateway.chat(SEED_BODY, Order::BodyThenReply, &[]);
        assert_routed(
            gateway.stream(request),
            build,
            "qianwen",
            "qwen3-max-preview",
        );
        assert!(gateway.vm().logged(INFO, "answers again"));
    }
}

fn store_slower_than_its_timeout_falls_back_to_weights(build: Build) {
    let mut gateway = Gateway::with_config(
        build,
        BodyDelivery::WhileHeadersPaused,
        minmax_by_weight(build),
    );
    gateway.loads("90", "10");
    match &gateway.webdis {
        Some(webdis) => webdis.freeze(),
        None => gateway.redis.freeze(),
    }
    for order in ORDERS {
        let started = std::time::Instant::now();
        let request = gateway.chat(SEED_BODY, order, &[]);
        assert_routed(gateway.stream(request), build, "minmax", "MiniMax-M2.1");
        // The store's timeout (100 ms) bounds the wait, not the frozen store.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
    assert_eq!(gateway.metric("fallback.store_error"), 3);
    match &gateway.webdis {
        Some(webdis) => webdis.thaw(),
        None => gateway.redis.thaw(),
    }
}

fn unusable_loads_fall_back_to_weights(build: Build) {
    let mut gateway = Gateway::with_config(
        build,
        BodyDelivery::AfterHeadersResume,
        minmax_by_weight(build),
    );
    for (minmax, qianwen) in [("busy", "-1"), ("NaN", "inf"), ("", "x")] {
        gateway.loads(minmax, qianwen);
        let request = gateway.chat(SEED_BODY, Order::ReplyThenBody, &[]);
        assert_routed(gateway.stream(request), build, "minmax", "MiniMax-M2.1");
    }
    assert_eq!(gateway.metric("fallback.all_unknown"), 3);
    // A known load beats a missing key.
    gateway.redis.command(&["DEL", "ai_metric:minimax_1"]);
    gateway.redis.set("ai_metric:qwen_1", "50");
    let request = gateway.chat(SEED_BODY, Order::ReplyThenBody, &[]);
    assert_routed(
        gateway.stream(request),
        build,
        "qianwen",
        "qwen3-max-preview",
    );
}

fn rules_pick_the_configuration_by_route(build: Build) {
    let redis = config(build, json!({}))["redis"].clone();
    let rule_only = json!({
        "_rules_": [{
            "_match_route_": ["masgod"],
            "providers": [
                {"name": "vllm-a", "key": "a", "model": "llama-a"},
                {"name": "vllm-b", "key": "b", "model": "llama-b"}
            ],
            "redis": redis
        }]
    });
    let mut with_global = config(build, json!({}));
    with_global["_rules_"] = rule_only["_rules_"].clone();

    let mut gateway = Gateway::with_config(build, BodyDelivery::WhileHeadersPaused, with_global);
    gateway.loads("10", "90");
    gateway.redis.set("ai_metric:a", "70");
    gateway.redis.set("ai_metric:b", "30");
    // The rule matches route_name "masgod": its providers, its keys.
    let request = gateway.chat(SEED_BODY, Order::BodyThenReply, &[]);
    assert_routed(gateway.stream(request), build, "vllm-b", "llama-b");
    // Another route: the global configuration.
    let vm = gateway.vm();
    let request = vm.request(
        &[(":method", "POST"), (":path", "/v1/chat/completions")],
        &[("route_name", "other")],
    );
    assert_eq!(vm.send_headers(request, false), Action::Pause);
    vm.send_body(request, SEED_BODY, true);
    vm.deliver_store_replies();
    assert_routed(vm.stream(request), build, "minmax", "MiniMax-M2.1");

    // No global configuration: an unmatched route passes through, untouched and unpaused.
    let mut gateway = Gateway::without_vm(build, BodyDelivery::WhileHeadersPaused);
    gateway
        .host
        .start_vm(&rule_only.to_string())
        .expect("configured");
    let vm = gateway.vm();
    let request = vm.request(
        &[
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            ("x-selected-provider", "vllm-a"),
        ],
        &[("route_name", "other")],
    );
    assert_eq!(vm.send_headers(request, false), Action::Continue);
    assert_eq!(
        vm.send_body(request, SEED_BODY, true),
        Some(Action::Continue)
    );
    let stream = vm.stream(request);
    stream.assert_forwarded_whole();
    assert_eq!(stream.upstream_body(), SEED_BODY);
    assert_eq!(
        stream.upstream_header("x-selected-provider"),
        None,
        "client header dropped"
    );
    assert!(vm.redis_calls().is_empty() && vm.http_calls().is_empty());
    assert_eq!(gateway.metric("requests.passthrough"), 1);
}

/// The filter's error log when it refuses `config`.
fn refusal(gateway: &mut Gateway, config: &Value) -> String {
    gateway
        .host
        .start_vm(&config.to_string())
        .expect_err("refused")
        .message()
}

fn a_refused_configuration_names_the_field(build: Build) {
    let mut gateway = Gateway::without_vm(build, BodyDelivery::AfterHeadersResume);
    let mut duplicate = config(build, json!({}));
    duplicate["providers"][1]["name"] = json!("minmax");
    let mut cases = vec![
        (
            duplicate,
            r#"invalid configuration: providers[1].name: duplicate "minmax""#,
        ),
        (
            config(build, json!({"redis": {"timeout_ms": 0}})),
            "redis.timeout_ms",
        ),
    ];
    if build == Build::Envoy {
        let resp = config(build, json!({"redis": {"protocol": "resp"}}));
        cases.push((resp, "ai-load-balancer.wasm"));
    }
    for (config, expected) in cases {
        let message = refusal(&mut gateway, &config);
        assert!(message.contains(expected), "{message}");
    }
}

fn client_sent_routing_headers_are_overwritten(build: Build) {
    for delivery in DELIVERIES {
        let mut gateway = Gateway::start(build, delivery);
        gateway.loads("90", "10");
        for order in ORDERS {
            let request = gateway.chat(
                SEED_BODY,
                order,
                &[
                    ("x-selected-provider", "minmax"),
                    ("x-rewrite-target-model", "evil"),
                ],
            );
            assert_routed(
                gateway.stream(request),
                build,
                "qianwen",
                "qwen3-max-preview",
            );
        }
    }
}

fn a_body_over_max_body_bytes_is_routed_untouched_unless_it_streams(build: Build) {
    // `max_body_bytes` bounds a body held whole for the choice; one that is not whole when the
    // choice is made (some or none of it came) is rewritten as it passes, never held, whatever
    // its size.
    let rewritten = String::from_utf8_lossy(SEED_BODY).replacen("auto", "qwen3-max-preview", 1);
    let rewritten = rewritten.as_bytes();
    for delivery in DELIVERIES {
        let limited = config(build, json!({"max_body_bytes": 32}));
        let mut gateway = Gateway::with_config(build, delivery, limited);
        gateway.loads("90", "10");
        let mut streamed = 0;
        for order in ORDERS {
            let request = gateway.chat(SEED_BODY, order, &[]);
            let stream = gateway.stream(request);
            stream.assert_forwarded_whole();
            assert_eq!(
                stream.upstream_header("x-selected-provider"),
                Some("qianwen")
            );
            let streams = delivery == BodyDelivery::AfterHeadersResume
                || !matches!(order, Order::BodyThenReply);
            let expected = if streams { rewritten } else { SEED_BODY };
            streamed += usize::from(streams);
            assert_eq!(stream.upstream_body(), expected, "{delivery:?} {order:?}");
        }
        assert_eq!(gateway.metric("rewrite.skipped"), 3 - streamed as u64);
        let held_whole = usize::from(delivery == BodyDelivery::WhileHeadersPaused);
        assert_eq!(streamed, 3 - held_whole, "{delivery:?}");
        assert_eq!(gateway.metric("rewrite.done"), streamed as u64);
    }
}

fn a_body_that_is_not_json_is_routed_untouched(build: Build) {
    for delivery in DELIVERIES {
        let mut gateway = Gateway::start(build, delivery);
        gateway.loads("10", "90");
        let bodies: [&[u8]; 4] = [b"not json {", b"{\"model\":", b"[\"model\"]", b"\xff\xfe{}"];
        for (body, order) in bodies.iter().zip(ORDERS.iter().cycle()) {
            let request = gateway.chat(body, *order, &[]);
            let stream = gateway.stream(request);
            stream.assert_forwarded_whole();
            assert_eq!(
                stream.upstream_header("x-selected-provider"),
                Some("minmax")
            );
            assert_eq!(stream.upstream_body(), *body);
        }
        assert_eq!(gateway.metric("rewrite.skipped"), 4);
    }
}

fn a_request_without_body_passes_through(build: Build) {
    let mut gateway = Gateway::start(build, BodyDelivery::AfterHeadersResume);
    let vm = gateway.vm();
    let request = vm.request(
        &[
            (":method", "GET"),
            (":path", "/v1/models"),
            ("x-selected-provider", "minmax"),
        ],
        &[],
    );
    assert_eq!(vm.send_headers(request, true), Action::Continue);
    let stream = vm.stream(request);
    stream.assert_forwarded_whole();
    assert_eq!(stream.upstream_header("x-selected-provider"), None);
    assert!(
        stream.route_cache_cleared(),
        "matched again without the client's header"
    );
    assert!(vm.redis_calls().is_empty() && vm.http_calls().is_empty());
}

fn two_workers_share_stats_and_the_store(build: Build) {
    let mut gateway = Gateway::start(build, BodyDelivery::WhileHeadersPaused);
    let second = gateway
        .host
        .start_vm(&config(build, json!({})).to_string())
        .expect("configured");
    gateway.loads("90", "10");
    // Both workers pause a request at once, then the loads change, then both replies arrive.
    let headers = [(":method", "POST"), (":path", "/v1/chat/completions")];
    let first_request = gateway.host.vm(0).request(&headers, &[]);
    gateway.host.vm(0).send_headers(first_request, false);
    gateway.loads("10", "90");
    let second_request = gateway.host.vm(second).request(&headers, &[]);
    gateway.host.vm(second).send_headers(second_request, false);
    for (vm, request) in [(second, second_request), (0, first_request)] {
        let vm = gateway.host.vm(vm);
        vm.send_body(request, SEED_BODY, true);
        vm.deliver_store_replies();
    }
    let (first, second_stream) = (
        gateway
            .host
            .vm(0)
            .stream(first_request)
            .upstream_header("x-selected-provider")
            .map(str::to_string),
        gateway
            .host
            .vm(second)
            .stream(second_request)
            .upstream_header("x-selected-provider")
            .map(str::to_string),
    );
    match build {
        // Each Higress call was answered when it was made: each worker saw the loads of its time.
        Build::Higress => {
            assert_eq!(first.as_deref(), Some("qianwen"));
            assert_eq!(second_stream.as_deref(), Some("minmax"));
        }
        // Webdis is asked when the host forwards the call: both saw the new loads.
        Build::Envoy => {
            assert_eq!(first.as_deref(), Some("minmax"));
            assert_eq!(second_stream.as_deref(), Some("minmax"));
        }
    }
    // Stats are the process's, as Envoy's are.
    assert_eq!(gateway.metric("requests.balanced"), 2);
    assert_eq!(gateway.metric("rewrite.done"), 2);
}

fn debug_lines_follow_the_host_log_level(build: Build) {
    for (level, shown) in [(1, true), (2, false)] {
        let mut gateway = Gateway::without_vm(build, BodyDelivery::AfterHeadersResume);
        gateway.host = std::mem::replace(&mut gateway.host, Host::new(build)).log_level(level);
        gateway
            .host
            .start_vm(&config(build, json!({})).to_string())
            .expect("configured");
        let vm = gateway.vm();
        let chat = "/v1/chat/completions";
        let request = vm.request(&[(":method", "GET"), (":path", chat)], &[]);
        vm.send_headers(request, true);
        assert_eq!(
            vm.logged(1, "not balanced: request has no body"),
            shown,
            "level {level}"
        );
        assert!(vm.logged(2, "configured"), "info lines show at both levels");
    }
}

/// Higress hands every Redis reply to the root context with a token: each must reach the
/// request that asked, whatever the order.
#[test]
fn higress_replies_reach_their_own_request_in_any_order() {
    let mut gateway = Gateway::start(Build::Higress, BodyDelivery::WhileHeadersPaused);
    let headers = [(":method", "POST"), (":path", "/v1/chat/completions")];
    let mut requests = Vec::new();
    for (minmax, qianwen) in [("90", "10"), ("10", "90"), ("90", "10")] {
        gateway.loads(minmax, qianwen);
        let vm = gateway.vm();
        let request = vm.request(&headers, &[]);
        vm.send_headers(request, false);
        vm.send_body(request, SEED_BODY, true);
        requests.push(request);
    }
    let vm = gateway.vm();
    let tokens: Vec<u32> = vm.redis_calls().iter().map(|call| call.token).collect();
    for token in tokens.iter().rev() {
        vm.deliver_redis_reply(*token);
    }
    let providers: Vec<_> = requests
        .iter()
        .map(|request| vm.stream(*request).upstream_header("x-selected-provider"))
        .collect();
    assert_eq!(
        providers,
        [Some("qianwen"), Some("minmax"), Some("qianwen")]
    );
}

/// A request that ended (client gone) before its reply: the late reply finds nothing to resume
/// and nothing breaks for the next request.
#[test]
fn higress_reply_after_the_request_ended_is_dropped() {
    let mut gateway = Gateway::start(Build::Higress, BodyDelivery::WhileHeadersPaused);
    gateway.loads("90", "10");
    let vm = gateway.vm();
    let request = vm.request(
        &[(":method", "POST"), (":path", "/v1/chat/completions")],
        &[],
    );
    vm.send_headers(request, false);
    vm.finish(request);
    assert_eq!(vm.deliver_redis_replies(), 1);
    assert!(vm.stream(request).upstream.headers.is_none());
    let request = gateway.chat(SEED_BODY, Order::ReplyThenBody, &[]);
    assert_routed(
        gateway.stream(request),
        Build::Higress,
        "qianwen",
        "qwen3-max-preview",
    );
}

/// The Webdis call answered by hand: a recorded reply, an error status, a reset.
#[test]
fn envoy_webdis_replies_recorded_and_failed() {
    let mut gateway = Gateway::start(Build::Envoy, BodyDelivery::AfterHeadersResume);
    let answers = [
        (
            Some(HttpReply::new(200, br#"{"MGET":["90","10"]}"#)),
            "qianwen",
        ),
        (
            Some(HttpReply::new(200, br#"{"MGET":["5",null]}"#)),
            "minmax",
        ),
        (
            Some(HttpReply::new(200, br#"{"MGET":[null,"7"]}"#)),
            "qianwen",
        ),
    ];
    for (reply, provider) in answers {
        let vm = gateway.vm();
        let request = vm.request(
            &[(":method", "POST"), (":path", "/v1/chat/completions")],
            &[],
        );
        vm.send_headers(request, false);
        let token = vm.http_calls()[0].token;
        vm.answer_http_call(token, reply);
        vm.send_body(request, SEED_BODY, true);
        assert_eq!(
            vm.stream(request).upstream_header("x-selected-provider"),
            Some(provider)
        );
    }
    let failures = [
        Some(HttpReply::new(403, br#"{"error":"forbidden"}"#)),
        Some(HttpReply::new(200, b"<html>proxy error</html>")),
        None, // reset: Envoy calls back with no headers
    ];
    for reply in failures {
        let vm = gateway.vm();
        let request = vm.request(
            &[(":method", "POST"), (":path", "/v1/chat/completions")],
            &[],
        );
        vm.send_headers(request, false);
        let token = vm.http_calls()[0].token;
        vm.answer_http_call(token, reply);
        vm.send_body(request, SEED_BODY, true);
        vm.stream(request).assert_forwarded_whole();
    }
    assert_eq!(gateway.metric("fallback.store_error"), 3);
}

/// The example in tests/README.md, verbatim, so that it stays true.
#[test]
fn least_loaded_provider_wins() {
    let redis = RedisServer::start();
    redis.set("ai_metric:minimax_1", "90");
    redis.set("ai_metric:qwen_1", "10");
    let mut host = Host::new(Build::Higress)
        .body_delivery(BodyDelivery::WhileHeadersPaused)
        .cluster("outbound|6379||redis-svc", Some(redis.address));
    let vm = host
        .start_vm(include_str!("../examples/higress/seed.yaml"))
        .expect("configured");
    let vm = host.vm(vm);

    let request = vm.request(
        &[(":method", "POST"), (":path", "/v1/chat/completions")],
        &[],
    );
    assert_eq!(vm.send_headers(request, false), Action::Pause);
    vm.send_body(request, br#"{"model":"auto"}"#, true); // the body before the reply
    vm.deliver_store_replies();

    let stream = vm.stream(request);
    stream.assert_forwarded_whole();
    assert_eq!(
        stream.upstream_header("x-selected-provider"),
        Some("qianwen")
    );
    assert_eq!(stream.upstream_json()["model"], "qwen3-max-preview");
    assert_eq!(host.metric("ai_lb.selected.qianwen"), 1);
}
