"""Hostile but legal traffic in real Envoy (issue 14): what reaches the upstream, byte for byte.

1. HTTP/2 request trailers (h2c with prior knowledge, `h2_client.py`) cannot make the filter
   let the client's own `x-selected-provider` choose the provider, nor lose the body; the
   shared stack (conftest.py) runs each test in both body-delivery modes and its provider
   clusters pass request trailers on, so the upstream shows them too.
2. A request to a service that is no provider (`POST /internal/jobs` on the same listener) is
   not balanced: its body arrives untouched, no pooled API key is added, and the client's
   control headers are gone.
3. A provider with pooled keys receives only its pooled key, never a credential the client
   sent (`authorization`, `api-key`, `x-api-key`).
4. A forged `X-Forwarded-For` does not open the status page (Envoy's default
   `use_remote_address: false` makes `source.address` follow that header); with
   `trust_forwarded_for` behind `use_remote_address: true` and one trusted hop, the address
   the trusted hop reports decides.

Every upstream request is read back from the mock that received it (scripts/mock_provider.py
`GET /_mock/received`): method, path, every header line, the body's bytes, the trailers.
"""
import json

import pytest

from h2_client import h2_request
from stack import (CHAT_PATH, MODEL_OF, counter, forget_received, http1, only_upstream_request,
                   running_stack, upstream_requests)

BODY_MODES = ["body-while-paused", "envoy-default"]
# Spacing, a nested "model" and UTF-8: only the top-level value may change.
CHAT_BODY = ('{"model": "auto", "messages": [{"role": "user", "model": "inner", '
             '"content": "trailers \u00e9 \u4f60\u597d"}], "stream": false}').encode()
# Not JSON: routed by load like any other. Held whole, it goes untouched; rewritten as it passes
# (the choice came first: always under Envoy's default delivery), its model went on rewritten
# before the body turned out cut short, and the rest goes untouched.
MALFORMED_BODY = b'{"model": "auto", "messages": [{"role": "user", "content": "cut h'
MALFORMED_STREAMED = MALFORMED_BODY.replace(b'"auto"', b'"MiniMax-M2.1"', 1)
TRAILER = ("x-client-trailer", "1")


def rewritten(body, provider):
    """`body` as `provider` must receive it: only the top-level model value replaced."""
    assert body.count(b'"model": "auto"') == 1
    return body.replace(b'"model": "auto"', f'"model": "{MODEL_OF[provider]}"'.encode())


def assert_length_matches(received):
    """A Content-Length the upstream got is the length of the body it got."""
    lengths = received.values("content-length")
    if lengths:
        assert not received.chunked
        assert lengths == [str(len(received.body))]


def assert_balanced_to(received, provider, sent_body):
    """`provider` received `sent_body` rewritten for it, with the filter's routing headers as
    the only values of the control headers."""
    assert (received.mock, received.method, received.path) == (
        provider, "POST", "/v1/chat/completions")
    assert received.body == rewritten(sent_body, provider)
    assert received.values("x-selected-provider") == [provider]
    assert received.values("x-rewrite-target-model") == [MODEL_OF[provider]]
    assert_length_matches(received)


# ---- 1. request trailers --------------------------------------------------------------------

def h2_chat(stack, body=CHAT_BODY, trailers=(), trailers_after_s=0.0, content_length=False):
    """The attacker's request over HTTP/2: it names qianwen and a model of its own."""
    headers = [("content-type", "application/json"),
               ("x-selected-provider", "qianwen"), ("x-rewrite-target-model", "evil")]
    if content_length:
        headers.append(("content-length", str(len(body))))
    answer = h2_request(stack.ports["listen"], "POST", CHAT_PATH, headers=headers,
                        body=body, trailers=trailers, trailers_after_s=trailers_after_s)
    assert answer.reset_code is None, f"stream reset with code {answer.reset_code}"
    assert answer.status == 200, answer.body[:300]
    return answer


def assert_no_client_control_values(received):
    all_values = [value for _, value in received.headers]
    assert "qianwen" not in all_values and "evil" not in all_values


def assert_reached_minmax_intact(stack, expected_trailers):
    received = only_upstream_request(stack)
    assert_balanced_to(received, "minmax", CHAT_BODY)
    assert_no_client_control_values(received)
    assert received.trailers == expected_trailers


# "with the body": every frame in one write, so the trailers wait in Envoy before the store
# answers; "after the choice": they come once the provider is chosen and the body is in.
TRAILER_TIMINGS = [pytest.param(0.0, id="trailers-with-the-body"),
                   pytest.param(0.3, id="trailers-after-the-choice")]


@pytest.mark.parametrize("trailers_after_s", TRAILER_TIMINGS)
def test_request_trailers_neither_let_the_client_choose_nor_lose_the_body(
        stack, loads, trailers_after_s):
    loads(minmax=10, qianwen=90)  # least load: minmax
    forget_received(stack)
    h2_chat(stack, trailers=[TRAILER], trailers_after_s=trailers_after_s)
    assert_reached_minmax_intact(stack, expected_trailers=[TRAILER])


@pytest.mark.parametrize("trailers_after_s", TRAILER_TIMINGS)
def test_a_body_that_is_not_json_arrives_whole_before_its_trailers(
        stack, loads, trailers_after_s):
    loads(minmax=10, qianwen=90)
    forget_received(stack)
    h2_chat(stack, body=MALFORMED_BODY, trailers=[TRAILER], trailers_after_s=trailers_after_s)
    received = only_upstream_request(stack)
    assert received.mock == "minmax"
    if stack.body_while_headers_paused:
        assert received.body in (MALFORMED_BODY, MALFORMED_STREAMED)
    else:
        assert received.body == MALFORMED_STREAMED
    assert received.values("x-selected-provider") == ["minmax"]
    assert_no_client_control_values(received)
    assert_length_matches(received)
    assert received.trailers == [TRAILER]


@pytest.mark.parametrize("content_length", [False, True], ids=["no-length", "content-length"])
def test_over_http2_without_trailers_the_least_loaded_provider_gets_the_body(
        stack, loads, content_length):
    loads(minmax=10, qianwen=90)
    forget_received(stack)
    h2_chat(stack, content_length=content_length)
    assert_reached_minmax_intact(stack, expected_trailers=[])


# ---- 2 and 3: a listener with other services, providers with pooled keys --------------------

MINMAX_KEY = "sk-minmax-pooled-1111"
QIANWEN_KEY = "sk-qianwen-pooled-2222"
POOLED_KEYS = (MINMAX_KEY, QIANWEN_KEY)
STATUS_PATH = "/masgod/ai-lb/status"  # under /masgod/: unanswered, a provider answers it
CLIENT_CREDENTIALS = [("Authorization", "Bearer client-key"), ("x-api-key", "client-x-key"),
                      ("api-key", "client-api-key")]

# The filter on the whole listener, as the README advises; minmax takes its key in
# Authorization (the default), qianwen in Azure's `api-key`.
GUARDED_CONFIG = json.dumps({
    "providers": [
        {"name": "minmax", "model": MODEL_OF["minmax"], "api_tokens": [MINMAX_KEY]},
        {"name": "qianwen", "model": MODEL_OF["qianwen"], "api_tokens": [QIANWEN_KEY],
         "token_header": "api-key"},
    ],
    "strategy": "round_robin",
    "load_source": "none",
    "status_endpoint": {"path": STATUS_PATH, "allowed_sources": ["10.0.0.0/8", "127.0.0.1"]},
})


@pytest.fixture(scope="module", params=BODY_MODES)
def guarded(request):
    """A stack running GUARDED_CONFIG, with the `jobs` service on /internal/ beside the
    providers; once per body-delivery mode."""
    with running_stack(GUARDED_CONFIG, jobs_service=True,
                       body_while_headers_paused=request.param == "body-while-paused") as running:
        yield running


def assert_no_pooled_key(received):
    for name, value in received.headers:
        for key in POOLED_KEYS:
            assert key not in value, f"{received.mock} got a pooled key in {name}"


def test_a_service_that_is_no_provider_gets_its_request_untouched(guarded):
    stack = guarded
    body = b'{"model": "batch-7", "job": "reindex", "note": "caf\xc3\xa9"}'
    client_headers = [("Host", "gateway.test"), ("Content-Type", "application/json"),
                      ("Authorization", "Bearer jobs-client-token")]
    forget_received(stack)
    answer = http1(stack, "POST", "/internal/jobs", body=body, headers=[
        *client_headers, ("x-selected-provider", "minmax"), ("x-rewrite-target-model", "evil")])
    assert answer.status == 200, answer.raw[:300]
    assert answer.headers.get("x-mock-provider") == "jobs"
    received = only_upstream_request(stack)
    assert (received.mock, received.method, received.path) == ("jobs", "POST", "/internal/jobs")
    assert received.body == body
    assert_no_pooled_key(received)
    # Exactly the client's headers (its control headers gone) and what Envoy itself adds.
    envoy_adds = {"x-forwarded-proto", "x-request-id", "x-envoy-expected-rq-timeout-ms"}
    assert sorted((name, value) for name, value in received.headers
                  if name not in envoy_adds) == sorted(
        [(name.lower(), value) for name, value in client_headers]
        + [("content-length", str(len(body)))])


def test_the_gateway_routes_on_the_same_listener_are_balanced(guarded):
    stack = guarded
    forget_received(stack)
    answer = http1(stack, "POST", CHAT_PATH, body=CHAT_BODY,
                   headers=[("Host", "gateway.test"), ("Content-Type", "application/json")])
    assert answer.status == 200, answer.raw[:300]
    received = only_upstream_request(stack)
    assert_balanced_to(received, received.mock, CHAT_BODY)
    assert credentials_of(received) == expected_credentials(received.mock)
    assert answer.headers.get("x-mock-provider") == received.mock


def credentials_of(received):
    return {name: received.values(name) for name in ("authorization", "api-key", "x-api-key")}


def expected_credentials(provider):
    """The only credential headers `provider` may receive: its pooled key, in its header."""
    if provider == "minmax":
        return {"authorization": ["Bearer " + MINMAX_KEY], "api-key": [], "x-api-key": []}
    return {"authorization": [], "api-key": [QIANWEN_KEY], "x-api-key": []}


def test_a_provider_with_pooled_keys_never_receives_the_clients_credentials(guarded):
    stack = guarded
    seen = set()
    for turn in range(4):  # round robin: each provider twice
        forget_received(stack)
        answer = http1(stack, "POST", CHAT_PATH, body=CHAT_BODY, headers=[
            ("Host", "gateway.test"), ("Content-Type", "application/json"),
            *CLIENT_CREDENTIALS, ("x-selected-provider", "minmax")])
        assert answer.status == 200, answer.raw[:300]
        received = only_upstream_request(stack)
        assert_balanced_to(received, received.mock, CHAT_BODY)
        assert credentials_of(received) == expected_credentials(received.mock), f"turn {turn}"
        seen.add(received.mock)
    assert seen == {"minmax", "qianwen"}


# ---- 4. the status page and X-Forwarded-For --------------------------------------------------

def ask_status(stack, forwarded_for=None):
    headers = [("Host", "gateway.test")]
    if forwarded_for is not None:
        headers.append(("X-Forwarded-For", forwarded_for))
    return http1(stack, "GET", STATUS_PATH, headers=headers)


def assert_served(stack, answer, served_before):
    assert answer.status == 200, answer.raw[:300]
    assert "x-mock-provider" not in answer.headers, "a provider answered, not the filter"
    assert [entry["name"] for entry in answer.json["providers"]] == ["minmax", "qianwen"]
    assert counter(stack, "status.served") == served_before + 1


def assert_not_served(stack, answer, served_before):
    """Passed on like any GET, as if there were no page: a provider answers it."""
    assert answer.status == 200, answer.raw[:300]
    assert answer.headers.get("x-mock-provider") in MODEL_OF, answer.raw[:300]
    assert b'"providers"' not in answer.raw
    assert counter(stack, "status.served") == served_before
    assert [request.path for request in upstream_requests(stack)] == ["/ai-lb/status"]


@pytest.mark.parametrize("forwarded_for", ["10.1.2.3", "127.0.0.1"])
def test_a_forwarded_for_header_never_opens_the_status_page(guarded, forwarded_for):
    stack = guarded
    served = counter(stack, "status.served")
    forget_received(stack)
    assert_not_served(stack, ask_status(stack, forwarded_for), served)


def test_the_status_page_answers_an_allowed_peer(guarded):
    stack = guarded
    served = counter(stack, "status.served")
    assert_served(stack, ask_status(stack), served)


# Behind a trusted proxy: Envoy sets `source.address` from the one trusted hop's
# X-Forwarded-For entry (the last), and the filter trusts it. 127.0.0.1 itself is not allowed.
TRUSTING_CONFIG = json.dumps({
    "providers": [{"name": name, "model": model} for name, model in MODEL_OF.items()],
    "strategy": "round_robin",
    "load_source": "none",
    "status_endpoint": {"path": STATUS_PATH, "allowed_sources": ["10.0.0.0/8"],
                        "trust_forwarded_for": True},
})


@pytest.fixture(scope="module")
def trusting():
    with running_stack(TRUSTING_CONFIG, connection_manager={
            "use_remote_address": "true", "xff_num_trusted_hops": 1}) as running:
        yield running


@pytest.mark.parametrize("forwarded_for, allowed", [
    pytest.param("10.1.2.3", True, id="trusted-hop-reports-an-allowed-client"),
    pytest.param(None, False, id="no-header-the-peer-decides"),
    pytest.param("10.1.2.3, 192.0.2.7", False, id="client-prepended-an-allowed-address"),
])
def test_with_trusted_hops_the_forwarded_address_decides(trusting, forwarded_for, allowed):
    stack = trusting
    served = counter(stack, "status.served")
    forget_received(stack)
    answer = ask_status(stack, forwarded_for)
    if allowed:
        assert_served(stack, answer, served)
    else:
        assert_not_served(stack, answer, served)
