"""Load sources other than Redis in real Envoy, seen from the client: the filter's own in-flight
counts (with prefix affinity and with least_load) and the engines' Prometheus `/metrics`,
scraped on the tick. The mock providers play the engines: each serves vLLM's `/metrics` with
figures the test sets, and can be made slow (scripts/mock_provider.py `/_mock/state`).
"""
import time

import pytest

from stack import Background, chat_body, counter, post, running_stack, wait_for

PROVIDERS = ("minmax", "qianwen")
MODELS = {"minmax": "MiniMax-M2.1", "qianwen": "qwen3-max-preview"}
OTHER = {"minmax": "qianwen", "qianwen": "minmax"}

PREFIX_AFFINITY = """
providers:
- {name: minmax, model: MiniMax-M2.1}
- {name: qianwen, model: qwen3-max-preview}
models:
  chat:
    strategy: {name: prefix_affinity, prefix_bytes: 256, load_factor: 0.25}
    backends: [{provider: minmax}, {provider: qianwen}]
load_source: in_flight
in_flight: {scope: gateway}
"""

# Scraped every 200 ms so that the test waits little; a scrape counts for 1 s.
ENGINE_METRICS = """
providers:
- {name: minmax, model: MiniMax-M2.1, metrics: {cluster: minmax, path: /metrics}}
- {name: qianwen, model: qwen3-max-preview, metrics: {cluster: qianwen}}
strategy: least_load
load_source: engine_metrics
engine_metrics: {interval_ms: 200, timeout_ms: 500, max_age_ms: 1000}
"""

LEAST_IN_FLIGHT = """
providers:
- {name: minmax, model: MiniMax-M2.1}
- {name: qianwen, model: qwen3-max-preview}
strategy: least_load
load_source: in_flight
"""

# Longer than prefix_bytes (256): requests differing only after it share a prefix.
SYSTEM_PROMPT = ("You are the support assistant of an online bookshop. Answer in two sentences, "
                 "politely, and never invent a price, a delivery date or a stock level. ") * 8


def assert_answered_by(answer, provider):
    assert answer.status == 200, answer.raw[:300]
    assert answer.provider == provider
    assert answer.json["model"] == MODELS[provider]
    assert answer.received["headers"]["x-selected-provider"] == provider


@pytest.fixture(scope="module")
def prefix_affinity_module():
    with running_stack(PREFIX_AFFINITY) as running:
        yield running


@pytest.fixture
def prefix_affinity(prefix_affinity_module):
    """The prefix-affinity stack, its mocks idle and fast before and after the test."""
    yield from with_idle_mocks(prefix_affinity_module)


# These two choose on the headers (no pool, no strategy reading the body), so they work with
# either body delivery; like the shared stack (conftest.py), they run with both.
BODY_DELIVERY = ["body-while-paused", "envoy-default"]


@pytest.fixture(scope="module", params=BODY_DELIVERY)
def engine_metrics_module(request):
    with running_stack(ENGINE_METRICS,
                       body_while_headers_paused=request.param == "body-while-paused") as running:
        yield running


@pytest.fixture
def engine_metrics_stack(engine_metrics_module):
    """The engine-metrics stack, its mocks idle engines with working /metrics."""
    yield from with_idle_mocks(engine_metrics_module)


@pytest.fixture(scope="module", params=BODY_DELIVERY)
def least_in_flight_module(request):
    with running_stack(LEAST_IN_FLIGHT,
                       body_while_headers_paused=request.param == "body-while-paused") as running:
        yield running


@pytest.fixture
def least_in_flight(least_in_flight_module):
    """The least_load + in_flight stack, its mocks idle and fast before and after the test."""
    yield from with_idle_mocks(least_in_flight_module)


def with_idle_mocks(stack):
    """Yields `stack` with its mocks reset before and after (a slow mock must not outlive the
    test that slowed it)."""
    for name in PROVIDERS:
        stack.reset_mock(name)
    yield stack
    for name in PROVIDERS:
        stack.reset_mock(name)


def test_a_shared_prefix_sticks_to_one_provider_until_its_load_is_too_high(prefix_affinity):
    stack = prefix_affinity
    # One after another, so the loads are even (nothing in flight): the prefix decides.
    sticky = None
    for turn in range(50):
        answer = post(stack, chat_body("chat", f"question {turn}", system=SYSTEM_PROMPT))
        sticky = sticky or answer.provider
        assert_answered_by(answer, sticky)
    other = OTHER[sticky]
    # Prefixes are spread: other system prompts reach the other provider too.
    spread = {post(stack, chat_body("chat", "q", system=f"Prompt {n}. " + SYSTEM_PROMPT))
              .provider for n in range(16)}
    assert spread == set(PROVIDERS)

    # The sticky provider turns slow; two requests with the prefix stay on it meanwhile.
    stack.set_mock(sticky, delay_ms=4000)
    held = Background()
    for turn in range(2):
        held.post(stack, chat_body("chat", f"held {turn}", system=SYSTEM_PROMPT))
        wait_for(lambda: stack.mock(sticky)["serving"] == turn + 1, 3,
                 f"{turn + 1} held request(s) in flight on {sticky}")
    assert stack.mock(other)["serving"] == 0
    # 2 in flight is above (1 + load_factor) times the average: the prefix spills over.
    started = time.monotonic()
    answer = post(stack, chat_body("chat", "a new question", system=SYSTEM_PROMPT))
    assert_answered_by(answer, other)
    assert time.monotonic() - started < 2.0, "the spilled request waited for the slow one"
    assert stack.mock(sticky)["serving"] == 2
    for held_answer in held.answers(timeout_s=10):
        assert_answered_by(held_answer, sticky)
    # Nothing in flight any more: the prefix is back on its provider.
    stack.reset_mock(sticky)
    assert_answered_by(post(stack, chat_body("chat", "later", system=SYSTEM_PROMPT)), sticky)


def test_requests_a_client_gave_up_on_stop_counting_as_in_flight(prefix_affinity):
    stack = prefix_affinity
    sticky = post(stack, chat_body("chat", "first", system=SYSTEM_PROMPT)).provider
    stack.set_mock(sticky, delay_ms=5000)
    abandoned = Background()
    for turn in range(2):
        abandoned.post(stack, chat_body("chat", f"abandoned {turn}", system=SYSTEM_PROMPT),
                       timeout_s=1)
        wait_for(lambda: stack.mock(sticky)["serving"] == turn + 1, 3,
                 f"{turn + 1} request(s) in flight on {sticky}")
    outcomes = abandoned.outcomes(timeout_s=10)
    assert all("timed out" in str(outcome) for outcome in outcomes), outcomes
    stack.reset_mock(sticky)
    # Had the two stayed counted, the prefix would spill over to the other provider for good
    # (as in the test above). The count is taken back when Envoy ends the reset stream.
    wait_for(lambda: post(stack, chat_body("chat", "after", system=SYSTEM_PROMPT)).provider
             == sticky, 3, f"the prefix back on {sticky}", poll_s=0.1)
    for turn in range(5):
        assert_answered_by(post(stack, chat_body("chat", f"again {turn}", system=SYSTEM_PROMPT)),
                           sticky)


def wait_for_fresh_scrapes(stack):
    """Until the filter has the figures the mocks show now. A second page served since then
    means the first one came back to the filter: one scrape per engine is out at a time."""
    scrapes = {name: stack.mock(name)["scrapes"] for name in PROVIDERS}
    wait_for(lambda: all(stack.mock(name)["scrapes"] >= scrapes[name] + 2 for name in PROVIDERS),
             5, "two scrapes of each engine")


def test_engine_metrics_send_requests_to_the_engine_running_fewer(engine_metrics_stack):
    stack = engine_metrics_stack
    failed = counter(stack, "scrape.failed")
    for busy, idle in (("minmax", "qianwen"), ("qianwen", "minmax")):
        stack.set_mock(busy, running=50, waiting=3, kv_cache_usage=0.9)
        stack.set_mock(idle, running=1, waiting=0, kv_cache_usage=0.1)
        published = counter(stack, "scrape.published")
        wait_for_fresh_scrapes(stack)
        assert counter(stack, "scrape.published") >= published + 2
        for turn in range(10):
            assert_answered_by(post(stack, chat_body("auto", f"q {turn}")), idle)
    assert counter(stack, "scrape.failed") == failed


def test_an_engine_whose_metrics_fail_stops_attracting_traffic(engine_metrics_stack):
    stack = engine_metrics_stack
    stack.set_mock("minmax", running=0)
    stack.set_mock("qianwen", running=40)
    wait_for_fresh_scrapes(stack)
    for turn in range(5):
        assert_answered_by(post(stack, chat_body("auto", f"q {turn}")), "minmax")
    failed = counter(stack, "scrape.failed")
    stack.set_mock("minmax", metrics_status=500)
    wait_for(lambda: counter(stack, "scrape.failed") > failed, 3, "scrape.failed to grow")
    # minmax's last figure (idle) counts until max_age_ms (1 s); then its load is unknown and
    # the engine that reports wins, busy as it is.
    wait_for(lambda: post(stack, chat_body("auto", "probe")).provider == "qianwen", 3,
             "requests to leave minmax", poll_s=0.1)
    for turn in range(10):
        assert_answered_by(post(stack, chat_body("auto", f"q {turn}")), "qianwen")


def fire(stack, count=20, spacing_s=0.1):
    """`count` requests, one every `spacing_s`, each in its own thread; the providers that
    answered them."""
    requests = Background()
    for turn in range(count):
        requests.post(stack, chat_body("auto", f"question {turn}"))
        time.sleep(spacing_s)
    answers = requests.answers(timeout_s=30)
    for answer in answers:
        assert_answered_by(answer, answer.provider)
    return [answer.provider for answer in answers]


def test_in_flight_counts_move_traffic_away_from_a_slow_provider(least_in_flight):
    stack = least_in_flight
    stack.set_mock("minmax", delay_ms=1500)
    providers = fire(stack)
    # minmax holds each request 1.5 s; while it does, qianwen has fewer in flight.
    assert providers.count("qianwen") >= 15, providers


def test_in_flight_counts_split_evenly_between_equal_providers(least_in_flight):
    # Both take 0.3 s, so requests overlap and the in-flight counts (not a coin toss between
    # two idle providers) decide: each new request goes to the one serving fewer.
    stack = least_in_flight
    for name in PROVIDERS:
        stack.set_mock(name, delay_ms=300)
    providers = fire(stack)
    assert 6 <= providers.count("qianwen") <= 14, providers
