"""Spillover tiers and session affinity in real Envoy, seen from the client.

Spillover: two engines (the minmax and qianwen mocks, their vLLM `/metrics` scraped) in tier 0
and a paid API (a third mock, `api`, no load known) in tier 1. As the engines' load rises to
`max_load` the requests go to the API, and back to the engines when it falls.

Session affinity: three providers under round robin (which would spread one conversation over
all three); a session key in `x-session-id` or the body's `user` keeps a conversation on one
provider, which it leaves while that provider is ejected and comes back to afterwards.
"""
import json

import pytest

from stack import counter, post, running_stack, wait_for

MODELS = {"minmax": "MiniMax-M2.1", "qianwen": "qwen3-max-preview", "api": "gpt-4o-mini"}
ENGINES = ("minmax", "qianwen")
ALL = (*ENGINES, "api")
MAX_LOAD = 4

SPILLOVER = f"""
providers:
- {{name: minmax, model: MiniMax-M2.1, metrics: {{cluster: minmax}}}}
- {{name: qianwen, model: qwen3-max-preview, metrics: {{cluster: qianwen}}}}
- {{name: api, model: gpt-4o-mini, tier: 1}}
strategy: least_load
spillover: {{max_load: {MAX_LOAD}}}
load_source: engine_metrics
engine_metrics: {{interval_ms: 200, timeout_ms: 500, max_age_ms: 1000}}
"""

# A short cooldown and no probes: the session's provider comes back through its half-open trial.
SESSIONS = """
providers:
- {name: minmax, model: MiniMax-M2.1}
- {name: qianwen, model: qwen3-max-preview}
- {name: api, model: gpt-4o-mini}
strategy: round_robin
session_affinity: {header: x-session-id, body_field: user}
health: {failure_threshold: 3, cooldown_ms: 2000, probe: false}
"""


def chat(content="hi", **fields):
    return json.dumps({"model": "auto", "messages": [{"role": "user", "content": content}],
                       **fields}).encode()


def answered_by(answer):
    """The provider that answered a 200, checked against the routing header and the model."""
    assert answer.status == 200, answer.raw[:300]
    provider = answer.provider
    assert answer.received["headers"]["x-selected-provider"] == provider
    assert answer.json["model"] == MODELS[provider]
    return provider


def idle(stack):
    for name in ALL:
        stack.reset_mock(name)


@pytest.fixture(scope="module")
def spillover_module():
    with running_stack(SPILLOVER, extra_providers=("api",)) as running:
        yield running


@pytest.fixture
def spillover(spillover_module):
    idle(spillover_module)
    yield spillover_module
    idle(spillover_module)


@pytest.fixture(scope="module")
def sessions_module():
    with running_stack(SESSIONS, extra_providers=("api",)) as running:
        yield running


@pytest.fixture
def sessions(sessions_module):
    idle(sessions_module)
    yield sessions_module
    idle(sessions_module)


def engines_report(stack, **running):
    """Sets each engine's running requests and waits until the filter has scraped them: a
    second page served since means the first came back to the filter."""
    for name, value in running.items():
        stack.set_mock(name, running=value)
    scrapes = {name: stack.mock(name)["scrapes"] for name in ENGINES}
    wait_for(lambda: all(stack.mock(name)["scrapes"] >= scrapes[name] + 2 for name in ENGINES),
             5, "two scrapes of each engine")


def providers_of(stack, count=10):
    return [answered_by(post(stack, chat(f"q {turn}"))) for turn in range(count)]


def test_requests_spill_to_the_api_at_max_load_and_come_back_when_it_falls(spillover):
    stack = spillover
    engines_report(stack, minmax=0, qianwen=0)
    assert set(providers_of(stack)) <= set(ENGINES)
    # Below the threshold the least loaded engine keeps every request.
    engines_report(stack, minmax=MAX_LOAD - 1, qianwen=MAX_LOAD + 5)
    spilled = counter(stack, "spillover.spilled")
    assert providers_of(stack) == ["minmax"] * 10
    assert counter(stack, "spillover.spilled") == spilled
    # The best engine at the threshold: tier 0 is full, the API (load unknown) takes them.
    engines_report(stack, minmax=MAX_LOAD)
    assert providers_of(stack) == ["api"] * 10
    assert counter(stack, "spillover.spilled") == spilled + 10
    # One engine's load falls: back in-house.
    engines_report(stack, qianwen=1)
    assert providers_of(stack) == ["qianwen"] * 10
    assert counter(stack, "spillover.spilled") == spilled + 10


def with_session(stack, key, content="hi"):
    return answered_by(post(stack, chat(content), headers=[("x-session-id", key)]))


def test_a_session_stays_on_one_provider_and_sessions_spread(sessions):
    stack = sessions
    # Round robin alone spreads one client's requests over all three.
    assert set(providers_of(stack, 6)) == set(ALL)
    routed = counter(stack, "session.routed")
    home = with_session(stack, "conversation-7")
    for turn in range(20):
        assert with_session(stack, "conversation-7", f"turn {turn}") == home
    # The same key in the body's `user` field (no header) finds the same provider.
    for turn in range(5):
        assert answered_by(post(stack, chat(f"turn {turn}", user="conversation-7"))) == home
    spread = {with_session(stack, f"conversation-{n}") for n in range(20)}
    assert len(spread) >= 2, spread
    assert counter(stack, "session.routed") == routed + 1 + 20 + 5 + 20


def test_a_session_moves_while_its_provider_is_ejected_and_comes_back(sessions):
    stack = sessions
    home = with_session(stack, "conversation-42")
    moved = counter(stack, "session.moved")
    stack.set_mock(home, answer_status=503)
    for _ in range(3):  # failure_threshold: the third failure ejects it
        answer = post(stack, chat(), headers=[("x-session-id", "conversation-42")])
        assert (answer.status, answer.provider) == (503, home)
    away = with_session(stack, "conversation-42")
    assert away != home
    for turn in range(10):
        assert with_session(stack, "conversation-42", f"turn {turn}") == away
    assert counter(stack, "session.moved") == moved + 11
    # The provider recovers; after its cooldown the session's next request is its trial.
    stack.reset_mock(home)
    wait_for(lambda: with_session(stack, "conversation-42") == home, 5,
             f"the session back on {home}", poll_s=0.2)
    for turn in range(10):
        assert with_session(stack, "conversation-42", f"again {turn}") == home
