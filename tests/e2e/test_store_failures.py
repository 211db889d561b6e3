"""When the load store fails, is slow, or knows nothing, every request is still answered, by a
provider whose model the body carries, and the filter counts the fallback."""
import pytest

from stack import assert_answered_consistently, counter, seed_request

REQUESTS = 10


def assert_all_answered(stack, max_seconds=None):
    providers = []
    for _ in range(REQUESTS):
        answer = seed_request(stack)
        assert_answered_consistently(answer, stack)
        if max_seconds is not None:
            assert answer.seconds < max_seconds, f"took {answer.seconds} s"
        providers.append(answer.provider)
    return providers


def assert_least_load_works(stack, loads):
    loads(minmax=90, qianwen=10)
    for _ in range(3):
        answer = seed_request(stack)
        assert_answered_consistently(answer, stack)
        assert answer.provider == "qianwen"


def test_redis_stopped(stack, loads):
    before = counter(stack, "fallback.store_error")
    stack.stop_redis()
    try:
        assert_all_answered(stack)
        assert counter(stack, "fallback.store_error") >= before + REQUESTS
    finally:
        stack.start_redis()  # empty again (--save ''); waits until Webdis has reconnected
    assert_least_load_works(stack, loads)


def test_webdis_slower_than_the_filter_timeout(stack, loads):
    loads(minmax=90, qianwen=10)
    before = counter(stack, "fallback.store_error")
    stack.pause_webdis()  # connections are accepted by the kernel, never answered
    try:
        assert_all_answered(stack, max_seconds=2.0)
        assert counter(stack, "fallback.store_error") >= before + REQUESTS
    finally:
        stack.resume_webdis()
    assert_least_load_works(stack, loads)


@pytest.mark.parametrize("value", [
    pytest.param("high", id="non-numeric"),
    pytest.param("-5", id="negative"),
    pytest.param(None, id="keys-deleted"),
])
def test_all_loads_unknown(stack, loads, value):
    loads(minmax=value, qianwen=value)
    before = counter(stack, "fallback.all_unknown")
    assert_all_answered(stack)
    assert counter(stack, "fallback.all_unknown") == before + REQUESTS


@pytest.mark.parametrize("missing, known", [("minmax", "qianwen"), ("qianwen", "minmax")])
def test_a_known_load_beats_a_missing_one(stack, loads, missing, known):
    # The known load is the higher number on purpose: it must win only for being known.
    loads(**{missing: None, known: 90})
    for _ in range(4):
        answer = seed_request(stack)
        assert_answered_consistently(answer, stack)
        assert answer.provider == known
