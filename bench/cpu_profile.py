"""Where a gateway's CPU goes, by binary: Envoy itself, the kernel, libc, and the code V8
compiled from the wasm filter (perf labels it `[JIT]`). Sampled with `perf record -e cpu-clock`
(a software clock, so it works where hardware counters are not exposed) on the gateway's pid
while wrk loads it, then turned into µs per request per binary.

This is the profile behind the targets' verdict: a filter controls the `[JIT]` share directly;
Envoy's share grows with the host calls it makes (section 3 counts them) and with what Envoy
does for them (header writes, the route re-match, shared data under its lock). Envoy's pip build
is stripped, so the profile stops at binaries; it does not name Envoy's functions.
"""
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

SAMPLES_PER_SECOND = 999
# perf's names for the binaries, grouped as the report shows them.
GROUPS = (("wasm (V8 JIT)", lambda dso: dso.startswith("[JIT]")),
          ("Envoy", lambda dso: dso == "envoy"),
          ("kernel", lambda dso: dso.startswith("[kernel")),
          ("libc", lambda dso: dso.startswith("libc")))
OTHER = "other"


def available():
    """None when `perf record` works here, else why not."""
    if not shutil.which("perf"):
        return "perf is not installed (Debian: linux-perf)"
    try:
        done = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-o", "/dev/null",
                               "--", "true"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"perf record failed: {err}"
    if done.returncode != 0:
        return f"perf record failed: {done.stderr.strip()[-300:]}"
    return None


def record(pid, run_load):
    """Samples `pid` while `run_load()` runs; returns ({group: samples}, what run_load returned)."""
    with tempfile.TemporaryDirectory(prefix="ai-lb-perf-") as tmp:
        data = Path(tmp, "perf.data")
        perf = subprocess.Popen(
            ["perf", "record", "-q", "-e", "cpu-clock", "-F", str(SAMPLES_PER_SECOND),
             "-o", str(data), "-p", str(pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            result = run_load()
        finally:
            perf.send_signal(signal.SIGINT)
            perf.wait(timeout=60)
        report = subprocess.run(
            ["perf", "report", "-i", str(data), "--sort", "dso", "--stdio", "-g", "none", "-n"],
            capture_output=True, text=True, timeout=120)
    return by_group(report.stdout), result


def by_group(report_text):
    """{group: samples} from `perf report --sort dso -n` output."""
    samples = {name: 0 for name, _ in GROUPS}
    samples[OTHER] = 0
    for line in report_text.splitlines():
        fields = line.split(None, 2)
        if len(fields) < 3 or not fields[0].endswith("%") or not fields[1].isdigit():
            continue
        dso = fields[2].strip()
        group = next((name for name, matches in GROUPS if matches(dso)), OTHER)
        samples[group] += int(fields[1])
    return samples


def us_per_request(samples, requests):
    """{group: µs per request} for samples taken at SAMPLES_PER_SECOND over `requests`."""
    per_sample_us = 1e6 / SAMPLES_PER_SECOND
    return {group: count * per_sample_us / max(requests, 1) for group, count in samples.items()}
