"""The peer users would pick instead, LiteLLM's proxy, started for a run; or why it could not be.

`start()` never raises: a peer that cannot be installed or run is reported in results.md with
the exact reason, and the rest of the run goes on.
"""
from pathlib import Path

import gateway  # scripts/gateway.py (on the path through gateways.py)
from gateways import GATEWAY_CPU, pin

BENCH = Path(__file__).resolve().parent
SETUP_LOG = BENCH.parent / "target" / "bench" / "litellm-setup.log"


class Peer:
    def __init__(self, url=None, pid=None, description="", proxy=None):
        self.url, self.pid, self.description, self._proxy = url, pid, description, proxy

    def stop(self):
        if self._proxy is not None:
            self._proxy.stop()


def start(upstream_port, workdir, skip):
    if skip:
        return Peer(description="Not measured in this run (`--skip-litellm`).")
    try:
        import litellm_peer
    except ImportError as err:
        return Peer(description=f"Not measured: bench/litellm_peer.py cannot be imported ({err}).")
    if not (litellm_peer.VENV / "bin" / "litellm").exists():
        log = SETUP_LOG.read_text(errors="replace")[-3000:] if SETUP_LOG.exists() else "(no log)"
        return Peer(description="Not measured: LiteLLM's proxy is not installed here. "
                    f"`bash bench/setup_litellm.sh` ended with:\n\n```\n{log}\n```")
    proxy = litellm_peer.LiteLLMProxy(Path(workdir) / "litellm", gateway.free_port(),
                                      upstream_port)
    try:
        proxy.start()
        pin(proxy.pid, GATEWAY_CPU)  # the core the gateways under test own
    except Exception as err:  # any failure becomes the report's explanation
        proxy.stop()
        return Peer(description=f"Not measured: LiteLLM's proxy did not start: {err}")
    return Peer(url=proxy.url + "/v1/chat/completions", pid=proxy.pid, proxy=proxy,
                description=(
                    f"LiteLLM {litellm_peer.peer_version()} (`litellm[proxy]`, own venv "
                    "`.venv-litellm`, bench/requirements-litellm.txt), one uvicorn worker "
                    "(`--num_workers 1`, beside Envoy's `--concurrency 1`), one public model "
                    "`auto` over the same two providers with `routing_strategy: simple-shuffle`, "
                    "in front of the same upstream Envoy, under the same wrk load: its row in "
                    "table 1 and the chart. Set up as fast as it honestly goes (no callbacks, "
                    "no cache, no database, no retries, no health checks; every setting and why "
                    "in bench/litellm_peer.py). It started in "
                    f"{proxy.startup_seconds:.1f} s."))
