//! The body rewritten as it passes (the choice made before any body came): chunk by chunk, in
//! the order Envoy delivers them, what reaches the upstream.

use super::fake_host::{FakeHost, FakeWorker};
use super::tests::{awaiting_store, expected_body, mget, oversized_body, BODY};
use super::*;

/// A request whose provider was chosen before any body came, and Envoy's body delivery after
/// it: the host's buffer is what the filter paused plus the new chunk; what a Continue lets go
/// reaches the upstream.
struct Released {
    flow: RequestFlow,
    host: FakeHost,
    worker: FakeWorker,
    upstream: Vec<u8>,
    /// The most bytes the host's buffer held at a body callback.
    most_buffered: usize,
}

impl Released {
    fn new() -> Self {
        let (mut flow, mut host, mut worker) = awaiting_store(BODY);
        host.body.clear();
        let loads = Ok(mget(&[Some("10"), Some("90"), None]));
        flow.on_store_reply(&mut host, loads, &mut worker);
        assert_eq!(host.resumed, 1, "headers released");
        assert_eq!(
            host.header("content-length"),
            None,
            "re-framed by the gateway"
        );
        Self {
            flow,
            host,
            worker,
            upstream: Vec::new(),
            most_buffered: 0,
        }
    }

    fn chunk(&mut self, bytes: &[u8], end: bool) -> Verdict {
        self.host.body.extend_from_slice(bytes);
        let size = self.host.body.len();
        self.most_buffered = self.most_buffered.max(size);
        let verdict = self
            .flow
            .on_request_body(&mut self.host, size, end, &mut self.worker);
        if verdict == Verdict::Continue {
            self.upstream.append(&mut self.host.body);
        }
        verdict
    }

    /// Trailers end the body; a request resumed from the next tick lets its body go then.
    fn trailers(&mut self) -> Verdict {
        let verdict = self
            .flow
            .on_request_trailers(&mut self.host, &mut self.worker);
        if verdict == Verdict::Continue || self.host.resumed_later > 0 {
            self.upstream.append(&mut self.host.body);
        }
        verdict
    }

    /// Sends `body` cut at `cuts`, the last chunk with end of stream.
    fn send(mut self, body: &[u8], cuts: &[usize]) -> Self {
        let mut from = 0;
        for &cut in cuts {
            self.chunk(&body[from..cut], false);
            from = cut;
        }
        assert_eq!(self.chunk(&body[from..], true), Verdict::Continue);
        self
    }
}

#[test]
fn chunks_go_on_one_by_one_rewritten() {
    // Cut after the model member and inside the messages: no chunk ends inside the window.
    let mut request = Released::new();
    let verdicts = [
        request.chunk(&BODY[..16], false),
        request.chunk(&BODY[16..40], false),
        request.chunk(&BODY[40..], true),
    ];
    assert_eq!(verdicts, [Verdict::Continue; 3]);
    assert_eq!(request.upstream, expected_body("MiniMax-M2.1"));
    assert_eq!(request.host.counted("ai_lb.rewrite.done"), 1);
    assert_eq!(
        request.host.body_bytes_read.get(),
        BODY.len(),
        "each byte read once"
    );
    assert!(matches!(request.flow.phase, Phase::Released { .. }));
}

#[test]
fn every_split_reaches_the_upstream_rewritten() {
    let expected = expected_body("MiniMax-M2.1");
    for cut in 0..=BODY.len() {
        assert_eq!(
            Released::new().send(BODY, &[cut]).upstream,
            expected,
            "cut at {cut}"
        );
    }
    for (first, second) in [(3, 12), (9, 10), (10, 14), (14, 15), (1, 30)] {
        let upstream = Released::new().send(BODY, &[first, second]).upstream;
        assert_eq!(upstream, expected, "cut at {first}, {second}");
    }
    let every_byte: Vec<usize> = (1..BODY.len()).collect();
    let request = Released::new().send(BODY, &every_byte);
    assert_eq!(request.upstream, expected);
    assert_eq!(request.host.counted("ai_lb.rewrite.done"), 1);
}

#[test]
fn a_chunk_ending_inside_the_model_value_is_held_until_it_ends() {
    let mut request = Released::new();
    assert_eq!(request.chunk(&BODY[..12], false), Verdict::Pause);
    assert!(request.upstream.is_empty());
    assert_eq!(
        request.host.body, br#"{"model":"#,
        "the window is the filter's"
    );
    assert_eq!(request.chunk(&BODY[12..16], false), Verdict::Continue);
    assert_eq!(request.upstream, br#"{"model":"MiniMax-M2.1","#);
    // Inside the next key: held too, output first.
    assert_eq!(request.chunk(&BODY[16..20], false), Verdict::Pause);
    assert_eq!(request.chunk(&BODY[20..], true), Verdict::Continue);
    assert_eq!(request.upstream, expected_body("MiniMax-M2.1"));
}

#[test]
fn a_large_body_passes_in_chunks_and_nothing_grows_with_it() {
    let content = "lorem ipsum \\\"quoted\\\" 你好 ".repeat(200_000);
    let body = format!(
        r#"{{"messages":[{{"role":"user","content":"{content}"}}],"model":"auto","stream":false}}"#
    );
    let body = body.as_bytes();
    assert!(body.len() > 5 << 20);
    let chunk = 64 << 10;
    let cuts: Vec<usize> = (chunk..body.len()).step_by(chunk).collect();
    let request = Released::new().send(body, &cuts);
    let expected = crate::rewrite::rewrite_model(body, "MiniMax-M2.1").unwrap();
    assert!(request.upstream == expected, "rewritten byte for byte");
    assert!(
        request.most_buffered <= chunk + 64,
        "host held {}",
        request.most_buffered
    );
    assert_eq!(request.host.body_bytes_read.get(), body.len());
    assert_eq!(request.host.counted("ai_lb.rewrite.done"), 1);
}

#[test]
fn max_body_bytes_does_not_bound_a_body_that_is_not_held() {
    let big = oversized_body();
    let request = Released::new().send(big.as_bytes(), &[40, 80]);
    assert_eq!(
        request.upstream,
        big.replacen("auto", "MiniMax-M2.1", 1).as_bytes()
    );
}

#[test]
fn a_body_that_is_no_json_object_goes_on_untouched() {
    let multipart = b"--boundary\r\ncontent-disposition: form-data; name=model\r\n\r\nauto";
    let mut request = Released::new();
    assert_eq!(request.chunk(&multipart[..12], false), Verdict::Continue);
    let request = request.send(&multipart[12..], &[]);
    assert_eq!(request.upstream, multipart);
    assert_eq!(request.host.counted("ai_lb.rewrite.skipped"), 1);
    assert_eq!(request.host.counted("ai_lb.rewrite.done"), 0);
}

#[test]
fn a_body_malformed_after_its_model_keeps_the_rewritten_prefix() {
    let body = br#"{"model":"auto","a":tru}"#;
    let request = Released::new().send(body, &[5, 17]);
    assert_eq!(request.upstream, br#"{"model":"MiniMax-M2.1","a":tru}"#);
    assert_eq!(request.host.counted("ai_lb.rewrite.done"), 1);
}

#[test]
fn trailers_after_a_chunk_that_went_on_continue() {
    let mut request = Released::new();
    assert_eq!(request.chunk(BODY, false), Verdict::Continue);
    assert_eq!(request.trailers(), Verdict::Continue);
    assert_eq!(request.upstream, expected_body("MiniMax-M2.1"));
    assert_eq!(request.host.resumed_later, 0);
    assert_eq!(request.host.counted("ai_lb.rewrite.done"), 1);
}

#[test]
fn trailers_after_a_held_chunk_flush_the_window_from_the_next_tick() {
    // Cut short inside the model value, or inside a later key, then trailers: what is held
    // goes untouched after what already went (a Continue now would drop the held chunk, a
    // resume now would loop).
    for (body, cut, upstream) in [
        (&br#"{"model":"au"#[..], 3, &br#"{"model":"au"#[..]),
        (
            br#"{"model":"auto","messa"#,
            12,
            br#"{"model":"MiniMax-M2.1","messa"#,
        ),
    ] {
        let mut request = Released::new();
        request.chunk(&body[..cut], false);
        assert_eq!(request.chunk(&body[cut..], false), Verdict::Pause);
        assert_eq!(request.trailers(), Verdict::Pause);
        assert_eq!(request.host.resumed_later, 1);
        assert_eq!(request.upstream, upstream);
        assert!(matches!(request.flow.phase, Phase::Released { .. }));
    }
}

#[test]
fn a_response_before_the_body_ends_is_judged() {
    let mut request = Released::new();
    request.chunk(&BODY[..20], false);
    request
        .host
        .response_headers
        .insert(":status".into(), "200".into());
    let verdict = request
        .flow
        .on_response_headers(&mut request.host, false, &mut request.worker);
    assert_eq!(verdict, Verdict::Continue);
    let request = request.send(&BODY[20..], &[]);
    assert_eq!(request.upstream, expected_body("MiniMax-M2.1"));
}
