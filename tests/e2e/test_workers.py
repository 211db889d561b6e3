"""Several Envoy workers, each with its own VM of the filter: what one worker does must count
for the others, through Envoy's shared data. The round-robin sequence is one per pool, not one
per worker, and the in-flight counts of every worker add up.

A connection stays on the worker that accepted it, so the tests open keep-alive connections,
note which worker took each (the listener's per-worker `downstream_cx_active`), and send each
request on the worker they mean.
"""
import http.client
import json
import threading

import pytest

from stack import CHAT_PATH, chat_body, running_stack, wait_for

PROVIDERS = ("minmax", "qianwen")
OTHER = {"minmax": "qianwen", "qianwen": "minmax"}
WORKERS = 2
CONFIG = """
providers:
- {name: minmax, model: MiniMax-M2.1}
- {name: qianwen, model: qwen3-max-preview}
models:
  auto:
    strategy: round_robin
    backends: [{provider: minmax}, {provider: qianwen}]
  chat:
    strategy: {name: prefix_affinity, prefix_bytes: 256, load_factor: 0.25}
    backends: [{provider: minmax}, {provider: qianwen}]
load_source: in_flight
"""
SYSTEM_PROMPT = "You translate user manuals from German into plain English, keeping units. " * 8


@pytest.fixture(scope="module")
def two_workers():
    with running_stack(CONFIG, concurrency=WORKERS) as running:
        yield running


@pytest.fixture
def workers(two_workers):
    for name in PROVIDERS:
        two_workers.reset_mock(name)
    yield two_workers
    for name in PROVIDERS:
        two_workers.reset_mock(name)


class Connections:
    """Keep-alive connections to the gateway, `per_worker` on each worker: `on(worker)[i]`."""

    def __init__(self, stack, per_worker, max_tries=64):
        self.by_worker = [[] for _ in range(WORKERS)]
        self.all = []
        # An earlier test's connections, closed but not yet gone, would blur who accepts.
        wait_for(lambda: sum(stack.worker_connections("downstream_cx_active")) == 0, 3,
                 "no connection open on the gateway")
        try:
            for _ in range(max_tries):
                if all(len(held) >= per_worker for held in self.by_worker):
                    return
                worker = self._open_one(stack)
                if len(self.by_worker[worker]) < per_worker:
                    self.by_worker[worker].append(self.all[-1])
            raise AssertionError(f"{max_tries} connections never gave each worker {per_worker}")
        except BaseException:
            self.close()
            raise

    def _open_one(self, stack):
        """Opens a connection and returns the worker that accepted it."""
        before = stack.worker_connections("downstream_cx_active")
        connection = http.client.HTTPConnection("127.0.0.1", stack.ports["listen"], timeout=30)
        connection.connect()
        self.all.append(connection)

        def accepted_by():
            now = stack.worker_connections("downstream_cx_active")
            grown = [worker for worker in range(WORKERS) if now[worker] > before[worker]]
            return grown if sum(now) == sum(before) + 1 else None
        [worker] = wait_for(accepted_by, 3, "Envoy to accept the connection")
        return worker

    def on(self, worker):
        return self.by_worker[worker]

    def close(self):
        for connection in self.all:
            connection.close()


@pytest.fixture
def connections(workers):
    opened = []

    def open_(per_worker):
        opened.append(Connections(workers, per_worker))
        return opened[-1]
    yield open_
    for each in opened:
        each.close()


def ask(connection, body):
    """POSTs on this connection; the provider that answered."""
    connection.request("POST", CHAT_PATH, body=body,
                       headers={"Content-Type": "application/json"})
    answer = connection.getresponse()
    raw = answer.read()
    assert answer.status == 200, raw[:300]
    return json.loads(raw)["provider"]


def test_round_robin_alternates_across_workers(workers, connections):
    on = connections(per_worker=1).on
    providers = [ask(on(turn % WORKERS)[0], chat_body("auto", f"question {turn}"))
                 for turn in range(12)]
    # One sequence for the pool: a per-worker sequence would give each worker's requests the
    # same provider here, as they alternate workers.
    assert all(a != b for a, b in zip(providers, providers[1:])), providers


def test_requests_in_flight_on_one_worker_count_on_the_other(workers, connections):
    stack = workers
    on = connections(per_worker=2).on
    body = lambda text: chat_body("chat", text, system=SYSTEM_PROMPT)  # noqa: E731
    sticky = ask(on(0)[0], body("first"))
    assert ask(on(1)[0], body("first again")) == sticky  # one ring for every VM
    stack.set_mock(sticky, delay_ms=3000)
    # Two held on `sticky`, one from each worker; each worker alone sees only one in flight,
    # which prefix affinity tolerates: only their sum (2) makes the prefix spill over.
    held = []
    for worker in range(WORKERS):
        results = []
        thread = threading.Thread(
            target=lambda c=on(worker)[0], r=results: r.append(ask(c, body("held"))),
            daemon=True)
        thread.start()
        held.append((thread, results))
        wait_for(lambda: stack.mock(sticky)["serving"] == worker + 1, 3,
                 f"{worker + 1} held request(s) on {sticky}")
    spilled = [ask(on(worker)[1], body(f"new on worker {worker}")) for worker in range(WORKERS)]
    assert spilled == [OTHER[sticky]] * WORKERS, spilled
    for thread, results in held:
        thread.join(10)
        assert results == [sticky]
