"""Envoy 1.40 bootstrap configurations for the benchmark (Python stdlib only).

    upstream_config(admin_port, listen_port)
    gateway_config(admin_port, listen_port, upstream_port, webdis_port, wasm)

Both return YAML text for `envoy -c FILE`; everything listens on 127.0.0.1. The gateway mirrors
envoy/envoy.yaml (same listener, filter placement and route table) so that what is measured is
the product's shape, with two differences that keep the benchmark honest:

* both provider clusters point at ONE fast upstream (another Envoy), so the routing decision
  changes nothing downstream of the gateway;
* circuit breakers are lifted, so overload shows up as latency, not as Envoy's default
  1024-request limit turning requests into 503s.

Strings that land in the YAML (paths, the plugin configuration) are written as JSON string
literals, which are valid YAML double-quoted scalars: no escaping rules of our own.
"""
import json

# Room for 10 MB bodies: a filter that buffers the body needs Envoy to hold all of it, and past
# the connection buffer limit Envoy answers 413.
BUFFER_LIMIT = 64 * 1024 * 1024
# The upstream holds a whole request body before it answers (see upstream_config).
UPSTREAM_MAX_BODY = 16 * 1024 * 1024
ROUTE_TIMEOUT = "30s"
# A small, fixed OpenAI chat completion: what the gateway's client gets back.
CHAT_COMPLETION = json.dumps({
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "bench-upstream",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "ok"}}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}, separators=(",", ":"))


def _vllm_page(model, running, waiting):
    labels = f'engine="0",model_name="{model}"'
    return (f"# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{{{labels}}} {running}.0\n"
            f"# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{{{labels}}} {waiting}.0\n"
            f"# TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc{{{labels}}} 0.25\n")


# What the upstream answers on GET /metrics/<provider>: each engine's vLLM `/metrics`, for the
# engine-metrics variant's scrapes (through the provider clusters, which are the upstream).
METRICS_PAGES = {"minmax": _vllm_page("MiniMax-M2.1", 3, 1),
                 "qianwen": _vllm_page("qwen3-max-preview", 1, 0)}
# A request carrying this header gets, instead of the chat completion, an answer saying in
# FRAMING_ANSWER_HEADER the `content-length` the upstream received (absent: the body came
# chunked): how bench/run.py tells that a floor deciding at the headers really streamed the body.
FRAMING_PROBE_HEADER = "x-bench-framing-probe"
FRAMING_ANSWER_HEADER = "x-bench-request-content-length"
# Far above any load the benchmark offers.
NO_CIRCUIT_BREAKING = ("circuit_breakers: {thresholds: [{max_connections: 1000000, "
                       "max_pending_requests: 1000000, max_requests: 1000000, "
                       "max_retries: 1000000}]}")


def _q(text):
    """A YAML double-quoted scalar for any string."""
    return json.dumps(text, ensure_ascii=False)


def _admin(port):
    return f"""admin:
  address:
    socket_address: {{ address: 127.0.0.1, port_value: {int(port)} }}
"""


def _cluster(name, port):
    return f"""  - name: {name}
    type: STATIC
    connect_timeout: 1s
    per_connection_buffer_limit_bytes: {BUFFER_LIMIT}
    {NO_CIRCUIT_BREAKING}
    load_assignment:
      cluster_name: {name}
      endpoints:
      - lb_endpoints:
        - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {int(port)} }} }} }}
"""


def upstream_config(admin_port, listen_port):
    """A provider stand-in that costs next to nothing: every request gets 200 and CHAT_COMPLETION
    (but GET /metrics/<provider>, which gets METRICS_PAGES' page, and a framing probe, see
    FRAMING_PROBE_HEADER).

    It reads the whole request body before answering (the buffer filter, up to 16 MB), as a
    real provider does. Answering at the headers instead would leave the body unread: Envoy then
    closes the HTTP/1.1 connection, so the gateway would open a new upstream connection per
    request and large uploads could be cut by a reset, which is not what is being measured.
    """
    buffer = f"""          - name: envoy.filters.http.buffer
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer
              max_request_bytes: {UPSTREAM_MAX_BODY}
"""
    routes = "".join(f"""              - match: {{ path: /metrics/{name} }}
                direct_response:
                  status: 200
                  body: {{ inline_string: {_q(page)} }}
""" for name, page in METRICS_PAGES.items())
    # The probe answers at the headers, unbuffered (the buffer filter would add the length it
    # buffered), and leaves its body unread: Envoy then closes that one connection.
    routes += f"""              - match: {{ prefix: /, headers: [{{ name: {FRAMING_PROBE_HEADER}, present_match: true }}] }}
                direct_response:
                  status: 200
                  body: {{ inline_string: {_q(CHAT_COMPLETION)} }}
                typed_per_filter_config:
                  envoy.filters.http.buffer:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute
                    disabled: true
                response_headers_to_add:
                - header: {{ key: {FRAMING_ANSWER_HEADER}, value: "%REQ(content-length)%" }}
              - match: {{ prefix: / }}
                direct_response:
                  status: 200
                  body: {{ inline_string: {_q(CHAT_COMPLETION)} }}
                response_headers_to_add:
                - header: {{ key: content-type, value: application/json }}
                  append_action: OVERWRITE_IF_EXISTS_OR_ADD
"""
    return _admin(admin_port) + _listener("upstream", listen_port, buffer, routes)


def _listener(name, port, http_filters, routes):
    """`static_resources` with one HTTP listener: `http_filters` (YAML list items) before the
    router, and `routes` (YAML list items) in one catch-all virtual host, both named `name`."""
    return f"""
static_resources:
  listeners:
  - name: {name}
    address:
      socket_address: {{ address: 127.0.0.1, port_value: {int(port)} }}
    per_connection_buffer_limit_bytes: {BUFFER_LIMIT}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: {name}
          codec_type: AUTO
          http_filters:
{http_filters}          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          route_config:
            name: {name}
            virtual_hosts:
            - name: {name}
              domains: ["*"]
              routes:
{routes}"""


def _wasm_filter(wasm):
    """envoy.filters.http.wasm on V8, as in envoy/envoy.yaml; `wasm` as gateway_config's."""
    unknown = set(wasm) - {"path", "configuration", "vm_id", "allow_on_headers_stop_iteration"}
    if unknown:
        raise ValueError(f"wasm: unknown keys {sorted(unknown)}")
    stop = "true" if wasm["allow_on_headers_stop_iteration"] else "false"
    return f"""          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: {_q(wasm["vm_id"])}
                allow_on_headers_stop_iteration: {stop}
                vm_config:
                  vm_id: {_q(wasm["vm_id"])}
                  runtime: envoy.wasm.runtime.v8
                  code:
                    local: {{ filename: {_q(str(wasm["path"]))} }}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {_q(wasm["configuration"])}
"""


def _provider_route(name):
    return f"""              - name: {name}
                match:
                  prefix: /masgod/
                  headers:
                  - name: x-selected-provider
                    string_match: {{ exact: {name} }}
                route: {{ cluster: {name}, prefix_rewrite: /, timeout: {ROUTE_TIMEOUT} }}
"""


def gateway_config(admin_port, listen_port, upstream_port, webdis_port, wasm=None):
    """The gateway under test: envoy/envoy.yaml's listener and routes, with or without a filter.

    `wasm` is None (no filter: the bare proxy) or
    {"path": absolute .wasm path, "configuration": the plugin configuration string,
     "vm_id": str, "allow_on_headers_stop_iteration": bool}.
    Requests go to /masgod/…: `x-selected-provider: minmax` or `qianwen` picks that cluster,
    anything else is split 50/50; both clusters are the same upstream.
    """
    wasm_filter = _wasm_filter(wasm) if wasm is not None else ""
    routes = _provider_route("minmax") + _provider_route("qianwen") + f"""              - name: masgod
                match: {{ prefix: /masgod/ }}
                route:
                  prefix_rewrite: /
                  timeout: {ROUTE_TIMEOUT}
                  weighted_clusters:
                    clusters:
                    - {{ name: minmax, weight: 50 }}
                    - {{ name: qianwen, weight: 50 }}
"""
    return (_admin(admin_port) + _listener("gateway", listen_port, wasm_filter, routes)
            + "\n  clusters:\n" + _cluster("minmax", upstream_port)
            + _cluster("qianwen", upstream_port) + _cluster("webdis", webdis_port))
