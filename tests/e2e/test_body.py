"""The body reaches the provider byte for byte, except the top-level `model` value."""
import contextlib
import hashlib

import pytest

from stack import (CHAT_PATH, KEYS, assert_answered_consistently, forget_received, gateway, http1,
                   only_upstream_request, post, running_stack)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def assert_received(answer, expected_bytes):
    received = answer.received
    assert received["length"] == len(expected_bytes)
    assert received["sha256"] == sha256(expected_bytes)
    if not received["chunked"]:
        assert received["content_length"] == received["length"]


def test_only_the_top_level_model_value_changes(stack, loads):
    loads(minmax=90, qianwen=10)
    # Odd spacing, `model` not first, a nested "model" key and "model" inside a string, UTF-8.
    top = '"model" :  "auto"'
    body = ('{ "messages" : [ {"role":"user", "model":"inner",\n'
            '   "content":"say \\"model\\": \\"auto\\" 你好 🚀"} ],\n'
            '  ' + top + ' , "stream":false,  "meta":{"model":"nested","n":[1, 2.50]} }')
    assert body.count(top) == 1
    expected = body.replace(top, '"model" :  "qwen3-max-preview"', 1).encode()
    answer = post(stack, body.encode())
    assert_answered_consistently(answer, stack)
    assert answer.provider == "qianwen"
    assert_received(answer, expected)


def test_malformed_json_is_forwarded_untouched(stack, loads):
    loads(minmax=90, qianwen=10)
    # Malformed before its model: untouched, held whole or rewritten as it passes.
    body = b'{"messages":[tru],"model":"auto"}'
    answer = post(stack, body)
    assert answer.status == 200, answer.raw[:300]
    assert answer.json["model"] is None  # the mock could not read a model either
    assert answer.provider == "qianwen"  # still routed by load
    assert answer.received["headers"]["x-selected-provider"] == "qianwen"
    assert_received(answer, body)


def test_json_malformed_after_its_model_keeps_the_rewrite_when_it_streams(stack, loads):
    """Rewritten as it passes (the choice made before the body came: always under Envoy's
    default delivery), the model went on before the body turned out malformed: it stays
    rewritten, the rest goes untouched. Held whole, the body goes untouched."""
    loads(minmax=90, qianwen=10)
    body = b'{"model":"auto",'
    streamed = b'{"model":"qwen3-max-preview",'
    answer = post(stack, body)
    assert answer.status == 200, answer.raw[:300]
    assert answer.provider == "qianwen"
    if stack.body_while_headers_paused:
        assert answer.received["sha256"] in (sha256(body), sha256(streamed))
    else:
        assert_received(answer, streamed)


def test_chunked_body_is_rewritten(stack, loads):
    loads(minmax=10, qianwen=90)
    body = b'{"model":"auto","messages":[{"role":"user","content":"chunked"}]}'
    answer = post(stack, body, headers=[("Transfer-Encoding", "chunked")])
    assert_answered_consistently(answer, stack)
    assert answer.provider == "minmax"
    assert_received(answer, body.replace(b'"auto"', b'"MiniMax-M2.1"', 1))


def test_8_mib_body_is_rewritten(stack, loads):
    loads(minmax=10, qianwen=90)
    content = "x" * (8 * 1024 * 1024)
    body = ('{"model":"auto","messages":[{"role":"user","content":"' + content + '"}]}').encode()
    expected = body.replace(b'"model":"auto"', b'"model":"MiniMax-M2.1"', 1)
    answer = post(stack, body)
    assert_answered_consistently(answer, stack)
    assert answer.provider == "minmax"
    assert_received(answer, expected)

@contextlib.contextmanager
def minmax_under_default_limits(body_while_headers_paused):
    """A stack of its own with Envoy's default 1 MiB buffer limits, its loads sending every
    request to minmax, the mocks' records empty."""
    with running_stack(None, body_while_headers_paused=body_while_headers_paused,
                       default_buffer_limits=True) as running:
        assert running.redis_cli("SET", KEYS["minmax"], "10") == "OK"
        assert running.redis_cli("SET", KEYS["qianwen"], "90") == "OK"
        forget_received(running)
        yield running


def assert_streamed_to_minmax(running, answer, expected):
    """minmax got `expected` exactly, re-framed (chunked), and the client its 200."""
    assert answer.status == 200, answer.raw[:300]
    received = only_upstream_request(running)
    assert received.mock == "minmax"
    assert len(received.body) == len(expected)
    assert sha256(received.body) == sha256(expected), "rewritten byte for byte"
    assert received.chunked, "content-length dropped: the gateway re-frames the body"


def test_5_mib_body_passes_an_envoy_with_default_buffer_limits():
    """Envoy's default buffer limit (1 MiB; the shipped envoy.yaml raises it to 64 MiB) and its
    default body delivery: the provider is chosen before any body comes, so the filter rewrites
    the body as it passes instead of holding it whole (which got 413 past 1 MiB). A `model`
    after 5 MiB of messages still reaches the provider rewritten, every other byte as sent."""
    rendered = gateway.render_envoy_config(
        {name: 1 for name in ("admin", "listen", "webdis", "minmax", "qianwen")}, "x.wasm",
        default_buffer_limits=True)
    assert "per_connection_buffer_limit_bytes" not in rendered
    content = 'say \\"model\\": \\"auto\\" 你好 ' * (5 * 1024 * 1024 // 30)
    head = '{"messages":[{"role":"user","content":"' + content + '"}],'
    body = (head + '"model":"auto","stream":false}').encode()
    expected = (head + '"model":"MiniMax-M2.1","stream":false}').encode()
    assert len(body) > 5 * 1024 * 1024
    with minmax_under_default_limits(body_while_headers_paused=False) as running:
        answer = post(running, body, timeout_s=60)
        assert_streamed_to_minmax(running, answer, expected)


@pytest.mark.parametrize("model_at", ["start", "end"])
def test_a_body_begun_before_the_store_answered_streams_on_under_default_buffer_limits(model_at):
    """The recommended delivery (the body reaches the held headers) with per-request loads and
    Envoy's default 1 MiB buffer limit: 64 KiB of the body arrive while Webdis is asked, the
    rest half a second later. What the gateway held is rewritten in place (when the model is in
    it) and the headers go; the rest streams through the filter. Holding the body to its end
    got 413 past 1 MiB."""
    content = 'say \\"model\\": \\"auto\\" 你好 ' * (5 * 1024 * 1024 // 30)
    messages = '"messages":[{"role":"user","content":"' + content + '"}]'
    if model_at == "start":
        body = ('{"model":"auto",' + messages + '}').encode()
        expected = ('{"model":"MiniMax-M2.1",' + messages + '}').encode()
    else:
        body = ('{' + messages + ',"model":"auto"}').encode()
        expected = ('{' + messages + ',"model":"MiniMax-M2.1"}').encode()
    with minmax_under_default_limits(body_while_headers_paused=True) as running:
        answer = http1(running, "POST", CHAT_PATH, body=body, timeout_s=60,
                       headers=[("Host", "gateway.test"), ("Content-Type", "application/json")],
                       pause_after=64 * 1024, pause_s=0.5)
        assert_streamed_to_minmax(running, answer, expected)
