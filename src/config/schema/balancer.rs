//! The top level, `_rules_` entries and `providers[]`.

use super::health::{HEALTH, PROBE, RETRY, REWRITE, STATUS_ENDPOINT};
use super::pools::{POOL, STRATEGY};
use super::sources::{ENDPOINT, ENGINE_METRICS, IN_FLIGHT, REDIS};
use super::Default::{Described, None as Off, Value};
use super::{int, text, Field, Literal, Object, Shape, TEXT};

/// The whole configuration: a balancer configuration for requests no rule matches, and rules.
pub static PLUGIN: Object = Object {
    groups: &[BALANCER_FIELDS, RULES],
    exactly_one_of: &[],
    at_least_one_of: &["providers", "_rules_"],
};

static RULE: Object = Object {
    groups: &[MATCH_FIELDS, BALANCER_FIELDS],
    exactly_one_of: &[
        "_match_route_",
        "_match_route_prefix_",
        "_match_domain_",
        "_match_service_",
    ],
    at_least_one_of: &[],
};

static RULES: &[Field] = &[Field::new(
    "_rules_",
    "规则",
    Shape::List {
        item: &Shape::Object(&RULE),
        non_empty: false,
    },
    Off,
    "Higress per-route, per-domain or per-service configurations. Each rule has exactly one \
     `_match_*_` field; the first rule matching a request applies, and inherits every top-level \
     field it does not set. No rule matches: the top level applies if it has `providers`, else \
     the request passes through untouched.",
    "Higress 按路由、域名或服务生效的配置。每条规则有且只有一个 `_match_*_` 字段；请求使用第一条匹配的\
     规则，规则未设置的字段继承顶层配置。没有规则匹配时，若顶层配置了 `providers` 则使用顶层配置，\
     否则请求原样通过。",
)];

const NAMES: Shape = Shape::List {
    item: &TEXT,
    non_empty: true,
};

static MATCH_FIELDS: &[Field] = &[
    Field::new(
        "_match_route_",
        "匹配路由",
        NAMES,
        Off,
        "Route names this rule applies to.",
        "此规则生效的路由名称。",
    ),
    Field::new(
        "_match_route_prefix_",
        "匹配路由前缀",
        NAMES,
        Off,
        "Route name prefixes this rule applies to.",
        "此规则生效的路由名称前缀。",
    ),
    Field::new(
        "_match_domain_",
        "匹配域名",
        NAMES,
        Off,
        "Hosts (`:authority`) this rule applies to; `*.example.com` matches every subdomain.",
        "此规则生效的域名（`:authority`）；`*.example.com` 匹配所有子域名。",
    ),
    Field::new(
        "_match_service_",
        "匹配服务",
        NAMES,
        Off,
        "Upstream services (`cluster_name`, as `svc.ns.svc.cluster.local` or with `:port`) this \
         rule applies to.",
        "此规则生效的上游服务（`cluster_name`，形如 `svc.ns.svc.cluster.local`，可带 `:端口`）。",
    ),
];

static BALANCER_FIELDS: &[Field] = &[
    Field::new(
        "providers",
        "服务提供方",
        Shape::List {
            item: &Shape::Object(&PROVIDER),
            non_empty: true,
        },
        Described("required, at the top level or in each rule"),
        "The LLM providers requests are balanced over; at least one, names unique.",
        "参与负载均衡的 LLM 服务提供方，至少一个，名称不可重复。须在顶层或每条规则中配置。",
    ),
    Field::new(
        "redis",
        "Redis 存储",
        Shape::Object(&REDIS),
        Off,
        "The Redis holding providers' loads (`load_source: redis`, the default when this is set), \
         or in-flight counters (`in_flight.scope: replicas`).",
        "保存各提供方负载的 Redis（`load_source: redis`，设置本字段时的默认值），或保存在途请求计数\
         （`in_flight.scope: replicas`）。",
    ),
    Field::new(
        "selected_provider_header",
        "路由请求头",
        TEXT,
        text("x-selected-provider"),
        "The request header the chosen provider's name is written into; the gateway's routes \
         match on it. Lowercased; not one the gateway relies on (`host`, `content-length`, …).",
        "写入所选提供方名称的请求头，网关路由据此匹配。会转为小写；不能是网关依赖的请求头（`host`、\
         `content-length` 等）。",
    ),
    Field::new(
        "rewrite_model_header",
        "目标模型请求头",
        TEXT,
        text("x-rewrite-target-model"),
        "The request header carrying the chosen provider's model name; differs from \
         `selected_provider_header`.",
        "携带所选提供方模型名称的请求头；须与 `selected_provider_header` 不同。",
    ),
    Field::new(
        "max_body_bytes",
        "请求体上限（字节）",
        Shape::Int {
            min: 1,
            max: 128 * 1024 * 1024,
        },
        int(32 * 1024 * 1024),
        "Bodies larger than this are routed but not rewritten; a request whose choice needs the \
         body (`models`, `retry`, body-reading strategies) then passes through unbalanced.",
        "超过此大小的请求体只路由不改写；若选择依赖请求体（`models`、`retry`、需读取请求体的策略），\
         该请求不做负载均衡、原样通过。",
    ),
    Field::new(
        "models",
        "模型池",
        Shape::Map(&Shape::Object(&POOL)),
        Described("none: one pool of every provider"),
        "Model pools: each name clients send (`auto`, `gpt-4`, …) maps to its backends and the \
         strategy that picks among them. The filter reads the body's `model` before routing.",
        "模型池：客户端发送的每个模型名（`auto`、`gpt-4` 等）对应一组后端及其选择策略。插件在路由前\
         读取请求体中的 `model`。",
    ),
    Field::new(
        "strategy",
        "负载均衡策略",
        STRATEGY,
        text("least_load"),
        "Without `models`: the strategy of the one pool of every provider, as a name or \
         `{name, <options>}`. With `models`, each pool sets its own.",
        "未配置 `models` 时：所有提供方组成的单一池的策略，可写策略名或 `{name, <选项>}`。配置 \
         `models` 时由每个池各自设置。",
    ),
    Field::new(
        "unknown_model",
        "未知模型处理",
        TEXT,
        text("reject"),
        "With `models`, for a request whose model is in no pool: `reject` (404 in OpenAI's error \
         format, listing the names there are), `pass_through` (forwarded untouched, unbalanced), \
         or a name in `models` (that pool).",
        "配置 `models` 时，请求的模型不属于任何池的处理方式：`reject`（按 OpenAI 错误格式返回 404，\
         并列出可用名称）、`pass_through`（原样转发，不做负载均衡），或 `models` 中的某个名称（使用该池）。",
    ),
    Field::new(
        "list_models",
        "提供模型列表",
        Shape::Bool,
        Value(Literal::Bool(false)),
        "With `models`: answer `GET …/v1/models` at the gateway with the pool names, in OpenAI's \
         list format.",
        "配置 `models` 时：由网关直接应答 `GET …/v1/models`，按 OpenAI 列表格式返回各池名称。",
    ),
    Field::new(
        "load_source",
        "负载来源",
        Shape::Str {
            values: &["redis", "endpoint", "engine_metrics", "in_flight", "none"],
            non_empty: true,
        },
        Described("`redis` when `redis` is set, else `none`"),
        "Where providers' loads come from; the section of that name configures it, and another \
         source's section is refused. `least_load` and `inference_score` need a source.",
        "各提供方负载的来源，由同名配置段设置；设置其他来源的配置段会被拒绝。`least_load` 与 \
         `inference_score` 策略需要负载来源。",
    ),
    Field::new(
        "endpoint",
        "负载接口",
        Shape::Object(&ENDPOINT),
        Off,
        "`load_source: endpoint`: one HTTP GET answering every provider's figures, e.g. \
         `{\"<provider>\": {\"running\": 3, \"waiting\": 1, \"cache_ratio\": 0.4}}`.",
        "`load_source: endpoint`：一次 HTTP GET 返回所有提供方的指标，例如 \
         `{\"<提供方>\": {\"running\": 3, \"waiting\": 1, \"cache_ratio\": 0.4}}`。",
    ),
    Field::new(
        "engine_metrics",
        "引擎指标采集",
        Shape::Object(&ENGINE_METRICS),
        Described("the defaults of its fields"),
        "`load_source: engine_metrics`: how the engines' Prometheus `/metrics` (vLLM, SGLang) are \
         scraped; each provider names its endpoint in `metrics`.",
        "`load_source: engine_metrics`：推理引擎（vLLM、SGLang）Prometheus `/metrics` 的采集设置；\
         每个提供方在 `metrics` 中给出其地址。",
    ),
    Field::new(
        "in_flight",
        "在途请求计数",
        Shape::Object(&IN_FLIGHT),
        Described("the defaults of its fields"),
        "`load_source: in_flight`: the filter counts its own requests in flight per provider.",
        "`load_source: in_flight`：插件自行统计每个提供方的在途请求数。",
    ),
    Field::new(
        "health",
        "健康检查",
        Shape::Object(&HEALTH),
        Described("on, with the defaults of its fields"),
        "Passive health (always on) and active probes: when a provider is ejected and when it \
         comes back.",
        "被动健康检查（始终开启）与主动探测：提供方何时被摘除、何时恢复。",
    ),
    Field::new(
        "retry",
        "重试",
        Shape::Object(&RETRY),
        Described("off"),
        "Retry a failed request on another provider, through that provider's `cluster`.",
        "请求失败时改用另一个提供方重试，经该提供方的 `cluster` 发出。",
    ),
    Field::new(
        "status_endpoint",
        "状态页",
        Shape::Object(&STATUS_ENDPOINT),
        Described("off"),
        "A JSON status page (providers' health, loads, masked tokens) for the listed source \
         addresses only.",
        "JSON 状态页（提供方健康状态、负载、脱敏的令牌），仅对列出的来源地址开放。",
    ),
    Field::new(
        "paths",
        "均衡的路径",
        NAMES,
        Value(Literal::List(&[
            Literal::Str("/chat/completions"),
            Literal::Str("/completions"),
            Literal::Str("/embeddings"),
            Literal::Str("/responses"),
            Literal::Str("/v1/messages"),
            Literal::Str("/rerank"),
            Literal::Str("/moderations"),
            Literal::Str("/images/generations"),
            Literal::Str("/audio/speech"),
        ])),
        "The request paths (query ignored) this configuration balances: a suffix such as \
         `/chat/completions`, a prefix ending in `*` such as `/llm/*`, or `*` for every path. \
         Any other request passes untouched: no provider chosen, body byte for byte, no API key, \
         while client-sent routing headers are still removed.",
        "本配置均衡的请求路径（忽略查询串）：后缀如 `/chat/completions`，以 `*` 结尾的前缀如 `/llm/*`，\
         或 `*` 表示所有路径。其他请求原样通过：不选择提供方，请求体逐字节不变，不写入 API 密钥，\
         但客户端发送的路由请求头仍会被移除。",
    ),
    Field::new(
        "route_names",
        "均衡的路由",
        NAMES,
        Described("every route"),
        "Route names (the `route_name` the gateway gives) this configuration balances; requests \
         on other routes, or where the gateway names no route, pass untouched.",
        "本配置均衡的路由名称（网关提供的 `route_name`）；其他路由上的请求，或网关未提供路由名称的请求，\
         原样通过。",
    ),
];

static PROVIDER: Object = Object::of(&[PROVIDER_FIELDS]);

static PROVIDER_FIELDS: &[Field] = &[
    Field::new(
        "name",
        "名称",
        TEXT,
        Off,
        "The value written to the routing header (`selected_provider_header`); unique, without \
         control characters or surrounding spaces.",
        "写入路由请求头（`selected_provider_header`）的值；不可重复，不能含控制字符或首尾空格。",
    )
    .required(),
    Field::new(
        "key",
        "Redis 键",
        TEXT,
        Described("the name"),
        "Its load's Redis key (or hash) is `redis.key_prefix` + `key`.",
        "其负载所在的 Redis 键（或哈希）为 `redis.key_prefix` + `key`。",
    ),
    Field::new(
        "model",
        "模型",
        TEXT,
        Described("none: the body's model is left as sent"),
        "The model name this provider expects: written into the body's `model` and into \
         `rewrite_model_header`.",
        "该提供方期望的模型名：写入请求体的 `model` 和 `rewrite_model_header`。",
    ),
    Field::new(
        "weight",
        "权重",
        Shape::Int {
            min: 0,
            max: 1_000_000,
        },
        int(1),
        "Share of traffic when loads are unknown, and for weighted strategies; at least one \
         provider needs a weight above 0.",
        "负载未知时及加权策略下的流量占比；至少一个提供方的权重须大于 0。",
    ),
    Field::new(
        "metrics",
        "引擎指标地址",
        Shape::Object(&METRICS),
        Off,
        "`load_source: engine_metrics` (required there, refused otherwise): its engine's \
         Prometheus endpoint.",
        "`load_source: engine_metrics` 时必填（其他来源下不可设置）：其推理引擎的 Prometheus 指标地址。",
    ),
    Field::new(
        "cluster",
        "集群",
        TEXT,
        Off,
        "The Envoy cluster the filter itself sends this provider's retries and health probes to \
         (the routes are not used). Providers without it are neither retried on nor probed.",
        "插件直接向其发送该提供方的重试请求和健康探测的 Envoy 集群（不经路由）。未设置的提供方不参与\
         重试，也不会被探测。",
    ),
    Field::new(
        "prefix_rewrite",
        "路径前缀改写",
        Shape::Object(&REWRITE),
        Off,
        "Needs `cluster`. The path rewrite this provider's route applies (e.g. \
         `{from: /masgod/, to: /}`), applied to the paths of retried requests.",
        "需要 `cluster`。该提供方路由所做的路径改写（如 `{from: /masgod/, to: /}`），用于重试请求的路径。",
    ),
    Field::new(
        "probe",
        "健康探测",
        Shape::Object(&PROBE),
        Described("`GET /v1/models`, expecting 2xx"),
        "Needs `cluster`. The request that probes this provider while it is out.",
        "需要 `cluster`。该提供方被摘除期间用于探测的请求。",
    ),
    Field::new(
        "api_tokens",
        "API 密钥",
        Shape::List {
            item: &TEXT,
            non_empty: true,
        },
        Off,
        "API keys: each request carries one usable key, at random, in place of the client's. \
         Printable, without spaces, no duplicates; logs, stats and the status page show them \
         masked.",
        "API 密钥池：每个请求随机携带一个可用密钥，替换客户端的密钥。须为不含空格的可打印字符，不可重复；\
         日志、统计和状态页中只显示脱敏后的值。",
    ),
    Field::new(
        "token_header",
        "密钥请求头",
        TEXT,
        text("authorization"),
        "Needs `api_tokens`. Where the key goes: `authorization` gets `Bearer <key>`, any other \
         header the bare key (e.g. Azure's `api-key`).",
        "需要 `api_tokens`。密钥写入的请求头：`authorization` 写为 `Bearer <密钥>`，其他请求头写入密钥本身\
         （如 Azure 的 `api-key`）。",
    ),
];

static METRICS: Object = Object::of(&[&[
    Field::new(
        "cluster",
        "集群",
        TEXT,
        Off,
        "The Envoy cluster serving the engine's metrics.",
        "提供引擎指标的 Envoy 集群。",
    )
    .required(),
    Field::new(
        "path",
        "路径",
        TEXT,
        text("/metrics"),
        "Path of its Prometheus text endpoint; starts with `/`.",
        "Prometheus 文本格式指标的路径，以 `/` 开头。",
    ),
]]);
