//! The configuration as written: plain types serde reads (unknown fields refused, every error
//! with its path), before `validate` checks what one field says about another and builds the
//! runtime types. Their doc comments and zh-CN extensions describe each field for the
//! generated schema (natively only: the module never needs it).

mod pool_rules;
mod pools;
mod resilience;
mod sources;
mod values;
#[cfg(not(target_arch = "wasm32"))]
mod values_schema;

use serde::Deserialize;

use super::balancer::MAX_BODY_BYTES_CEILING;

pub use pools::{Backend, Models, Pool, SessionAffinity, Spillover, StrategyName, StrategyOptions};
pub use resilience::{
    Health, PrefixRewrite, Probe, ProbeSchedule, RateLimits, Retry, StatusEndpoint,
};
pub use sources::{
    Endpoint, EngineMetrics, HashFields, InFlight, LoadFormat, LoadSourceName, Redis, RefreshMode,
    ReplicaScope,
};
pub use values::{kind, Either, Secret, Secrets, StatusRange, Text, UpTo, Whole};

/// A strategy by name, or a mapping with its name and options.
pub type StrategyChoice = Either<StrategyName, StrategyOptions>;

/// One complete balancing configuration: the plugin's top level, and each `_rules_` entry
/// (with the top level's fields it does not set).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub struct Balancer {
    /// The LLM providers requests are balanced over; at least one, names unique.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "服务提供方"},
            "x-description-i18n" = {"zh-CN": "参与负载均衡的 LLM 服务提供方，至少一个，名称不可重复。须在顶层或每条规则中配置。"},
            "x-default-description" = "required, at the top level or in each rule"
        ))
    )]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(length(min = 1)))]
    pub providers: Option<Vec<Provider>>,
    /// The Redis holding providers' loads (`load_source: redis`, the default when this is set), or
    /// in-flight counters (`in_flight.scope: replicas`).
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "Redis 存储"},
            "x-description-i18n" = {"zh-CN": "保存各提供方负载的 Redis（`load_source: redis`，设置本字段时的默认值），或保存在途请求计数（`in_flight.scope: replicas`）。"}
        ))
    )]
    pub redis: Option<Redis>,
    /// The request header the chosen provider's name is written into; the gateway's routes match on
    /// it. Lowercased; not one the gateway relies on (`host`, `content-length`, …).
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "路由请求头"},
            "x-description-i18n" = {"zh-CN": "写入所选提供方名称的请求头，网关路由据此匹配。会转为小写；不能是网关依赖的请求头（`host`、`content-length` 等）。"},
            "default" = "x-selected-provider"
        ))
    )]
    pub selected_provider_header: Option<Text>,
    /// The request header carrying the chosen provider's model name; differs from
    /// `selected_provider_header`.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "目标模型请求头"},
            "x-description-i18n" = {"zh-CN": "携带所选提供方模型名称的请求头；须与 `selected_provider_header` 不同。"},
            "default" = "x-rewrite-target-model"
        ))
    )]
    pub rewrite_model_header: Option<Text>,
    /// Bodies held whole larger than this are routed but not rewritten; a request whose choice
    /// needs the body (`models`, `retry`, body-reading strategies) then passes through
    /// unbalanced. A body rewritten as it passes (it came after the choice) has no limit.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "请求体上限（字节）"},
            "x-description-i18n" = {"zh-CN": "整体缓存的请求体超过此大小时只路由不改写；若选择依赖请求体（`models`、`retry`、需读取请求体的策略），该请求不做负载均衡、原样通过。在选定后才到达、边传边改写的请求体不受此限制。"},
            "default" = 33554432
        ))
    )]
    pub max_body_bytes: Option<Whole<1, MAX_BODY_BYTES_CEILING>>,
    /// Model pools: each name clients send (`auto`, `gpt-4`, …) maps to its backends and the
    /// strategy that picks among them. The filter reads the body's `model` before routing.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "模型池"},
            "x-description-i18n" = {"zh-CN": "模型池：客户端发送的每个模型名（`auto`、`gpt-4` 等）对应一组后端及其选择策略。插件在路由前读取请求体中的 `model`。"},
            "x-default-description" = "none: one pool of every provider"
        ))
    )]
    pub models: Option<Models>,
    /// Without `models`: the strategy of the one pool of every provider, as a name or `{name,
    /// <options>}`. With `models`, each pool sets its own.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "负载均衡策略"},
            "x-description-i18n" = {"zh-CN": "未配置 `models` 时：所有提供方组成的单一池的策略，可写策略名或 `{name, <选项>}`。配置 `models` 时由每个池各自设置。"},
            "default" = "least_load"
        ))
    )]
    pub strategy: Option<StrategyChoice>,
    /// Without `models`: backends in tiers (providers' `tier`), the first tier kept while its
    /// least loaded backend is under `max_load`. With `models`, each pool sets its own.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "分级溢出"},
            "x-description-i18n" = {"zh-CN": "未配置 `models` 时：后端按提供方的 `tier` 分级，第一级中负载最低的后端低于 `max_load` 时请求留在该级。配置 `models` 时由每个池各自设置。"},
            "x-default-description" = "off: one tier"
        ))
    )]
    pub spillover: Option<Spillover>,
    /// Without `models`: requests with the same session key go to the same provider. With
    /// `models`, each pool sets its own.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "会话亲和"},
            "x-description-i18n" = {"zh-CN": "未配置 `models` 时：会话键相同的请求发往同一提供方。配置 `models` 时由每个池各自设置。"},
            "x-default-description" = "off"
        ))
    )]
    pub session_affinity: Option<SessionAffinity>,
    /// Without `models`: steer away from a provider (or an API key) whose rate-limit headers say
    /// its remaining requests or tokens are below these floors, until its reset (a soft ejection:
    /// used only when nothing else is available). With `models`, each pool sets its own.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "限流感知"},
            "x-description-i18n" = {"zh-CN": "未配置 `models` 时：提供方（或 API 密钥）的限流响应头表明其剩余请求数或 token 数低于这些下限时，在其重置之前避开它（软摘除：仅在没有其他可用后端时使用）。配置 `models` 时由每个池各自设置。"},
            "x-default-description" = "off"
        ))
    )]
    pub rate_limits: Option<RateLimits>,
    /// With `models`, for a request whose model is in no pool: `reject` (404 in OpenAI's error
    /// format, listing the names there are), `pass_through` (forwarded untouched, unbalanced), or a
    /// name in `models` (that pool).
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "未知模型处理"},
            "x-description-i18n" = {"zh-CN": "配置 `models` 时，请求的模型不属于任何池的处理方式：`reject`（按 OpenAI 错误格式返回 404，并列出可用名称）、`pass_through`（原样转发，不做负载均衡），或 `models` 中的某个名称（使用该池）。"},
            "default" = "reject"
        ))
    )]
    pub unknown_model: Option<Text>,
    /// With `models`: answer `GET …/v1/models` at the gateway with the pool names, in OpenAI's list
    /// format.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "提供模型列表"},
            "x-description-i18n" = {"zh-CN": "配置 `models` 时：由网关直接应答 `GET …/v1/models`，按 OpenAI 列表格式返回各池名称。"},
            "default" = false
        ))
    )]
    pub list_models: Option<bool>,
    /// Where providers' loads come from; the section of that name configures it, and another
    /// source's section is refused. `least_load` and `inference_score` need a source.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "负载来源"},
            "x-description-i18n" = {"zh-CN": "各提供方负载的来源，由同名配置段设置；设置其他来源的配置段会被拒绝。`least_load` 与 `inference_score` 策略需要负载来源。"},
            "x-default-description" = "`redis` when `redis` is set, else `none`"
        ))
    )]
    pub load_source: Option<LoadSourceName>,
    /// `load_source: endpoint`: one HTTP GET answering every provider's figures, e.g.
    /// `{"<provider>": {"running": 3, "waiting": 1, "cache_ratio": 0.4}}`.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "负载接口"},
            "x-description-i18n" = {"zh-CN": "`load_source: endpoint`：一次 HTTP GET 返回所有提供方的指标，例如 `{\"<提供方>\": {\"running\": 3, \"waiting\": 1, \"cache_ratio\": 0.4}}`。"}
        ))
    )]
    pub endpoint: Option<Endpoint>,
    /// `load_source: engine_metrics`: how the engines' Prometheus `/metrics` (vLLM, SGLang) are
    /// scraped; each provider names its endpoint in `metrics`.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "引擎指标采集"},
            "x-description-i18n" = {"zh-CN": "`load_source: engine_metrics`：推理引擎（vLLM、SGLang）Prometheus `/metrics` 的采集设置；每个提供方在 `metrics` 中给出其地址。"},
            "x-default-description" = "the defaults of its fields"
        ))
    )]
    pub engine_metrics: Option<EngineMetrics>,
    /// `load_source: in_flight`: the filter counts its own requests in flight per provider.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "在途请求计数"},
            "x-description-i18n" = {"zh-CN": "`load_source: in_flight`：插件自行统计每个提供方的在途请求数。"},
            "x-default-description" = "the defaults of its fields"
        ))
    )]
    pub in_flight: Option<InFlight>,
    /// Passive health (always on) and active probes: when a provider is ejected and when it comes
    /// back.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "健康检查"},
            "x-description-i18n" = {"zh-CN": "被动健康检查（始终开启）与主动探测：提供方何时被摘除、何时恢复。"},
            "x-default-description" = "on, with the defaults of its fields"
        ))
    )]
    pub health: Option<Health>,
    /// Retry a failed request on another provider, through that provider's `cluster`.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "重试"},
            "x-description-i18n" = {"zh-CN": "请求失败时改用另一个提供方重试，经该提供方的 `cluster` 发出。"},
            "x-default-description" = "off"
        ))
    )]
    pub retry: Option<Retry>,
    /// A JSON status page (providers' health, loads, masked tokens) for the listed source addresses
    /// only.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "状态页"},
            "x-description-i18n" = {"zh-CN": "JSON 状态页（提供方健康状态、负载、脱敏的令牌），仅对列出的来源地址开放。"},
            "x-default-description" = "off"
        ))
    )]
    pub status_endpoint: Option<StatusEndpoint>,
    /// The request paths (query ignored) this configuration balances: a suffix such as
    /// `/chat/completions`, a prefix ending in `*` such as `/llm/*`, or `*` for every path. Any
    /// other request passes untouched: no provider chosen, body byte for byte, no API key, while
    /// client-sent routing headers are still removed.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "均衡的路径"},
            "x-description-i18n" = {"zh-CN": "本配置均衡的请求路径（忽略查询串）：后缀如 `/chat/completions`，以 `*` 结尾的前缀如 `/llm/*`，或 `*` 表示所有路径。其他请求原样通过：不选择提供方，请求体逐字节不变，不写入 API 密钥，但客户端发送的路由请求头仍会被移除。"},
            "default" = ["/chat/completions", "/completions", "/embeddings", "/responses", "/v1/messages", "/rerank", "/moderations", "/images/generations", "/audio/speech"]
        ))
    )]
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(length(min = 1), inner(length(min = 1)))
    )]
    pub paths: Option<Vec<String>>,
    /// Route names (the `route_name` the gateway gives) this configuration balances; requests on
    /// other routes, or where the gateway names no route, pass untouched.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "均衡的路由"},
            "x-description-i18n" = {"zh-CN": "本配置均衡的路由名称（网关提供的 `route_name`）；其他路由上的请求，或网关未提供路由名称的请求，原样通过。"},
            "x-default-description" = "every route"
        ))
    )]
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(length(min = 1), inner(length(min = 1)))
    )]
    pub route_names: Option<Vec<String>>,
}

/// One LLM provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub struct Provider {
    /// The value written to the routing header (`selected_provider_header`); unique, without
    /// control characters or surrounding spaces.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "名称"},
            "x-description-i18n" = {"zh-CN": "写入路由请求头（`selected_provider_header`）的值；不可重复，不能含控制字符或首尾空格。"}
        ))
    )]
    pub name: Text,
    /// Its load's Redis key (or hash) is `redis.key_prefix` + `key`.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "Redis 键"},
            "x-description-i18n" = {"zh-CN": "其负载所在的 Redis 键（或哈希）为 `redis.key_prefix` + `key`。"},
            "x-default-description" = "the name"
        ))
    )]
    pub key: Option<Text>,
    /// The model name this provider expects: written into the body's `model` and into
    /// `rewrite_model_header`.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "模型"},
            "x-description-i18n" = {"zh-CN": "该提供方期望的模型名：写入请求体的 `model` 和 `rewrite_model_header`。"},
            "x-default-description" = "none: the body's model is left as sent"
        ))
    )]
    pub model: Option<Text>,
    /// Share of traffic when loads are unknown, and for weighted strategies; at least one provider
    /// needs a weight above 0.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "权重"},
            "x-description-i18n" = {"zh-CN": "负载未知时及加权策略下的流量占比；至少一个提供方的权重须大于 0。"},
            "default" = 1
        ))
    )]
    pub weight: Option<Whole<0, 1_000_000>>,
    /// Its `spillover` tier, the lowest first (e.g. 0 for self-hosted engines, 1 for a paid API);
    /// a pool's backend may set its own. Only with `spillover`.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "级别"},
            "x-description-i18n" = {"zh-CN": "其 `spillover` 级别，数值小者优先（例如自建推理引擎为 0，付费 API 为 1）；池中的后端可单独设置。仅与 `spillover` 一起使用。"},
            "default" = 0
        ))
    )]
    pub tier: Option<Whole<0, 1_000_000>>,
    /// `load_source: engine_metrics` (required there, refused otherwise): its engine's Prometheus
    /// endpoint.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "引擎指标地址"},
            "x-description-i18n" = {"zh-CN": "`load_source: engine_metrics` 时必填（其他来源下不可设置）：其推理引擎的 Prometheus 指标地址。"}
        ))
    )]
    pub metrics: Option<Metrics>,
    /// The Envoy cluster the filter itself sends this provider's retries and health probes to (the
    /// routes are not used). Providers without it are neither retried on nor probed.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "集群"},
            "x-description-i18n" = {"zh-CN": "插件直接向其发送该提供方的重试请求和健康探测的 Envoy 集群（不经路由）。未设置的提供方不参与重试，也不会被探测。"}
        ))
    )]
    pub cluster: Option<Text>,
    /// Needs `cluster`. The path rewrite this provider's route applies (e.g. `{from: /masgod/, to:
    /// /}`), applied to the paths of retried requests.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "路径前缀改写"},
            "x-description-i18n" = {"zh-CN": "需要 `cluster`。该提供方路由所做的路径改写（如 `{from: /masgod/, to: /}`），用于重试请求的路径。"}
        ))
    )]
    pub prefix_rewrite: Option<PrefixRewrite>,
    /// Needs `cluster`. The request that probes this provider while it is out.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "健康探测"},
            "x-description-i18n" = {"zh-CN": "需要 `cluster`。该提供方被摘除期间用于探测的请求。"},
            "x-default-description" = "`GET /v1/models`, expecting 2xx"
        ))
    )]
    pub probe: Option<Probe>,
    /// API keys: each request carries one usable key, at random, in place of the client's.
    /// Printable, without spaces, no duplicates; logs, stats and the status page show them masked.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "API 密钥"},
            "x-description-i18n" = {"zh-CN": "API 密钥池：每个请求随机携带一个可用密钥，替换客户端的密钥。须为不含空格的可打印字符，不可重复；日志、统计和状态页中只显示脱敏后的值。"}
        ))
    )]
    pub api_tokens: Option<Secrets>,
    /// Needs `api_tokens`. Where the key goes: `authorization` gets `Bearer <key>`, any other
    /// header the bare key (e.g. Azure's `api-key`).
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "密钥请求头"},
            "x-description-i18n" = {"zh-CN": "需要 `api_tokens`。密钥写入的请求头：`authorization` 写为 `Bearer <密钥>`，其他请求头写入密钥本身（如 Azure 的 `api-key`）。"},
            "default" = "authorization"
        ))
    )]
    pub token_header: Option<Text>,
}

/// Where a provider's engine serves its Prometheus `/metrics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub struct Metrics {
    /// The Envoy cluster serving the engine's metrics.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "集群"},
            "x-description-i18n" = {"zh-CN": "提供引擎指标的 Envoy 集群。"}
        ))
    )]
    pub cluster: Text,
    /// Path of its Prometheus text endpoint; starts with `/`.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "路径"},
            "x-description-i18n" = {"zh-CN": "Prometheus 文本格式指标的路径，以 `/` 开头。"},
            "default" = "/metrics"
        ))
    )]
    pub path: Option<Text>,
}

/// The `_match_*_` keys of a `_rules_` entry (read by `rules::RuleMatch`; described here so
/// the schema of a rule comes from types too).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub struct RuleMatch {
    /// Route names this rule applies to.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "匹配路由"},
            "x-description-i18n" = {"zh-CN": "此规则生效的路由名称。"}
        ))
    )]
    #[serde(rename = "_match_route_")]
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(length(min = 1), inner(length(min = 1)))
    )]
    pub route: Option<Vec<String>>,
    /// Route name prefixes this rule applies to.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "匹配路由前缀"},
            "x-description-i18n" = {"zh-CN": "此规则生效的路由名称前缀。"}
        ))
    )]
    #[serde(rename = "_match_route_prefix_")]
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(length(min = 1), inner(length(min = 1)))
    )]
    pub route_prefix: Option<Vec<String>>,
    /// Hosts (`:authority`) this rule applies to; `*.example.com` matches every subdomain.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "匹配域名"},
            "x-description-i18n" = {"zh-CN": "此规则生效的域名（`:authority`）；`*.example.com` 匹配所有子域名。"}
        ))
    )]
    #[serde(rename = "_match_domain_")]
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(length(min = 1), inner(length(min = 1)))
    )]
    pub domain: Option<Vec<String>>,
    /// Upstream services (`cluster_name`, as `svc.ns.svc.cluster.local` or with `:port`) this rule
    /// applies to.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "匹配服务"},
            "x-description-i18n" = {"zh-CN": "此规则生效的上游服务（`cluster_name`，形如 `svc.ns.svc.cluster.local`，可带 `:端口`）。"}
        ))
    )]
    #[serde(rename = "_match_service_")]
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(length(min = 1), inner(length(min = 1)))
    )]
    pub service: Option<Vec<String>>,
}

/// The whole document as the schema describes it: a configuration (`Balancer`, its fields at the
/// top level) plus `_rules_`. The parser reads the same parts (`PluginConfig::parse`); this type
/// only joins them for the schema, with the rules derive cannot state: `providers` or `_rules_`.
#[cfg(not(target_arch = "wasm32"))]
#[derive(schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "ai-load-balancer",
    description = "Configuration of the ai-load-balancer proxy-wasm filter: the LLM providers, where their loads come from, model pools and strategies, health and retries.",
    extend(
        "$comment" = "Generated from the configuration's types (src/config/document/) by tests/schema.rs; regenerate with UPDATE_SCHEMA=1 cargo test --test schema.",
        "x-description-i18n" = {"zh-CN": "ai-load-balancer 插件配置：LLM 服务提供方、负载来源、模型池与策略、健康检查与重试。"},
        "anyOf" = [{"required": ["providers"]}, {"required": ["_rules_"]}]
    )
)]
pub struct Plugin {
    #[serde(flatten)]
    pub balancer: Balancer,
    /// Higress per-route, per-domain or per-service configurations. Each rule has exactly one
    /// `_match_*_` field; the first rule matching a request applies, and inherits every top-level
    /// field it does not set. No rule matches: the top level applies if it has `providers`, else
    /// the request passes through untouched.
    #[schemars(extend(
        "x-title-i18n" = {"zh-CN": "规则"},
        "x-description-i18n" = {"zh-CN": "Higress 按路由、域名或服务生效的配置。每条规则有且只有一个 `_match_*_` 字段；请求使用第一条匹配的规则，规则未设置的字段继承顶层配置。没有规则匹配时，若顶层配置了 `providers` 则使用顶层配置，否则请求原样通过。"}
    ))]
    #[serde(rename = "_rules_")]
    pub rules: Option<Vec<Rule>>,
}

/// One `_rules_` entry: exactly one `_match_*_` key, and the configuration fields it sets.
#[cfg(not(target_arch = "wasm32"))]
#[derive(schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [
    {"required": ["_match_route_"]},
    {"required": ["_match_route_prefix_"]},
    {"required": ["_match_domain_"]},
    {"required": ["_match_service_"]}
]))]
pub struct Rule {
    #[serde(flatten)]
    pub matcher: RuleMatch,
    #[serde(flatten)]
    pub balancer: Balancer,
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// Every property of every object, with the place it was found.
    fn properties<'a>(node: &'a Value, at: &str, found: &mut Vec<(String, &'a Value)>) {
        if let Some(fields) = node["properties"].as_object() {
            for (name, field) in fields {
                found.push((format!("{at}.{name}"), field));
            }
        }
        if let Some(definitions) = node["$defs"].as_object() {
            for (name, definition) in definitions {
                properties(definition, name, found);
            }
        }
    }

    #[test]
    fn every_field_of_the_document_is_described_in_english_and_chinese() {
        let schema = schemars::schema_for!(super::Plugin);
        let schema = serde_json::to_value(schema).unwrap();
        let mut found = Vec::new();
        properties(&schema, "Plugin", &mut found);
        assert!(found.len() > 80, "{} fields", found.len());
        for (place, field) in found {
            let english = field["description"].as_str().unwrap_or("");
            assert!(!english.is_empty(), "{place}: description");
            for key in ["x-title-i18n", "x-description-i18n"] {
                let chinese = field[key]["zh-CN"].as_str().unwrap_or("");
                assert!(chinese.chars().any(|c| c > '\u{2e80}'), "{place}: {key}");
            }
        }
    }
}
