//! What a request costs in memory: its body read from the host once, whatever needs it.

use super::fake_host::{FakeHost, FakeWorker};
use super::tests::{flow, mget, post, BODY, CONFIG};
use super::*;

/// A request whose whole body came before its provider was chosen.
struct Done {
    flow: RequestFlow,
    host: FakeHost,
}

fn whole_body_before_the_choice(config: &str) -> Done {
    let mut flow = flow(config);
    let mut host = post(BODY);
    let worker = &mut FakeWorker::new(1);
    flow.on_request_headers(&mut host, false, worker);
    flow.on_request_body(&mut host, BODY.len(), true, worker);
    if !host.sent.is_empty() {
        flow.on_store_reply(&mut host, Ok(mget(&[Some("1"), Some("9"), None])), worker);
    }
    Done { flow, host }
}

#[test]
fn the_body_is_read_from_the_host_once() {
    let pools = "models:\n  auto: {backends: [{provider: minmax}, {provider: qianwen}]}\n";
    let retry = "retry: {max_retries: 1}\n";
    let with_cluster = CONFIG.replace("key: minimax_1,", "key: minimax_1, cluster: minmax,");
    for (what, config) in [
        ("body after the choice", CONFIG.to_string()),
        ("pools", format!("{CONFIG}{pools}")),
        ("retry", format!("{with_cluster}{retry}")),
    ] {
        let done = whole_body_before_the_choice(&config);
        assert_eq!(done.host.counted("ai_lb.rewrite.done"), 1, "{what}");
        assert_eq!(done.host.body_bytes_read.get(), BODY.len(), "{what}");
    }
}

#[test]
fn the_retry_copy_goes_once_no_retry_can_happen() {
    let config = CONFIG.replace("key: minimax_1,", "key: minimax_1, cluster: minmax,");
    let mut done = whole_body_before_the_choice(&format!("{config}retry: {{max_retries: 1}}\n"));
    assert!(
        done.flow.holds_a_retry_copy(),
        "kept while a retry may come"
    );
    done.host
        .response_headers
        .insert(":status".into(), "200".into());
    done.flow
        .on_response_headers(&mut done.host, false, &mut FakeWorker::new(1));
    assert!(!done.flow.holds_a_retry_copy(), "a success frees it");
}

impl RequestFlow {
    /// Whether the flow keeps the client's request for a retry.
    fn holds_a_retry_copy(&self) -> bool {
        matches!(
            self.phase,
            Phase::Released { retry: Some(_), .. } | Phase::Retrying { .. }
        )
    }
}
