#!/usr/bin/env python3
"""A bounded load run through the whole gateway while one provider crashes and comes back.

    python scripts/load_run.py [--clients 4] [--seconds 14] [--kill-at 3] [--down 3]
                               [--victim minmax] [--json target/load-run.json]

What `make load-run` runs, and what tests/e2e/test_health.py's last test runs on its own stack.
Client threads send chat completions without pause on keep-alive connections; `kill_at_s` into
the run the victim's mock provider is killed, and `down_s` later it is started again on the
same port. The filter runs with retry on and probes every 500 ms (`CONFIG`): a client should
never see the crash, and the probe should bring the victim back soon after its restart.

Figures (printed, and written as JSON): requests answered, client-visible errors (any status
but 200, or a broken connection) with a few examples, answers per provider, and the recovery
time: from the restarted mock being ready until the first client answer it served (also: until
the filter's `restored` stat for it counted).
"""
import argparse
import http.client
import json
import sys
import threading
import time
from pathlib import Path

import gateway

CHAT_PATH = "/masgod/v1/chat/completions"
DEFAULT_JSON = gateway.ROOT / "target" / "load-run.json"
# Retry on another provider, probes every 500 ms; a 60 s cooldown so that only a probe (not
# the cooldown's end) can bring the victim back within the run.
CONFIG = """
providers:
- name: minmax
  model: MiniMax-M2.1
  cluster: minmax
  prefix_rewrite: {from: /masgod/, to: /}
- name: qianwen
  model: qwen3-max-preview
  cluster: qianwen
  prefix_rewrite: {from: /masgod/, to: /}
strategy: round_robin
load_source: none
retry: {max_retries: 1, budget_ms: 10000}
health:
  failure_threshold: 3
  cooldown_ms: 60000
  probe: {interval_ms: 500, timeout_ms: 400}
"""
MAX_ERROR_EXAMPLES = 5


class Outcomes:
    """Every request's outcome, as (monotonic time answered, provider or None, error or None),
    appended by the client threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items = []

    def add(self, provider, error):
        with self.lock:
            self.items.append((time.monotonic(), provider, error))

    def snapshot(self):
        with self.lock:
            return list(self.items)

    def first_answer_by(self, provider, after):
        """When `provider` first answered a client after `after` (monotonic), or None."""
        return next((at for at, by, _ in self.snapshot() if by == provider and at >= after),
                    None)


def one_request(connection, turn):
    """POSTs one chat completion; (provider, None) on a 200, (None, error text) otherwise."""
    body = json.dumps({"model": "auto", "messages": [
        {"role": "user", "content": f"load run question {turn}"}]}).encode()
    connection.request("POST", CHAT_PATH, body=body,
                       headers={"Content-Type": "application/json"})
    answer = connection.getresponse()
    raw = answer.read()
    if answer.status != 200:
        return None, f"status {answer.status}: {raw[:200]!r}"
    return json.loads(raw)["provider"], None


def client(stack, outcomes, stop, index):
    """Sends requests until `stop`; a broken connection is an error, then a new connection."""
    connection = None
    turn = 0
    while not stop.is_set():
        turn += 1
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", stack.ports["listen"],
                                                    timeout=30)
        try:
            provider, error = one_request(connection, f"{index}.{turn}")
        except (OSError, http.client.HTTPException, ValueError, KeyError) as err:
            provider, error = None, f"{type(err).__name__}: {err}"
            connection.close()
            connection = None
        outcomes.add(provider, error)
    if connection is not None:
        connection.close()


def restored_count(stack, victim):
    return stack.stats().get(f"wasmcustom.ai_lb.provider.{victim}.restored", 0)


def run(stack, clients=4, seconds=14.0, kill_at_s=3.0, down_s=3.0, victim="minmax"):
    """Runs the load on a started `stack` (whose filter runs `CONFIG` or alike); returns the
    figures as a dict."""
    if kill_at_s + down_s >= seconds:
        raise ValueError("the victim must be restarted before the run ends")
    outcomes = Outcomes()
    stop = threading.Event()
    restored_before = restored_count(stack, victim)
    threads = [threading.Thread(target=client, args=(stack, outcomes, stop, index), daemon=True)
               for index in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    restarted = restored_at = None
    try:
        time.sleep(kill_at_s)
        killed = time.monotonic()
        stack.kill(victim)
        time.sleep(max(0.0, killed + down_s - time.monotonic()))
        stack.restart_mock(victim)  # returns once the new mock answers
        restarted = time.monotonic()
        while time.monotonic() < started + seconds:
            if restored_at is None and restored_count(stack, victim) > restored_before:
                restored_at = time.monotonic()
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(35)
    ended = time.monotonic()
    items = outcomes.snapshot()
    errors = [error for _, _, error in items if error is not None]
    served = outcomes.first_answer_by(victim, restarted) if restarted is not None else None
    answered_by = {}
    for _, provider, _ in items:
        if provider is not None:
            answered_by[provider] = answered_by.get(provider, 0) + 1
    stats = stack.stats()

    def stat(name):
        return stats.get("wasmcustom.ai_lb." + name, 0)

    def since_restart(moment):
        return None if moment is None else round(moment - restarted, 3)

    return {
        "clients": clients,
        "seconds": round(ended - started, 3),
        "victim": victim,
        "killed_at_s": round(killed - started, 3),
        "restarted_at_s": round(restarted - started, 3),
        "requests": len(items),
        "requests_per_s": round(len(items) / (ended - started), 1),
        "errors": len(errors),
        "error_examples": errors[:MAX_ERROR_EXAMPLES],
        "answered_by": answered_by,
        "recovered": served is not None,
        "recovery_s": since_restart(served),
        "restored_stat_after_s": since_restart(restored_at),
        "stats": {name: stat(name) for name in (
            f"provider.{victim}.ejected", f"provider.{victim}.restored", "retry.sent",
            "retry.recovered", "retry.exhausted", "probe.ok", "probe.failed")},
    }


def report(figures):
    """The figures as lines for a person."""
    recovery = ("never" if figures["recovery_s"] is None
                else f"{figures['recovery_s']} s after its restart")
    lines = [
        f"load run: {figures['clients']} clients for {figures['seconds']} s; "
        f"{figures['victim']} killed at {figures['killed_at_s']} s, "
        f"restarted at {figures['restarted_at_s']} s",
        f"  requests: {figures['requests']} ({figures['requests_per_s']}/s), "
        f"answered by {figures['answered_by']}",
        f"  client-visible errors: {figures['errors']}",
        *[f"    {example}" for example in figures["error_examples"]],
        f"  {figures['victim']} served again: {recovery} "
        f"(restored stat after {figures['restored_stat_after_s']} s)",
        f"  stats: {figures['stats']}",
    ]
    return "\n".join(lines)


def write_json(figures, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=14.0, help="the whole run")
    parser.add_argument("--kill-at", type=float, default=3.0,
                        help="seconds into the run the victim is killed")
    parser.add_argument("--down", type=float, default=3.0,
                        help="seconds the victim stays down")
    parser.add_argument("--victim", choices=sorted(gateway.PROVIDERS), default="minmax")
    parser.add_argument("--json", default=str(DEFAULT_JSON), help="where the figures go")
    args = parser.parse_args()
    stack = gateway.Stack(plugin_config=CONFIG)
    try:
        stack.start()
        figures = run(stack, args.clients, args.seconds, args.kill_at, args.down, args.victim)
    except (gateway.StackError, ValueError) as err:
        print(f"load run: {err}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
    print(report(figures))
    print(f"  figures: {write_json(figures, args.json)}")
    return 0 if figures["errors"] == 0 and figures["recovered"] else 1


if __name__ == "__main__":
    sys.exit(main())
