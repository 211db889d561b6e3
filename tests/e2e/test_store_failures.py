"""When the load store fails, is slow, or knows nothing, every request is still answered, by a
provider whose model the body carries, and the filter counts the fallback. A store that fails
3 times in a row (the default `down_after_failures`) is known down: requests stop asking it, and
one request asks again every second (`down_retry_ms`)."""
import time

import pytest

from stack import assert_answered_consistently, counter, seed_request

REQUESTS = 10
DOWN_AFTER_FAILURES = 3
DOWN_RETRY_S = 1.0


def assert_all_answered(stack, max_seconds=None):
    providers = []
    for _ in range(REQUESTS):
        answer = seed_request(stack)
        assert_answered_consistently(answer, stack)
        if max_seconds is not None:
            assert answer.seconds < max_seconds, f"took {answer.seconds} s"
        providers.append(answer.provider)
    return providers


def fallbacks(stack):
    return counter(stack, "fallback.store_error") + counter(stack, "fallback.store_down")


def assert_least_load_works(stack, loads):
    # A store known down is asked again after the retry; the request that asks gets the loads.
    time.sleep(DOWN_RETRY_S + 0.2)
    loads(minmax=90, qianwen=10)
    for _ in range(3):
        answer = seed_request(stack)
        assert_answered_consistently(answer, stack)
        assert answer.provider == "qianwen"


def test_redis_stopped(stack, loads):
    before = fallbacks(stack)
    stack.stop_redis()
    try:
        assert_all_answered(stack)
        assert fallbacks(stack) == before + REQUESTS
    finally:
        stack.start_redis()  # empty again (--save ''); waits until Webdis has reconnected
    assert_least_load_works(stack, loads)


def test_webdis_slower_than_the_filter_timeout(stack, loads):
    loads(minmax=90, qianwen=10)
    before = fallbacks(stack)
    stack.pause_webdis()  # connections are accepted by the kernel, never answered
    try:
        assert_all_answered(stack, max_seconds=2.0)
        assert fallbacks(stack) == before + REQUESTS
    finally:
        stack.resume_webdis()
    assert_least_load_works(stack, loads)


def test_a_dead_store_is_known_down_and_asked_again_each_second(stack, loads):
    time.sleep(DOWN_RETRY_S + 0.2)  # whatever an earlier test left, the store is asked again
    errors, down = counter(stack, "fallback.store_error"), counter(stack, "fallback.store_down")
    stack.stop_webdis()  # connections refused
    try:
        assert_all_answered(stack)
        new_errors = counter(stack, "fallback.store_error") - errors
        new_down = counter(stack, "fallback.store_down") - down
        assert new_errors + new_down == REQUESTS
        # The first failures ask (and fail); after them requests stop asking. A slow machine
        # may pass the 1 s retry during the run, which costs one more ask.
        assert DOWN_AFTER_FAILURES <= new_errors <= DOWN_AFTER_FAILURES + 1
        assert "known down after 3 failures in a row" in stack.log_tail("envoy", 200)
    finally:
        stack.start_webdis()
    assert_least_load_works(stack, loads)
    assert "answers again" in stack.log_tail("envoy", 200)


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
