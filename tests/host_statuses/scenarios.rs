//! The exchanges that make the filter call each host function, on one VM: a chat request
//! balanced by the store's loads, a retry on another provider, the status page, the tick's
//! probe, and a configuration update. Each one can be run under an injected status and then
//! again without it; each knows what "answered" and "normal" mean for it.

use std::time::Duration;

use serde_json::{json, Value};

use crate::host::{reading, redis_section, BodyDelivery, Build, Host, HttpReply};
use crate::host::{RedisServer, Stream, Vm, Webdis};

const CHAT: &[u8] = br#"{"model":"auto","messages":[{"role":"user","content":"hello"}]}"#;
const ANSWER: &[u8] = br#"{"choices":[{"message":{"content":"hi"}}]}"#;
const RETRY_ANSWER: &[u8] = br#"{"choices":[{"message":{"content":"from minmax"}}]}"#;
const MINMAX_MODEL: &str = "MiniMax-M2.1";
const QIANWEN_MODEL: &str = "qwen3-max-preview";
const MINMAX_CLUSTER: &str = "outbound|80||minmax";
const QIANWEN_CLUSTER: &str = "outbound|80||qianwen";
const STATUS_PATH: &str = "/ai-lb/status";
/// How long (on the host's clock) a client waits for its request to go on, or for its answer:
/// time for what the filter does on its ticks (a request held for a body that never comes goes
/// on after a second).
const PATIENCE_S: u32 = 5;

/// What makes the filter call a host function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// A chat request the store's loads send to qianwen, its model rewritten, answered 200;
    /// the body reaches the filter after it resumes the request (Envoy's default).
    Chat,
    /// The same with the body handed to held headers (`allow_on_headers_stop_iteration`,
    /// Higress).
    ChatBodyWhileHeld,
    /// qianwen answers 503; the filter holds it and retries on minmax by a call it dispatches;
    /// minmax's reply answers the client.
    Retry,
    /// A `GET` of the status page from an allowed address: the filter answers it.
    StatusPage,
    /// The tick after minmax was ejected: the lease holder probes minmax, whose 200 brings it
    /// back.
    ProbeTick,
    /// A configuration update applied to the running VM (`proxy_on_configure` again).
    Reconfigure,
}

/// One VM of one host set up for a scenario, with the stores it reads.
pub struct Gateway {
    pub host: Host,
    scenario: Scenario,
    config: String,
    _redis: Option<RedisServer>,
    _webdis: Option<Webdis>,
}

/// The providers read from the store (qianwen less loaded), the status page open to
/// 127.0.0.1; with `retry`, retry on (which needs the body while the headers are held), both
/// providers' clusters answered by hand.
fn balanced_config(build: Build, retry: bool) -> Value {
    let mut config = json!({
        "providers": [
            {"name": "minmax", "key": "minimax_1", "model": MINMAX_MODEL, "cluster": MINMAX_CLUSTER},
            {"name": "qianwen", "key": "qwen_1", "model": QIANWEN_MODEL, "cluster": QIANWEN_CLUSTER}
        ],
        "redis": redis_section(build),
        "health": {"probe": false},
        "status_endpoint": {"path": STATUS_PATH, "allowed_sources": ["127.0.0.1"]}
    });
    if retry {
        config["retry"] = json!({"max_retries": 1});
    }
    config
}

/// minmax first (failover), probed every second once out, out far longer than the test.
fn probed_config() -> Value {
    json!({
        "providers": [
            {"name": "minmax", "model": MINMAX_MODEL, "cluster": "minmax"},
            {"name": "qianwen", "model": QIANWEN_MODEL, "cluster": "qianwen"}
        ],
        "strategy": "failover",
        "health": {"cooldown_ms": 600_000, "probe": {"interval_ms": 1000, "timeout_ms": 500}}
    })
}

impl Gateway {
    /// The host (log level trace, so that every log line is a host call) and its VM, set up
    /// for `scenario`: for the probe, minmax is ejected already.
    pub fn start(build: Build, scenario: Scenario) -> Self {
        let (host, config, redis, webdis) = if scenario == Scenario::ProbeTick {
            let host = Host::new(build)
                .cluster("minmax", None)
                .cluster("qianwen", None);
            (host, probed_config(), None, None)
        } else {
            let redis = RedisServer::start();
            redis.set("ai_metric:minimax_1", "90");
            redis.set("ai_metric:qwen_1", "10");
            let (host, webdis) = reading(build, &redis);
            let host = host
                .cluster(MINMAX_CLUSTER, None)
                .cluster(QIANWEN_CLUSTER, None);
            // Envoy's default delivery hands no body to held headers: no retry then.
            let body_after_resume = matches!(scenario, Scenario::Chat | Scenario::Reconfigure);
            let config = balanced_config(build, !body_after_resume);
            (host, config, Some(redis), webdis)
        };
        let delivery = match scenario {
            Scenario::Chat | Scenario::Reconfigure => BodyDelivery::AfterHeadersResume,
            _ => BodyDelivery::WhileHeadersPaused,
        };
        let mut host = host.body_delivery(delivery).log_level(0);
        let config = config.to_string();
        host.start_vm(&config)
            .unwrap_or_else(|refused| panic!("configuration refused: {}", refused.message()));
        let mut gateway = Self {
            host,
            scenario,
            config,
            _redis: redis,
            _webdis: webdis,
        };
        if scenario == Scenario::ProbeTick {
            for _ in 0..3 {
                let request = gateway.chat();
                gateway.respond(request, "503");
            }
            assert_eq!(gateway.host.metric("ai_lb.provider.minmax.ejected"), 1);
        }
        gateway
    }

    pub fn vm(&mut self) -> &mut Vm {
        self.host.vm(0)
    }

    /// The scenario's exchange; its client's request, if it has one.
    pub fn exchange(&mut self) -> Option<u32> {
        match self.scenario {
            Scenario::Chat | Scenario::ChatBodyWhileHeld => {
                let request = self.chat();
                self.respond(request, "200");
                Some(request)
            }
            Scenario::Retry => Some(self.retry()),
            Scenario::StatusPage => Some(self.status_page()),
            Scenario::ProbeTick => {
                // A probe whose reply was lost blocks the next one for its timeout.
                for _ in 0..3 {
                    self.host.advance(Duration::from_millis(1_000));
                    if !self.vm().http_calls().is_empty() {
                        self.answer_calls(200, b"{\"data\":[]}");
                        break;
                    }
                }
                None
            }
            Scenario::Reconfigure => {
                let config = self.config.clone();
                // Refused or not, the VM goes on: a refused update keeps the configuration.
                let _ = self.vm().reconfigure(&config);
                None
            }
        }
    }

    /// The client's request went on: it reached the upstream whole, or the filter answered it;
    /// what the upstream (or the filter) answered reached the client. For the tick and the
    /// update, a chat request sent after them is.
    pub fn assert_answered(&mut self, request: Option<u32>) {
        let request = match request {
            Some(request) => request,
            None => {
                let request = self.chat();
                self.respond(request, "200");
                request
            }
        };
        let stream = self.vm().stream(request);
        match &stream.local_response {
            Some(response) => assert_ne!(
                response.details, "wasm_fail_stream",
                "request {request} failed with its VM"
            ),
            None => {
                stream.assert_forwarded_whole();
                let answered = [ANSWER, b"{}"].contains(&stream.downstream_body.as_slice());
                assert!(
                    answered,
                    "request {request}: the upstream's answer never reached the client: {:?}",
                    stream.actions
                );
            }
        }
    }

    /// What the scenario does with no status injected.
    pub fn assert_normal(&mut self, request: Option<u32>) {
        match self.scenario {
            Scenario::Chat | Scenario::ChatBodyWhileHeld | Scenario::Reconfigure => {
                let request = request.unwrap_or_else(|| self.chat());
                assert_routed(self.vm().stream(request), "qianwen", QIANWEN_MODEL);
            }
            Scenario::Retry => {
                let request = request.expect("a request");
                let response = self.vm().stream(request).local_response.clone();
                let response = response.expect("the retry's reply answers the client");
                assert_eq!(
                    (response.status, response.body.as_slice()),
                    (200, RETRY_ANSWER)
                );
            }
            Scenario::StatusPage => {
                let request = request.expect("a request");
                let response = self.vm().stream(request).local_response.clone();
                let response = response.expect("the status page");
                assert_eq!(response.status, 200);
                let page: Value = serde_json::from_slice(&response.body).expect("JSON");
                assert_eq!(page["providers"][1]["name"], "qianwen", "{page}");
            }
            Scenario::ProbeTick => {
                let request = self.chat();
                let stream = self.vm().stream(request);
                assert_routed(stream, "minmax", MINMAX_MODEL);
            }
        }
    }

    /// A chat request sent whole, store replies delivered; a request the filter resumes from
    /// its next tick gets it.
    fn chat(&mut self) -> u32 {
        let request = self.vm().send_chat(CHAT);
        self.deliver_store_replies();
        self.wait(request, |stream| {
            stream.upstream.complete || stream.local_response.is_some()
        });
        request
    }

    /// Lets the host's clock run, a second at a time and at most [`PATIENCE_S`], store replies
    /// delivered, until `done` holds of the request.
    fn wait(&mut self, request: u32, done: impl Fn(&Stream) -> bool) {
        self.host.advance(Duration::from_millis(2));
        self.deliver_store_replies();
        for _ in 0..PATIENCE_S {
            if done(self.vm().stream(request)) {
                return;
            }
            self.host.advance(Duration::from_secs(1));
            self.deliver_store_replies();
        }
    }

    /// The response reached the client: the upstream's, or the filter's own answer.
    fn answered(stream: &Stream) -> bool {
        !stream.downstream_body.is_empty() || stream.local_response.is_some()
    }

    /// The store's replies (Redis on Higress, Webdis on Envoy); calls to providers wait.
    fn deliver_store_replies(&mut self) {
        let vm = self.vm();
        vm.deliver_redis_replies();
        vm.forward_http_calls_to("webdis");
    }

    /// The upstream answers `status` (when the request reached it), then the stream ends.
    fn respond(&mut self, request: u32, status: &str) {
        let vm = self.vm();
        let stream = vm.stream(request);
        if stream.upstream.complete && stream.local_response.is_none() {
            vm.send_response_headers(request, &[(":status", status)], false);
            let body = if status == "200" { ANSWER } else { b"{}" };
            vm.send_response_body(request, body, true);
            self.wait(request, Self::answered);
        }
        self.vm().finish(request);
    }

    /// A chat request qianwen answers 503; the retry the filter sends minmax is answered 200.
    fn retry(&mut self) -> u32 {
        let request = self.chat();
        let vm = self.vm();
        if vm.stream(request).upstream.complete {
            vm.send_response_headers(request, &[(":status", "503")], false);
            if vm.stream(request).local_response.is_none() {
                vm.send_response_body(request, b"{}", true);
            }
            self.answer_calls(200, RETRY_ANSWER);
            self.wait(request, Self::answered);
        }
        self.vm().finish(request);
        request
    }

    fn status_page(&mut self) -> u32 {
        let vm = self.vm();
        let request = vm.request(
            &[
                (":method", "GET"),
                (":path", STATUS_PATH),
                (":authority", "gateway.local"),
            ],
            &[("source.address", "127.0.0.1:5555")],
        );
        vm.send_headers(request, true);
        self.respond(request, "200");
        request
    }

    /// Answers every call the filter dispatched (probes, retries) with `status` and `body`.
    fn answer_calls(&mut self, status: u16, body: &[u8]) {
        let vm = self.vm();
        let tokens: Vec<u32> = vm.http_calls().iter().map(|call| call.token).collect();
        for token in tokens {
            vm.answer_http_call(token, Some(HttpReply::new(status, body)));
        }
    }
}

/// Reached the upstream whole, routed to `provider` with its model in the body.
fn assert_routed(stream: &Stream, provider: &str, model: &str) {
    stream.assert_forwarded_whole();
    assert_eq!(
        stream.upstream_header("x-selected-provider"),
        Some(provider),
        "request {} was not routed as normal: {:?}",
        stream.id,
        stream.actions
    );
    assert_eq!(stream.upstream_json()["model"], model);
}
