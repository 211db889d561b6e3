"""Steering away before the 429 in real Envoy: minmax has a small request budget that its mock
counts down (scripts/mock_provider.py `rate_limit_requests`), telling what is left in OpenAI's
or Anthropic's rate-limit headers and answering 429 at zero; qianwen is unlimited. Failover
sends everything to minmax while it is available. With `rate_limits`, clients see no 429 and
minmax gets exactly its budget; without, the same traffic meets minmax's 429s. With a key pool
and budgets per key, each key is used up to its budget before the provider is left.
"""
import json

import pytest

from stack import MODEL_OF, chat_body, counter, post, running_stack, status_page

BUDGET = 5
REQUESTS = 16
KEYS = ["sk-minmax-key-one-0000aaaa", "sk-minmax-key-two-0000bbbb"]


def config(rate_limits, minmax_keys=None):
    minmax = {"name": "minmax", "model": MODEL_OF["minmax"]}
    if minmax_keys:
        minmax["api_tokens"] = minmax_keys
    plugin = {
        "providers": [minmax, {"name": "qianwen", "model": MODEL_OF["qianwen"]}],
        "strategy": "failover",
        "load_source": "none",
        "status_endpoint": {"path": "/ai-lb/status", "allowed_sources": ["127.0.0.1"]},
    }
    if rate_limits:
        plugin["rate_limits"] = {"min_remaining_requests": 1}
    return json.dumps(plugin)


def run(stack, count):
    """`count` requests one after another: (statuses, who answered each 200)."""
    statuses, answered = [], []
    for turn in range(count):
        answer = post(stack, chat_body("auto", f"question {turn}"))
        statuses.append(answer.status)
        if answer.status == 200:
            answered.append(answer.provider)
    return statuses, answered


@pytest.mark.parametrize("style", ["openai", "anthropic"])
def test_with_rate_limits_clients_see_no_429_and_the_low_provider_gets_its_budget(style):
    with running_stack(config(rate_limits=True)) as stack:
        stack.set_mock("minmax", rate_limit_requests=BUDGET, rate_limit_reset_s=120,
                       rate_limit_style=style)
        statuses, answered = run(stack, REQUESTS)
        assert statuses == [200] * REQUESTS, statuses
        assert answered == ["minmax"] * BUDGET + ["qianwen"] * (REQUESTS - BUDGET), answered
        assert stack.mock("minmax")["requests"] == BUDGET
        assert counter(stack, "provider.minmax.rate_limited") == 1
        assert counter(stack, "provider.qianwen.rate_limited_picked") == 0
        shown = status_page(stack)["minmax"]["rate_limit"]
        assert shown["requests_remaining"] == 0, shown
        assert 100_000 < shown["requests_reset_in_ms"] <= 121_000, shown


def test_without_rate_limits_the_same_traffic_meets_429s():
    with running_stack(config(rate_limits=False)) as stack:
        stack.set_mock("minmax", rate_limit_requests=BUDGET, rate_limit_reset_s=120)
        statuses, answered = run(stack, REQUESTS)
        assert 429 in statuses, statuses
        assert answered[:BUDGET] == ["minmax"] * BUDGET
        assert counter(stack, "provider.minmax.rate_limited") == 0


def test_a_key_pool_uses_each_key_to_its_budget_before_leaving_the_provider():
    with running_stack(config(rate_limits=True, minmax_keys=KEYS)) as stack:
        stack.set_mock("minmax", rate_limit_requests=3, rate_limit_reset_s=120,
                       rate_limit_per_key=True)
        statuses, answered = run(stack, 12)
        assert statuses == [200] * 12, statuses
        assert answered == ["minmax"] * 6 + ["qianwen"] * 6, answered
        assert counter(stack, "provider.minmax.rate_limited") == 2
        tokens = status_page(stack)["minmax"]["tokens"]
        assert [token["rate_limit"]["requests_remaining"] for token in tokens] == [0, 0], tokens
