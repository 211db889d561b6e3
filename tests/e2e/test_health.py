"""Health, failover and retry in real Envoy, as a client and an operator see them: a provider
that fails is ejected after `failure_threshold` failures (clients see none of them when retry
is on), comes back through the probe or a half-open trial, honours a 429's Retry-After; the
status page shows it all and answers only the configured sources; the last test is a load run
during which a provider is killed and restarted.

The mocks fail on purpose (scripts/mock_provider.py `answer_status`, `retry_after_s`). Each test
runs its own stack (scripts/gateway.py `plugin_config`): health records live in Envoy's shared
data, so a fresh Envoy is a fresh start. Round robin over the two providers, no load source.
"""
import hashlib
import json

import pytest

from stack import (MODEL_OF, chat_body, counter, curl, gateway, post, running_stack,
                   status_page, wait_for)

import load_run  # noqa: E402  (scripts/, put on sys.path by stack.py)

THRESHOLD = 3  # health.failure_threshold (the default, written out)
STATUS_PATH = "/ai-lb/status"
REQUESTS = 20
ROOT = gateway.ROOT


def provider(name):
    """A provider the filter can reach itself (retries, probes): its Envoy cluster and the
    route's prefix rewrite."""
    return {"name": name, "model": MODEL_OF[name], "cluster": name,
            "prefix_rewrite": {"from": "/masgod/", "to": "/"}}


def health_config(*, retry=True, probe=False, status_path=STATUS_PATH,
                  allowed_sources=("127.0.0.1",)):
    """The plugin configuration (JSON, which the YAML parser reads): a 60 s cooldown, so that
    only a probe or a Retry-After brings a provider back within a test."""
    config = {
        "providers": [provider("minmax"), provider("qianwen")],
        "strategy": "round_robin",
        "load_source": "none",
        "health": {"failure_threshold": THRESHOLD, "cooldown_ms": 60000, "probe": probe},
        "status_endpoint": {"path": status_path, "allowed_sources": list(allowed_sources)},
    }
    if retry:
        config["retry"] = {"max_retries": 1}
    return json.dumps(config)


PROBING = {"interval_ms": 400, "timeout_ms": 300}


@pytest.fixture
def with_retry():
    with running_stack(health_config()) as running:
        yield running


@pytest.fixture
def with_retry_and_probes():
    with running_stack(health_config(probe=PROBING)) as running:
        yield running


@pytest.fixture
def without_retry():
    with running_stack(health_config(retry=False)) as running:
        yield running


def health(stack, name):
    """One provider's entry on the status page."""
    return status_page(stack, STATUS_PATH)[name]


def assert_retried_on_qianwen(answer, sent):
    """200 from qianwen, which got the client's body with the model rewritten for it, on the
    path the route would have rewritten it to."""
    assert answer.status == 200, answer.raw[:300]
    assert answer.provider == "qianwen"
    assert answer.headers.get("x-mock-provider") == "qianwen"
    assert answer.json["model"] == MODEL_OF["qianwen"]
    assert answer.received["path"] == "/v1/chat/completions"
    expected = sent.replace(b'"model": "auto"', f'"model": "{MODEL_OF["qianwen"]}"'.encode(), 1)
    assert answer.received["sha256"] == hashlib.sha256(expected).hexdigest()


def test_a_failing_provider_is_ejected_after_the_threshold_and_clients_see_no_error(with_retry):
    stack = with_retry
    stack.set_mock("minmax", answer_status=503)
    bodies = [chat_body("auto", f"question {turn}") for turn in range(REQUESTS)]
    answers = [post(stack, body) for body in bodies]
    # minmax failed THRESHOLD times (each retried on qianwen), then no request went to it.
    for answer, body in zip(answers, bodies):
        assert_retried_on_qianwen(answer, body)
    assert stack.mock("minmax")["requests"] == THRESHOLD
    assert counter(stack, "provider.minmax.ejected") == 1
    assert counter(stack, "retry.sent") == counter(stack, "retry.recovered") == THRESHOLD
    assert counter(stack, "provider.qianwen.retried") == THRESHOLD
    assert counter(stack, "retry.exhausted") == 0
    assert counter(stack, "selected.qianwen") == REQUESTS - THRESHOLD
    page = status_page(stack, STATUS_PATH)
    assert page["minmax"]["health"] == "ejected"
    assert 0 < page["minmax"]["cooldown_remaining_ms"] <= 60000
    assert page["qianwen"]["health"] == "healthy"
    assert page["qianwen"]["cooldown_remaining_ms"] == 0
    assert counter(stack, "status.served") == 1
    # Still nothing for minmax: the ejection holds.
    for turn in range(4):
        assert post(stack, chat_body("auto", f"later {turn}")).provider == "qianwen"
    assert stack.mock("minmax")["requests"] == THRESHOLD


def test_an_ejected_provider_comes_back_through_the_probe(with_retry_and_probes):
    stack = with_retry_and_probes
    stack.set_mock("minmax", answer_status=503)
    for turn in range(2 * THRESHOLD):
        assert post(stack, chat_body("auto", f"question {turn}")).status == 200
    assert counter(stack, "provider.minmax.ejected") == 1
    # Its probes fail while it still does: it stays out, far from the end of its cooldown.
    wait_for(lambda: counter(stack, "probe.failed") >= 1, 5, "a failed probe of minmax")
    ejected = health(stack, "minmax")
    assert ejected["health"] == "ejected"
    assert ejected["cooldown_remaining_ms"] > 50000
    assert counter(stack, "provider.minmax.restored") == 0

    stack.reset_mock("minmax")
    wait_for(lambda: health(stack, "minmax")["health"] == "healthy", 5,
             "the probe to bring minmax back")
    assert counter(stack, "provider.minmax.restored") == 1
    assert counter(stack, "probe.ok") > 0
    assert health(stack, "minmax")["cooldown_remaining_ms"] == 0
    providers = [post(stack, chat_body("auto", f"again {turn}")).provider for turn in range(4)]
    assert "minmax" in providers, providers


def test_without_retry_clients_see_exactly_the_threshold_of_failures(without_retry):
    stack = without_retry
    stack.set_mock("minmax", answer_status=503)
    answers = [post(stack, chat_body("auto", f"question {turn}")) for turn in range(REQUESTS)]
    statuses = [answer.status for answer in answers]
    assert statuses.count(503) == THRESHOLD, statuses
    # The failures are minmax's own answers, passed on; after the last one, none.
    failed = [answer for answer in answers if answer.status == 503]
    assert all(answer.headers.get("x-mock-provider") == "minmax" for answer in failed)
    last_failure = max(index for index, status in enumerate(statuses) if status == 503)
    assert all(answer.provider == "qianwen" for answer in answers[last_failure + 1:])
    assert stack.mock("minmax")["requests"] == THRESHOLD
    assert counter(stack, "provider.minmax.ejected") == 1
    assert counter(stack, "retry.sent") == 0
    assert health(stack, "minmax")["health"] == "ejected"


def test_a_429_retry_after_ejects_at_once_for_that_long_then_a_trial_restores(with_retry):
    stack = with_retry
    stack.set_mock("minmax", answer_status=429, retry_after_s=2)
    answers = []
    while stack.mock("minmax")["requests"] == 0:
        assert len(answers) < 4, "round robin never sent a request to minmax"
        answers.append(post(stack, chat_body("auto", f"question {len(answers)}")))
    # One 429, not THRESHOLD: ejected for Retry-After's 2 s, not the configured 60 s.
    assert counter(stack, "provider.minmax.ejected") == 1
    ejected = health(stack, "minmax")
    assert ejected["health"] == "ejected"
    assert 1000 < ejected["cooldown_remaining_ms"] <= 2000, ejected
    assert [(answer.status, answer.provider) for answer in answers] == \
        [(200, "qianwen")] * len(answers)

    stack.reset_mock("minmax")
    # No probes (probe: false): once the 2 s are over, the next request that picks minmax is
    # its trial.
    wait_for(lambda: health(stack, "minmax")["health"] == "half_open", 4,
             "minmax's Retry-After to pass")
    assert stack.mock("minmax")["requests"] == 1
    providers = [post(stack, chat_body("auto", f"after {turn}")).provider for turn in range(2)]
    assert "minmax" in providers, providers
    assert counter(stack, "provider.minmax.restored") == 1
    assert health(stack, "minmax")["health"] == "healthy"
    assert counter(stack, "provider.minmax.ejected") == 1


def test_a_streaming_request_is_retried_before_its_first_byte(with_retry):
    stack = with_retry
    stack.set_mock("minmax", answer_status=503)
    for turn in range(4):  # round robin: two of them go to minmax first
        body = json.dumps({"model": "auto", "stream": True, "messages": [
            {"role": "user", "content": f"stream {turn}"}]}).encode()
        answer = post(stack, body)
        assert_retried_on_qianwen(answer, body)
        # The whole stream came through, after the retry.
        assert answer.events[-1] == "[DONE]", answer.raw[-300:]
        assert "".join(event["choices"][0]["delta"]["content"] for event in answer.events[1:-2]
                       ) == "qianwen-1 qianwen-2 qianwen-3 qianwen-4 qianwen-5"
    assert stack.mock("minmax")["requests"] == 2
    assert counter(stack, "retry.recovered") == 2


# Under /masgod/, so that a request the filter does not answer has a route to a provider.
ROUTED_STATUS_PATH = "/masgod/ai-lb/status"


@pytest.fixture
def status_for(request):
    """A stack whose status page allows the sources `request.param`."""
    config = health_config(status_path=ROUTED_STATUS_PATH, allowed_sources=request.param)
    with running_stack(config) as running:
        yield running


@pytest.mark.parametrize("status_for, answered_by_filter", [
    pytest.param(["10.0.0.0/8"], False, id="loopback-not-allowed"),
    pytest.param(["10.0.0.0/8", "127.0.0.0/8"], True, id="loopback-allowed"),
], indirect=["status_for"])
def test_the_status_page_answers_only_its_sources(status_for, answered_by_filter):
    stack = status_for
    answer = curl(stack, [stack.url + ROUTED_STATUS_PATH + "?pretty=1"])
    assert answer.status == 200, answer.raw[:300]
    if answered_by_filter:
        assert "x-mock-provider" not in answer.headers
        assert [p["name"] for p in answer.json["providers"]] == ["minmax", "qianwen"]
        assert counter(stack, "status.served") == 1
    else:
        # Passed on like any GET, as if there were no page: the general route's provider
        # answers it.
        assert answer.headers.get("x-mock-provider") in MODEL_OF
        assert answer.provider == answer.headers["x-mock-provider"]
        assert answer.received["path"] == "/ai-lb/status?pretty=1"
        assert counter(stack, "status.served") == 0


@pytest.fixture
def load_run_stack():
    with running_stack(load_run.CONFIG) as running:
        yield running


# Keep last: the slowest test (~15 s), and the one that kills a process.
def test_load_run_with_a_provider_killed_and_restarted_sees_no_error(load_run_stack):
    figures = load_run.run(load_run_stack, clients=4, seconds=14, kill_at_s=3, down_s=3)
    print("\n" + load_run.report(figures))
    print(f"figures: {load_run.write_json(figures, ROOT / 'target' / 'e2e-load-run.json')}")
    assert figures["errors"] == 0, figures["error_examples"]
    assert figures["recovered"], figures
    assert figures["stats"]["provider.minmax.ejected"] >= 1
    assert figures["stats"]["provider.minmax.restored"] >= 1
