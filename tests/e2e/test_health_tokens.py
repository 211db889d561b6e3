"""API-key pools in real Envoy: each request carries one of its provider's tokens (`Bearer` in
Authorization, or bare in another header), a token the provider refuses is dropped after
`failure_threshold` refusals while the provider stays in (with retry on, clients never see the
401), and no secret ever shows on the status page, in Envoy's stats or in its log.

The mock refuses keys on purpose (scripts/mock_provider.py `refused_tokens`).
"""
import json

import pytest

from stack import MODEL_OF, chat_body, counter, curl, post, running_stack, status_page

THRESHOLD = 3
GOOD = "sk-minmax-good-0000aaaa1111"
BAD = "sk-minmax-bad-0000bbbb2222"
QIANWEN_KEY = "sk-qianwen-key-0000cccc3333"
SECRETS = (GOOD, BAD, QIANWEN_KEY)
CLIENT_KEY = "Bearer the-clients-own-key"
MAX_REQUESTS = 60  # ~30 on minmax, each with the bad token at even odds: 3 of them come early


def provider(name, **extra):
    return {"name": name, "model": MODEL_OF[name], "cluster": name,
            "prefix_rewrite": {"from": "/masgod/", "to": "/"}, **extra}


# Probes off and a 60 s cooldown: nothing brings a refused token back during the test, and
# every request minmax sees is a client's.
CONFIG = json.dumps({
    "providers": [
        provider("minmax", api_tokens=[GOOD, BAD]),
        provider("qianwen", api_tokens=[QIANWEN_KEY], token_header="x-api-key"),
    ],
    "strategy": "round_robin",
    "load_source": "none",
    "health": {"failure_threshold": THRESHOLD, "cooldown_ms": 60000, "probe": False},
    "retry": {"max_retries": 1},
    "status_endpoint": {"path": "/ai-lb/status", "allowed_sources": ["127.0.0.1"]},
})


@pytest.fixture
def token_pools():
    with running_stack(CONFIG) as running:
        yield running


def ask(stack, turn):
    """A request carrying the client's own Authorization, which the pool's token replaces."""
    answer = post(stack, chat_body("auto", f"question {turn}"),
                  headers=[("Authorization", CLIENT_KEY)])
    assert answer.status == 200, answer.raw[:300]
    return answer


def assert_credentials(answer):
    """minmax got its good token as `Bearer`; qianwen its own, bare, in x-api-key."""
    credentials = answer.received["credentials"]
    if answer.provider == "minmax":
        assert credentials == {"authorization": "Bearer " + GOOD, "x-api-key": None}
    else:
        assert answer.provider == "qianwen"
        # qianwen has a pool: its own token only, neither the client's key nor a minmax token.
        assert credentials == {"authorization": None, "x-api-key": QIANWEN_KEY}


def test_a_refused_token_is_dropped_after_the_threshold_and_clients_never_see_it(token_pools):
    stack = token_pools
    stack.set_mock("minmax", refused_tokens=[BAD])
    answers = []
    while counter(stack, "provider.minmax.token_unavailable") == 0:
        assert len(answers) < MAX_REQUESTS, "the bad token was never dropped"
        answers.append(ask(stack, len(answers)))
    # Each use of the bad token was a 401 retried on qianwen; THRESHOLD of them dropped it.
    assert counter(stack, "retry.sent") == counter(stack, "retry.recovered") == THRESHOLD
    minmax_answers = sum(answer.provider == "minmax" for answer in answers)
    assert stack.mock("minmax")["requests"] == minmax_answers + THRESHOLD
    for answer in answers:
        assert_credentials(answer)
    # The provider itself stays in: only the token is out.
    assert counter(stack, "provider.minmax.ejected") == 0
    page = status_page(stack)
    assert page["minmax"]["health"] == "healthy"
    assert page["minmax"]["tokens"] == [{"token": "sk-…1111", "available": True},
                                        {"token": "sk-…2222", "available": False}]
    assert page["qianwen"]["tokens"] == [{"token": "sk-…3333", "available": True}]

    # From now on every minmax request uses the good token: none is refused, none retried.
    seen = stack.mock("minmax")["requests"]
    later = [ask(stack, f"later {turn}") for turn in range(20)]
    for answer in later:
        assert_credentials(answer)
    assert stack.mock("minmax")["requests"] == seen + sum(a.provider == "minmax" for a in later)
    assert {answer.provider for answer in later} == {"minmax", "qianwen"}
    assert counter(stack, "retry.sent") == THRESHOLD


def test_tokens_never_show_whole_on_the_page_in_stats_or_in_the_log(token_pools):
    stack = token_pools
    stack.set_mock("minmax", refused_tokens=[BAD])
    for turn in range(MAX_REQUESTS):
        ask(stack, turn)
        if counter(stack, "provider.minmax.token_unavailable"):
            break
    page = curl(stack, [stack.url + "/ai-lb/status"])
    assert page.status == 200 and b"sk-" in page.raw
    stats = "\n".join(f"{name}: {value}" for name, value in stack.stats().items())
    assert "token_unavailable" in stats
    log = stack.logs["envoy"].read_text(errors="replace")
    assert "sk-…2222" in log  # the log does name the token it dropped: masked
    for secret in SECRETS:
        # Whole, or any tell-tale part of it (the masked form keeps 3 + 4 characters).
        for part in (secret, secret[3:-4], secret[:-4]):
            assert part.encode() not in page.raw
            assert part not in stats
            assert part not in log, f"{part} in the Envoy log"
