//! What a request costs in memory: its body read from the host once, whatever needs it.

use super::fake_host::FakeHost;
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
    let rng = &mut Rng::new(1);
    flow.on_request_headers(&mut host, false, rng);
    flow.on_request_body(&mut host, BODY.len(), true, rng);
    if !host.sent.is_empty() {
        flow.on_store_reply(&mut host, Ok(mget(&[Some("1"), Some("9"), None])), rng);
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
    assert!(done.flow.retry.is_some(), "kept while a retry may come");
    done.host
        .response_headers
        .insert(":status".into(), "200".into());
    done.flow
        .on_response_headers(&mut done.host, &mut Rng::new(1));
    assert!(done.flow.retry.is_none(), "a success frees it");
}
