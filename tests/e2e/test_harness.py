"""The stack's own start: every service gets a port of its own, and a service whose port another
process holds is never taken for started (CI once ran a whole module with both providers' clusters
pointing at one mock, which then answered for both). And the mock provider itself, on its own:
OpenAI's formats (SSE streams, `[DONE]`, usage, `/v1/models`), its delays and its settings."""
import json
import socket
import time
import urllib.error
import urllib.request

import pytest

import mock_provider
from stack import gateway


def test_ports_picked_together_are_distinct_and_avoid_the_taken_ones():
    names = [f"service{index}" for index in range(50)]
    taken = set(gateway.free_ports(["a", "b", "c"]).values())
    ports = gateway.free_ports(names, taken=taken)
    assert list(ports) == names
    assert len(set(ports.values())) == len(names)
    assert not taken & set(ports.values())


def test_a_mock_whose_port_is_held_by_another_is_not_taken_for_started():
    squatter = mock_provider.start_in_thread("minmax")
    stack = gateway.Stack()
    stack.open_dir()
    try:
        stack.ports = {"qianwen": squatter.server_address[1]}
        with pytest.raises(gateway.StackError, match="qianwen exited"):
            stack._start_mock("qianwen")
    finally:
        squatter.shutdown()
        stack.stop()


# ---- the mock provider itself (scripts/mock_provider.py): OpenAI's formats, usage, delays ----

@pytest.fixture
def mock():
    server = mock_provider.start_in_thread("minmax")
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def call(url, method="GET", value=None, headers=()):
    """(status, headers {lowercase name: value}, body bytes) of one request to a mock."""
    data = json.dumps(value).encode() if value is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def sse_data(body):
    """The `data:` of each server-sent event, in order (JSON decoded, `[DONE]` as is)."""
    events = [block for block in body.decode().split("\n\n") if block]
    assert all(block.startswith("data: ") and "\n" not in block for block in events), body
    return [block[6:] if block == "data: [DONE]" else json.loads(block[6:]) for block in events]


CHAT = {"model": "m1", "messages": [
    {"role": "system", "content": "be  brief"},
    {"role": "user", "content": [{"type": "text", "text": "one two three"},
                                 {"type": "image_url", "image_url": {"url": "x y z"}}]}]}


def test_a_chat_answer_carries_usage_by_the_documented_rule(mock):
    status, _, body = call(mock + "/v1/chat/completions", "POST", CHAT)
    assert status == 200
    answer = json.loads(body)
    # "be  brief" is 2 words, the text part 3; the image part has no text.
    assert answer["usage"] == {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}
    assert answer["choices"][0]["message"]["content"] == \
        "minmax-1 minmax-2 minmax-3 minmax-4 minmax-5"
    assert (answer["provider"], answer["model"], answer["object"]) == (
        "minmax", "m1", "chat.completion")
    call(mock + "/_mock/state", "POST", {"completion_tokens": 2})
    _, _, body = call(mock + "/v1/chat/completions", "POST", {"model": "m1"})
    assert json.loads(body)["usage"] == {"prompt_tokens": 1, "completion_tokens": 2,
                                         "total_tokens": 3}
    state = json.loads(call(mock + "/_mock/state")[2])
    assert state["usage"] == {"prompt_tokens": 6, "completion_tokens": 7, "total_tokens": 13,
                              "answers": 2}
    assert state["streams"] == 0


def test_a_stream_is_openais_sse_ending_with_usage_and_done(mock):
    request = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    status, headers, body = call(mock + "/v1/chat/completions", "POST", request)
    assert status == 200
    assert headers["content-type"] == "text/event-stream; charset=utf-8"
    assert headers["transfer-encoding"] == "chunked"
    events = sse_data(body)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert {chunk["model"] for chunk in chunks} == {"m1"}
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[0]["received"]["path"] == "/v1/chat/completions"
    assert [chunk["choices"][0]["delta"]["content"] for chunk in chunks[1:6]] == [
        "minmax-1", " minmax-2", " minmax-3", " minmax-4", " minmax-5"]
    assert chunks[6]["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    assert chunks[7]["choices"] == []
    assert chunks[7]["usage"] == {"prompt_tokens": 5, "completion_tokens": 5,
                                  "total_tokens": 10}
    assert len(chunks) == 8
    # Without include_usage: no usage chunk, and nothing counted as reported.
    _, _, body = call(mock + "/v1/chat/completions", "POST", {**CHAT, "stream": True})
    events = sse_data(body)
    assert events[-1] == "[DONE]" and events[-2]["choices"][0]["finish_reason"] == "stop"
    assert not any("usage" in event for event in events[:-1])
    state = json.loads(call(mock + "/_mock/state")[2])
    assert state["streams"] == 2
    assert state["usage"] == {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10,
                              "answers": 1}


def test_a_stream_is_written_event_by_event_after_the_first_token_delay(mock):
    call(mock + "/_mock/state", "POST", {"first_token_delay_ms": 300, "chunk_delay_ms": 100})
    body = json.dumps({"model": "m", "stream": True}).encode()
    host, port = mock[len("http://"):].split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: mock\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
        reader = conn.makefile("rb")
        while reader.readline() != b"\r\n":  # the head
            pass
        head_s = time.monotonic() - started
        arrivals = []  # (seconds, event) of each chunk, read as it comes
        while (size := int(reader.readline(), 16)) != 0:
            arrivals.append((time.monotonic() - started, reader.read(size)))
            reader.readline()
    assert head_s < 0.25, f"the head took {head_s:.3f} s"
    assert arrivals[0][0] >= 0.3  # the role chunk waits for the first token
    content = [seconds for seconds, event in arrivals if b'"content":"' in event
               and b'"content":""' not in event]
    assert len(content) == 5
    assert content[-1] - content[0] >= 0.35, content  # 4 gaps of 100 ms, as they were sent
    assert arrivals[-1][1] == b"data: [DONE]\n\n"


def test_streams_carry_rate_limit_headers_and_use_the_budget(mock):
    call(mock + "/_mock/state", "POST", {"rate_limit_requests": 2})
    remaining = []
    for _ in range(2):
        status, headers, body = call(mock + "/v1/chat/completions", "POST",
                                     {"model": "m", "stream": True})
        assert status == 200 and sse_data(body)[-1] == "[DONE]"
        remaining.append(headers["x-ratelimit-remaining-requests"])
    assert remaining == ["1", "0"]
    status, headers, body = call(mock + "/v1/chat/completions", "POST",
                                 {"model": "m", "stream": True})
    assert status == 429
    assert json.loads(body)["error"]["code"] == "rate_limit_exceeded"  # JSON, as OpenAI does


def test_v1_models_lists_the_model_in_openais_format_and_fails_like_any_answer(mock):
    status, _, body = call(mock + "/v1/models?limit=5")
    assert status == 200
    listing = json.loads(body)
    assert listing["object"] == "list"
    [model] = listing["data"]
    assert (model["id"], model["object"], model["owned_by"]) == ("minmax", "model", "minmax")
    assert isinstance(model["created"], int)
    assert listing["provider"] == "minmax" and listing["received"]["path"] == "/v1/models?limit=5"
    call(mock + "/_mock/state", "POST", {"model_name": "served-model"})
    assert json.loads(call(mock + "/v1/models")[2])["data"][0]["id"] == "served-model"
    call(mock + "/_mock/state", "POST", {"refused_tokens": ["sk-bad"]})
    assert call(mock + "/v1/models", headers=[("Authorization", "Bearer sk-bad")])[0] == 401
    call(mock + "/_mock/state", "POST", {"answer_status": 503})
    status, _, body = call(mock + "/v1/models")
    assert status == 503 and "failing on purpose" in json.loads(body)["error"]["message"]
    assert json.loads(call(mock + "/_mock/state")[2])["usage"]["answers"] == 0  # no usage


@pytest.mark.parametrize("field, value", [
    ("first_token_delay_ms", -1), ("first_token_delay_ms", "10"), ("first_token_delay_ms", 60001),
    ("chunk_delay_ms", True), ("chunk_delay_ms", 60001), ("completion_tokens", 0),
    ("completion_tokens", 1.5), ("completion_tokens", True), ("completion_tokens", 10001),
])
def test_a_bad_new_setting_is_refused_and_changes_nothing(mock, field, value):
    before = json.loads(call(mock + "/_mock/state")[2])
    status, _, body = call(mock + "/_mock/state", "POST", {"chunk_delay_ms": 5, field: value})
    assert status == 400, body
    assert field in json.loads(body)["error"]
    assert json.loads(call(mock + "/_mock/state")[2]) == before


def test_the_new_settings_are_taken_and_reset_while_the_counts_stay(mock):
    status, _, body = call(mock + "/_mock/state", "POST", {
        "first_token_delay_ms": 1.5, "chunk_delay_ms": 60000, "completion_tokens": 10000})
    assert status == 200
    state = json.loads(body)
    assert (state["first_token_delay_ms"], state["chunk_delay_ms"],
            state["completion_tokens"]) == (1.5, 60000, 10000)
    call(mock + "/_mock/state", "POST", {"chunk_delay_ms": 0, "completion_tokens": 3})
    call(mock + "/v1/chat/completions", "POST", {"model": "m", "stream": True,
                                                 "stream_options": {"include_usage": True}})
    _, _, body = call(mock + "/_mock/reset", "POST", {})
    state = json.loads(body)
    assert (state["first_token_delay_ms"], state["chunk_delay_ms"],
            state["completion_tokens"]) == (0, 0, 5)
    assert state["streams"] == 1
    assert state["usage"] == {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4,
                              "answers": 1}
