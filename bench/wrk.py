"""One wrk run against one URL: POSTs a body file as JSON and returns what wrk measured.

wrk (Debian's 4.1) prints its figures as text; a Lua `done` hook prints them as one JSON line
instead, so nothing here parses wrk's human-readable output.
"""
import json
import os
import subprocess
from pathlib import Path

LUA = r"""
-- POSTs the file named by BENCH_BODY as JSON; prints the run's figures as one JSON line.
local file = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
"""


class WrkError(RuntimeError):
    pass


def script(directory):
    """Writes the Lua script into `directory` once; returns its path."""
    path = Path(directory) / "post.lua"
    if not path.exists():
        path.write_text(LUA)
    return path


def run(url, body_path, connections, seconds, lua_path, timeout_s=10, cpus=None):
    """`wrk -t1 -cN -dS` POSTing `body_path`; returns wrk's figures plus `rps` and `errors`.

    One wrk thread, on `cpus` when given (away from the gateway under test). `timeout_s` is wrk's per-request timeout (a 10 MB body on a busy machine
    needs more than wrk's default 2 s); the run itself is bounded by `seconds` plus a margin.
    """
    argv = ["taskset", "-c", cpus] if cpus else []
    argv += ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout_s}s",
            "-s", str(lua_path), url]
    env = dict(os.environ, BENCH_BODY=str(body_path))
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env,
                              timeout=seconds + timeout_s + 30)
    except subprocess.TimeoutExpired as err:
        raise WrkError(f"wrk did not finish: {' '.join(argv)}") from err
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise WrkError(f"wrk failed ({done.returncode}): {' '.join(argv)}\n"
                       f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    figures = json.loads(lines[-1])
    figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
    figures["errors"] = sum(figures[key] for key in (
        "connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    return figures
