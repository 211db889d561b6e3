"""The seed's verification scenarios A and B, and who may choose the provider."""
import json
import socket

import pytest

from stack import (SEED_BODY, MODEL_OF, assert_answered_consistently, counter, curl, post,
                   seed_request, status_page)

REPEATS = 4  # least-load must be deterministic when loads differ


@pytest.mark.parametrize("minmax_load, qianwen_load, expected", [
    pytest.param(90, 10, "qianwen", id="scenario-A-qianwen"),
    pytest.param(10, 90, "minmax", id="scenario-B-minmax"),
])
def test_least_loaded_provider_answers_with_its_model(
        stack, loads, minmax_load, qianwen_load, expected):
    loads(minmax=minmax_load, qianwen=qianwen_load)
    before = counter(stack, "selected." + expected)
    for _ in range(REPEATS):
        answer = seed_request(stack)
        assert_answered_consistently(answer, stack)
        assert answer.provider == expected
        # The seed's check, on the raw answer: `"model":"qwen3-max-preview"` / `"MiniMax-M2.1"`.
        assert f'"model":"{MODEL_OF[expected]}"'.encode() in answer.raw
        assert answer.received["headers"] == {
            "x-selected-provider": expected, "x-rewrite-target-model": MODEL_OF[expected]}
        assert answer.received["path"] == "/v1/chat/completions"  # prefix /masgod/ rewritten
    assert counter(stack, "selected." + expected) == before + REPEATS


def test_client_sent_control_headers_do_not_choose_the_provider(stack, loads):
    loads(minmax=90, qianwen=10)
    for _ in range(REPEATS):
        # Each sent twice: the filter's value must be the only one left.
        answer = post(stack, b'{"model":"auto","messages":[]}', headers=[
            ("x-selected-provider", "minmax"), ("x-rewrite-target-model", "evil"),
            ("x-selected-provider", "minmax"), ("x-rewrite-target-model", "evil2")])
        assert_answered_consistently(answer, stack)
        assert answer.provider == "qianwen"
        assert answer.received["headers"] == {
            "x-selected-provider": "qianwen", "x-rewrite-target-model": "qwen3-max-preview"}
        assert answer.received["header_counts"] == {
            "x-selected-provider": 1, "x-rewrite-target-model": 1}


def test_get_without_body_passes_through_the_general_route(stack, loads):
    loads(minmax=90, qianwen=10)
    before = counter(stack, "requests.passthrough")
    for attempt in range(8):
        # Half of them try to pick a provider with the header: the filter must drop it.
        extra = ["-H", "x-selected-provider: minmax"] if attempt % 2 else []
        answer = curl(stack, [stack.url + "/masgod/v1/models", *extra])
        assert answer.status == 200, answer.raw[:300]
        assert answer.provider in MODEL_OF
        assert answer.received["length"] == 0
        assert answer.received["headers"] == {
            "x-selected-provider": None, "x-rewrite-target-model": None}
    assert counter(stack, "requests.passthrough") == before + 8


def raw_request(stack, head, body=b""):
    """Sends exactly these bytes (head lines without the final blank line) on a new connection;
    returns (status, body). For what curl will not send, such as header bytes beyond UTF-8."""
    request = head + b"\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    with socket.create_connection(("127.0.0.1", stack.ports["listen"]), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head_bytes, _, answer_body = answer.partition(b"\r\n\r\n")
    return int(head_bytes.split(b" ", 2)[1]), answer_body


def test_a_control_header_that_is_not_utf8_cannot_crash_the_filter(stack, loads):
    # obs-text (bytes 0x80-0xFF) is legal in an HTTP/1.1 header value. The SDK's header read
    # panics on it, which would take the worker's VM down and fail every later request.
    loads(minmax=90, qianwen=10)
    evil = b"\r\nx-selected-provider: \xff\xfeminmax\r\nx-rewrite-target-model: \xe9"
    status, body = raw_request(stack, b"GET /masgod/v1/models HTTP/1.1\r\nHost: gw" + evil)
    assert status == 200, body[:300]
    assert json.loads(body)["received"]["headers"] == {
        "x-selected-provider": None, "x-rewrite-target-model": None}
    status, body = raw_request(
        stack, b"POST /masgod/v1/chat/completions HTTP/1.1\r\nHost: gw\r\n"
               b"Content-Type: application/json" + evil, SEED_BODY.encode())
    assert status == 200, body[:300]
    assert json.loads(body)["received"]["headers"] == {
        "x-selected-provider": "qianwen", "x-rewrite-target-model": "qwen3-max-preview"}
    answer = seed_request(stack)  # the worker is still there
    assert_answered_consistently(answer, stack)
    assert answer.provider == "qianwen"


def test_the_shipped_gateway_shows_provider_health_to_loopback(stack):
    """`make run`'s Envoy config serves the status page the checklist points to."""
    page = status_page(stack, "/masgod/ai-lb/status")
    assert set(page) == {"minmax", "qianwen"}
    for entry in page.values():
        assert entry["health"] == "healthy"
        assert entry["tokens"] == []
