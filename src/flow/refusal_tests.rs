//! A host that refuses a call the request depends on: the request is still answered, never
//! left held until its stream's timeout.

use super::fake_host::{FakeHost, FakeWorker};
use super::tests::{flow, mget, post, BODY, CONFIG};
use super::*;

#[test]
fn a_request_the_host_will_not_resume_is_answered_503() {
    let mut flow = flow(CONFIG);
    let mut host = post(BODY);
    host.refuse.push("resume_request");
    let worker = &mut FakeWorker::new(1);
    flow.on_request_headers(&mut host, false, worker);
    flow.on_store_reply(&mut host, Ok(mget(&[Some("1"), Some("9"), None])), worker);
    assert_eq!(host.answered.len(), 1);
    assert_eq!(host.answered[0].0, 503);
    assert_eq!(host.answered[0].1, NOT_RESUMED);
}

#[test]
fn a_body_whose_length_cannot_be_dropped_goes_on_untouched() {
    let mut flow = flow(CONFIG);
    let mut host = post(BODY);
    host.refuse.push("remove_request_header");
    let worker = &mut FakeWorker::new(1);
    flow.on_request_headers(&mut host, false, worker);
    flow.on_store_reply(&mut host, Ok(mget(&[Some("1"), Some("9"), None])), worker);
    assert_eq!(host.resumed, 1);
    assert_eq!(
        flow.on_request_body(&mut host, BODY.len(), true, worker),
        Verdict::Continue
    );
    assert_eq!(
        host.body, BODY,
        "a rewrite would not match its content-length"
    );
    assert_eq!(host.counted("ai_lb.rewrite.skipped"), 1);
}

#[test]
fn a_status_page_the_host_will_not_send_lets_the_request_go_on() {
    let config = "providers: [{name: a}]\nload_source: none\nstrategy: random\n\
                  status_endpoint: {path: /ai-lb/status, allowed_sources: [127.0.0.1]}\n";
    let mut flow = flow(config);
    let mut host = FakeHost::request(&[(":method", "GET"), (":path", "/ai-lb/status")]);
    host.properties
        .insert("source.address".into(), "127.0.0.1:1".into());
    host.refuse.push("send_local_response");
    let verdict = flow.on_request_headers(&mut host, true, &mut FakeWorker::new(1));
    assert_eq!(verdict, Verdict::Continue);
    assert_eq!(host.counted("ai_lb.status.served"), 0);
}

#[test]
fn a_retry_reply_the_host_will_not_send_lets_the_first_answer_go_on() {
    let config = "providers:\n\
                  - {name: a, model: ma, cluster: a}\n\
                  - {name: b, model: mb, cluster: b}\n\
                  load_source: none\nstrategy: failover\nretry: {max_retries: 1}\n";
    let mut flow = flow(config);
    let mut host = post(BODY);
    let worker = &mut FakeWorker::new(1);
    flow.on_request_headers(&mut host, false, worker);
    flow.on_request_body(&mut host, BODY.len(), true, worker);
    host.response_headers.insert(":status".into(), "503".into());
    assert_eq!(
        flow.on_response_headers(&mut host, false, worker),
        Verdict::Pause
    );
    host.refuse.push("send_response");
    let reply = crate::call::CallReply {
        status: Some(200),
        headers: vec![(":status".into(), "200".into())],
        body: b"{}".to_vec(),
    };
    flow.on_call_reply(&mut host, reply, worker);
    assert_eq!(host.response_resumed, 1, "the held 503 goes on");
    assert_eq!(host.counted("ai_lb.retry.exhausted"), 1);
}
