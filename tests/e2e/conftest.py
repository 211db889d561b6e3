"""End-to-end fixtures: one real stack per test session (Envoy + the built filter, Redis, Webdis,
two mock providers; see scripts/gateway.py), requests made with curl, loads set with redis-cli.

Tests that break a part (stop Redis, pause Webdis) restore it themselves; the `loads` fixture
resets both loads before every test that uses it, so tests do not depend on each other's order.
"""
import pytest

from stack import KEYS, gateway


@pytest.fixture(scope="session", params=["body-while-paused", "envoy-default"])
def stack(request):
    """Every test runs twice: with `allow_on_headers_stop_iteration` (the body reaches the filter
    while it holds the headers) and with Envoy's default (no body until the headers resume).
    The providers' clusters pass request trailers on, so that a test sees them arrive."""
    try:
        running = gateway.Stack(body_while_headers_paused=request.param == "body-while-paused",
                                forward_request_trailers=True)
        running.start()
    except gateway.StackError as err:
        pytest.fail(f"cannot start the stack: {err}", pytrace=False)
    yield running
    running.stop()


@pytest.fixture
def loads(stack):
    """Sets loads with the real redis-cli: loads(minmax=90, qianwen=10); None deletes the key."""
    def set_loads(**values):
        for provider, value in values.items():
            if value is None:
                stack.redis_cli("DEL", KEYS[provider])
            else:
                assert stack.redis_cli("SET", KEYS[provider], str(value)) == "OK"
    set_loads(minmax=50, qianwen=50)
    return set_loads


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report ends with Envoy's log tail (the filter logs its decisions there)."""
    outcome = yield
    report = outcome.get_result()
    # Whichever stack the test ran on: the shared one, or one with its own plugin configuration.
    running = next((value for value in getattr(item, "funcargs", {}).values()
                    if isinstance(value, gateway.Stack)), None)
    if report.when == "call" and report.failed and running is not None:
        report.sections.append(("Envoy log (tail)", running.log_tail("envoy", 30)))
