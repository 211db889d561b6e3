//! Health, retry and the status page: `health`, `retry`, `status_endpoint`, and a provider's
//! `probe` and `prefix_rewrite`.

use serde::Deserialize;

use super::values::{Either, StatusRange, Text, Whole};

/// Passive and active health rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub struct Health {
    /// Failures in a row that eject a provider (or make an API key unavailable); 0 never ejects.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "失败阈值"},
            "x-description-i18n" = {"zh-CN": "连续失败达到此次数即摘除提供方（或使 API 密钥不可用）；0 表示从不摘除。"},
            "default" = 3
        ))
    )]
    pub failure_threshold: Option<Whole<0, 1000>>,
    /// Statuses that count as a provider's failure: numbers (100 to 599) or classes like `"5xx"`.
    /// No response at all (refused, reset, timed out) always does.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "失败状态码"},
            "x-description-i18n" = {"zh-CN": "视为提供方失败的状态码：数字（100 到 599）或 `\"5xx\"` 这样的类别。完全没有响应（拒绝、重置、超时）总是视为失败。"},
            "default" = [429, "5xx"]
        ))
    )]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(length(min = 1)))]
    pub failure_statuses: Option<Vec<StatusRange>>,
    /// How long an ejected provider stays out before a half-open trial request.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "冷却时间（毫秒）"},
            "x-description-i18n" = {"zh-CN": "被摘除的提供方在半开试探请求之前保持摘除的时长。"},
            "default" = 10000
        ))
    )]
    pub cooldown_ms: Option<Whole<100, 3_600_000>>,
    /// A 429's `Retry-After` ejects the provider at once for that long, at most this.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "Retry-After 上限（毫秒）"},
            "x-description-i18n" = {"zh-CN": "429 响应的 `Retry-After` 会立即摘除提供方相应时长，最多为此值。"},
            "default" = 60000
        ))
    )]
    pub max_retry_after_ms: Option<Whole<0, 3_600_000>>,
    /// Good probe answers in a row that bring a provider (or API key) back.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "恢复阈值"},
            "x-description-i18n" = {"zh-CN": "连续成功的探测次数达到此值后，提供方（或 API 密钥）恢复。"},
            "default" = 1
        ))
    )]
    pub success_threshold: Option<Whole<1, 100>>,
    /// Active probes of providers (and API keys) that are out, sent by one worker through each
    /// provider's `cluster`: `false` turns them off, a mapping sets their schedule.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "主动探测"},
            "x-description-i18n" = {"zh-CN": "对已摘除的提供方（及 API 密钥）的主动探测，由一个 worker 经各提供方的 `cluster` 发出：`false` 关闭探测，映射用于设置探测计划。"},
            "default" = true
        ))
    )]
    pub probe: Option<Either<bool, ProbeSchedule>>,
}

/// How often providers are probed, and how long a probe may take.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub struct ProbeSchedule {
    /// How often providers that are out are probed.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "探测间隔（毫秒）"},
            "x-description-i18n" = {"zh-CN": "探测已摘除提供方的间隔。"},
            "default" = 5000
        ))
    )]
    pub interval_ms: Option<Whole<100, 3_600_000>>,
    /// How long a probe may take.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "探测超时（毫秒）"},
            "x-description-i18n" = {"zh-CN": "一次探测的超时时间。"},
            "default" = 2000
        ))
    )]
    pub timeout_ms: Option<Whole<10, 60_000>>,
}

/// Retry on another provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub struct Retry {
    /// Retries on other providers, per request.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "最大重试次数"},
            "x-description-i18n" = {"zh-CN": "每个请求在其他提供方上的最大重试次数。"},
            "default" = 1
        ))
    )]
    pub max_retries: Option<Whole<1, 10>>,
    /// Every attempt must fit within this much time from the request's start.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "重试时间预算（毫秒）"},
            "x-description-i18n" = {"zh-CN": "从请求开始起，所有尝试须在此时长内完成。"},
            "default" = 30000
        ))
    )]
    pub budget_ms: Option<Whole<100, 600_000>>,
}

/// The opt-in status page.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub struct StatusEndpoint {
    /// The status page's path; starts with `/`.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "路径"},
            "x-description-i18n" = {"zh-CN": "状态页路径，以 `/` 开头。"}
        ))
    )]
    pub path: Text,
    /// Source addresses or CIDR blocks that may read the page, e.g. `127.0.0.1`, `10.0.0.0/8`; from
    /// any other address the request goes on as if the page did not exist.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "允许的来源地址"},
            "x-description-i18n" = {"zh-CN": "可以读取状态页的来源地址或 CIDR 网段，如 `127.0.0.1`、`10.0.0.0/8`；来自其他地址的请求如同状态页不存在一样继续处理。"}
        ))
    )]
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(required, length(min = 1), inner(length(min = 1)))
    )]
    pub allowed_sources: Option<Vec<String>>,
    /// Off: a request carrying `X-Forwarded-For` is never served the page, since under Envoy's
    /// default `use_remote_address: false` the source address comes from that header, which any
    /// client can write. Turn on only where the connection manager sets `use_remote_address: true`
    /// (or trusted hops), so that Envoy decides the source.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "信任 X-Forwarded-For"},
            "x-description-i18n" = {"zh-CN": "关闭时，携带 `X-Forwarded-For` 的请求一律不返回状态页：Envoy 默认 `use_remote_address: false`，来源地址取自该请求头，而任何客户端都可以伪造它。仅在连接管理器设置 `use_remote_address: true`（或可信跳数）、由 Envoy 决定来源地址时开启。"},
            "default" = false
        ))
    )]
    pub trust_forwarded_for: Option<bool>,
}

/// A provider's health probe request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub struct Probe {
    /// The probe's HTTP method, in capitals.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "方法"},
            "x-description-i18n" = {"zh-CN": "探测请求的 HTTP 方法，须为大写。"},
            "x-default-description" = "`GET`, or `POST` with a `body`"
        ))
    )]
    pub method: Option<Text>,
    /// The probe's path; starts with `/`. `GET /v1/models` costs no tokens.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "路径"},
            "x-description-i18n" = {"zh-CN": "探测请求的路径，以 `/` 开头。`GET /v1/models` 不消耗 token。"},
            "default" = "/v1/models"
        ))
    )]
    pub path: Option<Text>,
    /// The probe's body; makes it a `POST` unless `method` says otherwise.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "请求体"},
            "x-description-i18n" = {"zh-CN": "探测请求的请求体；设置后除非另行指定 `method`，否则使用 `POST`。"}
        ))
    )]
    pub body: Option<String>,
    /// Statuses that count as a good answer: numbers (100 to 599) or classes like `"2xx"`.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "期望状态码"},
            "x-description-i18n" = {"zh-CN": "视为探测成功的状态码：数字（100 到 599）或 `\"2xx\"` 这样的类别。"},
            "default" = ["2xx"]
        ))
    )]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(length(min = 1)))]
    pub expected_statuses: Option<Vec<StatusRange>>,
}

/// The route's path rewrite, applied to a retried request's path.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub struct PrefixRewrite {
    /// The path prefix the route replaces.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "原前缀"},
            "x-description-i18n" = {"zh-CN": "路由替换掉的路径前缀。"}
        ))
    )]
    pub from: Text,
    /// What replaces it.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "新前缀"},
            "x-description-i18n" = {"zh-CN": "替换后的前缀。"},
            "default" = ""
        ))
    )]
    pub to: Option<String>,
}

/// Steering away before the 429: a provider (or an API key of its pool) whose answers say fewer
/// remaining requests or tokens than these floors is avoided until the budget's reset, and used
/// only when nothing else is available. Read from the rate-limit headers of OpenAI, Azure OpenAI,
/// Groq, Mistral, Anthropic and the IETF draft (`RateLimit-Remaining`). Presence turns it on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub struct RateLimits {
    /// Fewer remaining requests than this is low; 0 does not watch requests.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "最少剩余请求数"},
            "x-description-i18n" = {"zh-CN": "剩余请求数低于此值即视为不足；0 表示不关注请求数。"},
            "default" = 1
        ))
    )]
    pub min_remaining_requests: Option<Whole<0, 1_000_000>>,
    /// Fewer remaining tokens than this is low; 0 does not watch tokens.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "最少剩余 token 数"},
            "x-description-i18n" = {"zh-CN": "剩余 token 数低于此值即视为不足；0 表示不关注 token 数。"},
            "default" = 1
        ))
    )]
    pub min_remaining_tokens: Option<Whole<0, 1_000_000>>,
}
