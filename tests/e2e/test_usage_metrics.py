"""Tokens and latency histograms in real Envoy (issue 20): what the gateway counts is what the
mock providers reported, and the histograms' samples are where the mocks' delays put them.

The mocks report the usage they sent (GET /_mock/state `usage`); their answers' usage follows a
documented rule (scripts/mock_provider.py). The counters are read from Envoy's admin `/stats`,
the histograms from `/stats/prometheus`, whose `provider` and `model` labels come from the
`stats_tags` of envoy/envoy.yaml."""
import http.client
import json
import re

import pytest

from stack import CHAT_PATH, KEYS, MODEL_OF, chat_body, counter, post, running_stack, wait_for

TOKENS = "gen_ai.tokens.{kind}.provider.{provider}.model.{model}"
FIRST_TOKEN_DELAY_MS = 300
# Envoy flushes histograms to the admin endpoint every 5 s by default.
FLUSH_WAIT_S = 15


def tokens(stack, kind, provider):
    return counter(stack, TOKENS.format(kind=kind, provider=provider, model=MODEL_OF[provider]))


def mock_usage(stack, provider):
    return stack.mock(provider)["usage"]


def prometheus(stack):
    """{(name, ((label, value), ...)): value} of every `ai_lb_gen_ai` sample."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.ports["admin"], timeout=5)
    conn.request("GET", "/stats/prometheus")
    text = conn.getresponse().read().decode()
    samples = {}
    for line in text.splitlines():
        match = re.match(r"^(ai_lb_gen_ai_\w+)\{(.*)\} (\S+)$", line)
        if match:
            labels = tuple(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
            samples[(match.group(1), labels)] = float(match.group(3))
    return samples


def histogram_count(samples, metric, provider):
    return samples.get((f"ai_lb_gen_ai_server_{metric}_count", (("provider", provider),)), 0)


def bucket(samples, metric, provider, le):
    key = (f"ai_lb_gen_ai_server_{metric}_bucket", (("provider", provider), ("le", le)))
    return samples.get(key, 0)


def stream_chat(stack, include_usage):
    """A streamed chat through the gateway: (status, the SSE events' data, in order)."""
    body = {"model": "auto", "stream": True,
            "messages": [{"role": "user", "content": "count to three please"}]}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    conn = http.client.HTTPConnection("127.0.0.1", stack.ports["listen"], timeout=30)
    conn.request("POST", CHAT_PATH, json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    raw = response.read().decode()
    events = [line[len("data: "):] for line in raw.split("\n") if line.startswith("data: ")]
    return response.status, events


def test_token_counters_add_up_to_what_the_providers_reported(stack, loads):
    loads(minmax=10, qianwen=90)  # every request to minmax
    before = {kind: tokens(stack, kind, "minmax") for kind in ("input", "output")}
    reported_before = mock_usage(stack, "minmax")
    for turn in range(3):
        answer = post(stack, chat_body("auto", f"question number {turn} here"))
        assert answer.status == 200 and answer.provider == "minmax", answer.raw[:300]
    status, events = stream_chat(stack, include_usage=True)
    assert status == 200 and events[-1] == "[DONE]", events
    usage = json.loads(events[-2])["usage"]
    status, events = stream_chat(stack, include_usage=False)  # reports no usage
    assert status == 200 and all('"usage"' not in event for event in events[:-1]), events
    reported = mock_usage(stack, "minmax")
    sent_input = reported["prompt_tokens"] - reported_before["prompt_tokens"]
    sent_output = reported["completion_tokens"] - reported_before["completion_tokens"]
    assert reported["answers"] - reported_before["answers"] == 4
    assert sent_input == 3 * 4 + usage["prompt_tokens"] == 16 and sent_output > 0
    assert tokens(stack, "input", "minmax") - before["input"] == sent_input
    assert tokens(stack, "output", "minmax") - before["output"] == sent_output


@pytest.fixture
def fresh_stack():
    """A stack of its own, every request to minmax: Envoy flushes histograms every 5 s, so a
    shared stack's earlier requests could land in a later flush and blur a difference."""
    with running_stack(None) as running:
        assert running.redis_cli("SET", KEYS["minmax"], "10") == "OK"
        assert running.redis_cli("SET", KEYS["qianwen"], "90") == "OK"
        yield running


def test_histograms_time_each_provider_and_a_streams_first_token(fresh_stack):
    stack = fresh_stack
    before = prometheus(stack)
    stack.set_mock("minmax", first_token_delay_ms=FIRST_TOKEN_DELAY_MS)
    try:
        for _ in range(2):
            status, events = stream_chat(stack, include_usage=True)
            assert status == 200 and events[-1] == "[DONE]"
        answer = post(stack, chat_body("auto", "not streamed"))
        assert answer.status == 200 and answer.provider == "minmax"
    finally:
        stack.set_mock("minmax", first_token_delay_ms=0)

    def moved(samples):
        return histogram_count(samples, "request_duration_ms", "minmax") - \
            histogram_count(before, "request_duration_ms", "minmax") == 3

    wait_for(lambda: moved(prometheus(stack)), FLUSH_WAIT_S, "Envoy flushed the histograms")
    after = prometheus(stack)

    def added(metric, le=None):
        if le is None:
            return histogram_count(after, metric, "minmax") - \
                histogram_count(before, metric, "minmax")
        return bucket(after, metric, "minmax", le) - bucket(before, metric, "minmax", le)

    assert added("time_to_first_byte_ms") == 3, "every answer's headers"
    assert added("time_to_first_token_ms") == 2, "the streams only"
    # The streams' first token came after the mock's delay: none in the buckets below it.
    assert added("time_to_first_token_ms", le="250") == 0
    assert added("time_to_first_token_ms", le="1000") == 2
    # A stream's head goes at once: its first byte is well before its first token.
    assert added("time_to_first_byte_ms", le="250") >= 2
    assert added("request_duration_ms", le="250") == 0, "all three waited the delay"
    assert not any(labels and dict(labels).get("provider") == "qianwen"
                   for (name, labels), value in after.items()
                   if name.endswith("_count") and value
                   and value != before.get((name, labels), 0)), "qianwen answered nothing"


def test_a_failed_answer_leaves_no_tokens_and_no_timings(fresh_stack):
    stack = fresh_stack
    before_tokens = tokens(stack, "input", "minmax")
    reported_before = mock_usage(stack, "minmax")
    before = prometheus(stack)
    stack.set_mock("minmax", answer_status=503)
    try:
        answer = post(stack, chat_body("auto", "refused"))
        assert answer.status == 503
    finally:
        stack.set_mock("minmax", answer_status=200)
    answer = post(stack, chat_body("auto", "fine again"))  # one that counts, to see a flush
    assert answer.status == 200
    wait_for(lambda: histogram_count(prometheus(stack), "request_duration_ms", "minmax")
             > histogram_count(before, "request_duration_ms", "minmax"),
             FLUSH_WAIT_S, "Envoy flushed the histograms")
    after = prometheus(stack)
    for metric in ("time_to_first_byte_ms", "request_duration_ms"):
        assert histogram_count(after, metric, "minmax") - \
            histogram_count(before, metric, "minmax") == 1, f"{metric}: the 200 only"
    reported = mock_usage(stack, "minmax")
    assert reported["answers"] - reported_before["answers"] == 1
    assert tokens(stack, "input", "minmax") - before_tokens == \
        reported["prompt_tokens"] - reported_before["prompt_tokens"]
