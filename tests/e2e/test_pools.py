"""Model pools in real Envoy: the names clients send (`auto`, `cheap`) map to backends, each a
provider and the model that provider expects; `GET /v1/models` is answered by the gateway; a
model no pool serves is refused, passed through, or balanced over a fallback pool.

Each stack here runs its own plugin configuration (scripts/gateway.py `plugin_config`). Pools
read the body's model, so the filter holds the headers until the whole body is there: these
stacks use `allow_on_headers_stop_iteration: true`, as envoy/envoy.yaml does by default.
"""
import hashlib
import json

import pytest

from stack import chat_body, counter, curl, post, running_stack

# `auto`'s minmax backend overrides the provider's model; its qianwen backend keeps the
# provider's. `cheap` sends other model names to the same two providers.
POOLS = """
providers:
- {name: minmax, model: MiniMax-M2.1}
- {name: qianwen, model: qwen3-max-preview}
models:
  auto:
    strategy: round_robin
    backends:
    - {provider: minmax, model: MiniMax-M2.5-preview}
    - {provider: qianwen}
  cheap:
    strategy: round_robin
    backends:
    - {provider: qianwen, model: qwen-turbo}
    - {provider: minmax, model: MiniMax-M2.1-lightning}
list_models: true
unknown_model: {unknown_model}
"""
MODELS = {"minmax": "MiniMax-M2.1", "qianwen": "qwen3-max-preview"}  # providers[].model
AUTO_MODELS = {"minmax": "MiniMax-M2.5-preview", "qianwen": "qwen3-max-preview"}
CHEAP_MODELS = {"minmax": "MiniMax-M2.1-lightning", "qianwen": "qwen-turbo"}
NAMES = ["auto", "cheap"]
PROVIDERS = ("minmax", "qianwen")


# Without pools of its own: one pool of both providers, by latency.
LEAST_LATENCY = """
providers:
- {name: minmax, model: MiniMax-M2.1}
- {name: qianwen, model: qwen3-max-preview}
models:
  auto:
    strategy: least_latency
    backends: [{provider: minmax}, {provider: qianwen}]
"""


def pools_config(unknown_model):
    return POOLS.replace("{unknown_model}", unknown_model)


@pytest.fixture(scope="module")
def rejecting():
    """The pools with `unknown_model: reject` (shared by the tests that do not change it)."""
    with running_stack(pools_config("reject")) as running:
        yield running


@pytest.fixture
def passing_through():
    with running_stack(pools_config("pass_through")) as running:
        yield running


@pytest.fixture
def falling_back():
    """Unknown models go to the pool `cheap`."""
    with running_stack(pools_config("cheap")) as running:
        yield running


@pytest.fixture
def by_latency():
    with running_stack(LEAST_LATENCY) as running:
        yield running


def requests_seen(stack):
    """How many requests each mock provider has begun to answer."""
    return {name: stack.mock(name)["requests"] for name in PROVIDERS}


def assert_balanced_to(answer, provider, model, sent):
    """Answered by `provider`, which got `sent` with only the top-level model changed to
    `model`, and the routing headers the filter wrote."""
    assert answer.status == 200, answer.raw[:300]
    assert answer.provider == provider
    assert answer.headers.get("x-mock-provider") == provider
    assert answer.json["model"] == model
    assert answer.received["headers"] == {
        "x-selected-provider": provider, "x-rewrite-target-model": model}
    sent_model = json.loads(sent)["model"]
    expected = sent.replace(f'"model": {json.dumps(sent_model)}'.encode(),
                            f'"model": {json.dumps(model)}'.encode(), 1)
    assert expected != sent
    assert answer.received["sha256"] == hashlib.sha256(expected).hexdigest()


def test_alias_auto_alternates_between_its_backends_each_with_its_own_model(rejecting):
    stack = rejecting
    before = {name: counter(stack, "selected." + name) for name in PROVIDERS}
    providers = []
    for turn in range(10):
        body = chat_body("auto", f"question {turn}")
        answer = post(stack, body)
        provider = answer.provider
        # The backend's model (MiniMax-M2.5-preview overrides providers[].model) is what the
        # provider received; qianwen's backend names none, so qianwen gets its provider's.
        assert_balanced_to(answer, provider, AUTO_MODELS[provider], body)
        providers.append(provider)
    assert all(a != b for a, b in zip(providers, providers[1:])), providers
    assert providers.count("minmax") == providers.count("qianwen") == 5
    for name in PROVIDERS:
        assert counter(stack, "selected." + name) == before[name] + 5


def test_models_are_listed_by_the_gateway_without_asking_a_provider(rejecting):
    stack = rejecting
    seen = requests_seen(stack)
    listed = counter(stack, "requests.models_listed")
    for path in ("/masgod/v1/models", "/masgod/v1/models?limit=5"):
        answer = curl(stack, [stack.url + path])
        assert answer.status == 200, answer.raw[:300]
        assert answer.headers.get("content-type") == "application/json"
        assert "x-mock-provider" not in answer.headers
        listing = answer.json
        assert listing["object"] == "list"
        assert sorted(model["id"] for model in listing["data"]) == NAMES
        assert all(model["object"] == "model" for model in listing["data"])
    assert requests_seen(stack) == seen
    assert counter(stack, "requests.models_listed") == listed + 2


@pytest.mark.parametrize("body, named", [
    pytest.param(chat_body("gpt-5"), "`gpt-5`", id="unknown-name"),
    pytest.param(b'{"messages":[{"role":"user","content":"hi"}]}', "names no model",
                 id="no-model"),
])
def test_an_unknown_model_is_refused_with_the_names_there_are(rejecting, body, named):
    stack = rejecting
    seen = requests_seen(stack)
    refused = counter(stack, "requests.unknown_model")
    answer = post(stack, body)
    assert answer.status == 404, answer.raw[:300]
    error = answer.json["error"]
    assert error["code"] == "model_not_found"
    assert error["type"] == "invalid_request_error"
    assert named in error["message"]
    assert all(name in error["message"] for name in NAMES), error["message"]
    assert requests_seen(stack) == seen
    assert counter(stack, "requests.unknown_model") == refused + 1


def test_an_unknown_model_passes_through_untouched(passing_through):
    stack = passing_through
    passed = counter(stack, "requests.passthrough")
    for turn in range(4):
        body = chat_body("gpt-5", f"question {turn}")
        # Half of them try to choose the provider themselves: the filter drops the header.
        sneaky = [("x-selected-provider", "minmax")] if turn % 2 else []
        answer = post(stack, body, headers=sneaky)
        assert answer.status == 200, answer.raw[:300]
        assert answer.provider in PROVIDERS  # the general route's 50/50 split
        assert answer.json["model"] == "gpt-5"
        assert answer.received["headers"] == {
            "x-selected-provider": None, "x-rewrite-target-model": None}
        assert answer.received["header_counts"]["x-selected-provider"] == 0
        assert answer.received["sha256"] == hashlib.sha256(body).hexdigest()
    assert counter(stack, "requests.passthrough") == passed + 4
    # A name in models is still balanced.
    body = chat_body("auto")
    answer = post(stack, body)
    assert_balanced_to(answer, answer.provider, AUTO_MODELS[answer.provider], body)


def test_an_unknown_model_is_balanced_over_the_fallback_pool(falling_back):
    stack = falling_back
    providers = []
    for turn in range(6):
        body = chat_body("gpt-5", f"question {turn}")
        answer = post(stack, body)
        assert_balanced_to(answer, answer.provider, CHEAP_MODELS[answer.provider], body)
        providers.append(answer.provider)
    assert all(a != b for a, b in zip(providers, providers[1:])), providers
    assert counter(stack, "requests.unknown_model") == 0


def test_least_latency_measures_each_backend_once_then_keeps_to_the_fast_one(by_latency):
    stack = by_latency
    stack.set_mock("minmax", delay_ms=400)
    providers = []
    for turn in range(10):
        body = chat_body("auto", f"question {turn}")
        answer = post(stack, body)
        assert_balanced_to(answer, answer.provider, MODELS[answer.provider], body)
        providers.append(answer.provider)
    # Neither is measured at first: each is tried once, then the faster one keeps the traffic.
    assert sorted(providers[:2]) == ["minmax", "qianwen"], providers
    assert providers[2:] == ["qianwen"] * 8, providers


@pytest.fixture(scope="module")
def body_never_delivered():
    """Pools on Envoy's default body delivery: the filter never sees the body it holds the
    headers for (no `allow_on_headers_stop_iteration`, as with an Istio WasmPlugin)."""
    with running_stack(pools_config("reject"), body_while_headers_paused=False) as running:
        yield running


def test_without_body_delivery_requests_go_on_unbalanced_within_seconds(body_never_delivered):
    stack = body_never_delivered
    sent = chat_body("auto", "no body for the filter")
    for turn in range(3):
        answer = post(stack, sent, timeout_s=10)
        assert answer.status == 200, answer.raw[:300]
        # The general route (50/50) took it, untouched: nothing was chosen or rewritten.
        assert answer.seconds < 5, f"answered after {answer.seconds:.1f} s"
        assert answer.received["headers"]["x-selected-provider"] is None
        assert hashlib.sha256(sent).hexdigest() == answer.received["sha256"]
    assert counter(stack, "requests.body_not_delivered") == 3
    log = stack.log_tail("envoy", 400)
    assert log.count("went on unbalanced; models and retry need it") == 1, "once per worker"
    assert "allow_on_headers_stop_iteration: true" in log
