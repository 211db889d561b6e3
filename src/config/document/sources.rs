//! Where providers' loads come from: `load_source` and its sections.

use serde::Deserialize;

use super::values::{Secret, Text, Whole};
use crate::config::Protocol;

/// Which source the loads come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub enum LoadSourceName {
    Redis,
    Endpoint,
    EngineMetrics,
    InFlight,
    None,
}

/// When the store is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub enum RefreshMode {
    PerRequest,
    Background,
}

/// How a provider's load is kept in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub enum LoadFormat {
    Key,
    Hash,
}

/// Where in-flight counts are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub enum ReplicaScope {
    Gateway,
    Replicas,
}

/// The Redis holding providers' loads, or in-flight counters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub struct Redis {
    /// With `service_port`: the cluster is `outbound|<port>||<service_name>` (Higress's naming).
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "服务名称"},
            "x-description-i18n" = {"zh-CN": "与 `service_port` 一起使用：集群为 `outbound|<端口>||<服务名称>`（Higress 的命名方式）。"}
        ))
    )]
    pub service_name: Option<Text>,
    /// The port of `service_name`; required with it.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "服务端口"},
            "x-description-i18n" = {"zh-CN": "`service_name` 的端口；设置 `service_name` 时必填。"}
        ))
    )]
    pub service_port: Option<Whole<1, 65535>>,
    /// The Envoy cluster's name; wins over `service_name`. One of the two is required.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "集群"},
            "x-description-i18n" = {"zh-CN": "Envoy 集群名称，优先于 `service_name`。二者必须设置其一。"}
        ))
    )]
    pub cluster: Option<Text>,
    /// RESP: the Redis AUTH user (Higress); Webdis: the HTTP Basic user of Webdis's ACL.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "用户名"},
            "x-description-i18n" = {"zh-CN": "RESP：Redis AUTH 用户名（Higress）；Webdis：Webdis ACL 的 HTTP Basic 用户名。"}
        ))
    )]
    pub username: Option<Text>,
    /// RESP: the Redis AUTH password; Webdis: the HTTP Basic password.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "密码"},
            "x-description-i18n" = {"zh-CN": "RESP：Redis AUTH 密码；Webdis：HTTP Basic 密码。"}
        ))
    )]
    pub password: Option<Secret>,
    /// The database number. RESP: `?db=N` on the cluster; Webdis: `/N/MGET/…`.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "数据库"},
            "x-description-i18n" = {"zh-CN": "数据库编号。RESP：集群名后加 `?db=N`；Webdis：`/N/MGET/…`。"}
        ))
    )]
    pub database: Option<Whole<0, 65535>>,
    /// How long a read may take; past it the read counts as failed and weights decide.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "超时（毫秒）"},
            "x-description-i18n" = {"zh-CN": "一次读取的超时时间；超时视为失败，由权重决定。"},
            "default" = 100
        ))
    )]
    pub timeout_ms: Option<Whole<1, 60_000>>,
    /// Prefix of every provider's key, and of the in-flight counters' keys.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "键前缀"},
            "x-description-i18n" = {"zh-CN": "每个提供方负载键的前缀，也是在途请求计数键的前缀。"},
            "default" = "ai_metric:"
        ))
    )]
    pub key_prefix: Option<String>,
    /// `resp`: Higress's Redis calls (Higress build only); `webdis`: `GET /MGET/<keys>.json` on the
    /// cluster, through Webdis.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "协议"},
            "x-description-i18n" = {"zh-CN": "`resp`：使用 Higress 的 Redis 调用（仅 Higress 构建）；`webdis`：经 Webdis 向集群发送 `GET /MGET/<键>.json`。"},
            "x-default-description" = "`resp` on the Higress build, `webdis` on the Envoy build"
        ))
    )]
    pub protocol: Option<Protocol>,
    /// `per_request`: each balanced request reads the loads and waits for them; `background`: one
    /// worker reads them every `refresh_interval_ms` and publishes them to every worker, and
    /// requests never wait.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "刷新方式"},
            "x-description-i18n" = {"zh-CN": "`per_request`：每个需要负载均衡的请求读取负载并等待结果；`background`：由一个 worker 每隔 `refresh_interval_ms` 读取一次并发布给所有 worker，请求无需等待。"},
            "default" = "per_request"
        ))
    )]
    pub refresh: Option<RefreshMode>,
    /// `refresh: background` only: how often the loads are read.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "刷新间隔（毫秒）"},
            "x-description-i18n" = {"zh-CN": "仅用于 `refresh: background`：读取负载的间隔。"},
            "default" = 500
        ))
    )]
    pub refresh_interval_ms: Option<Whole<10, 60_000>>,
    /// `refresh: background` only, at least `refresh_interval_ms`: older loads count as unknown and
    /// weights decide.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "最长有效期（毫秒）"},
            "x-description-i18n" = {"zh-CN": "仅用于 `refresh: background`，不小于 `refresh_interval_ms`：超过此时长的负载视为未知，由权重决定。"},
            "x-default-description" = "3 × `refresh_interval_ms`"
        ))
    )]
    pub max_age_ms: Option<Whole<10, 600_000>>,
    /// `refresh: per_request` only: failures in a row (refused, failed, timed out) after which the
    /// store counts as down and requests stop waiting for it.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "判定不可用的失败次数"},
            "x-description-i18n" = {"zh-CN": "仅用于 `refresh: per_request`：连续失败（拒绝连接、出错、超时）达到此次数后视为存储不可用，请求不再等待它。"},
            "default" = 3
        ))
    )]
    pub down_after_failures: Option<Whole<1, 1000>>,
    /// `refresh: per_request` only: while the store is down, one request asks it again this often.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "不可用时重试间隔（毫秒）"},
            "x-description-i18n" = {"zh-CN": "仅用于 `refresh: per_request`：存储不可用期间，每隔此时长由一个请求再次尝试读取。"},
            "default" = 1000
        ))
    )]
    pub down_retry_ms: Option<Whole<10, 600_000>>,
    /// `key`: one number per provider (`MGET`); `hash`: a hash per provider (running, waiting,
    /// cache ratio), read for every provider by one `EVAL`.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "负载格式"},
            "x-description-i18n" = {"zh-CN": "`key`：每个提供方一个数值（`MGET`）；`hash`：每个提供方一个哈希（运行中、排队中、缓存命中率），由一次 `EVAL` 读取全部提供方。"},
            "default" = "key"
        ))
    )]
    pub load_format: Option<LoadFormat>,
    /// `load_format: hash` only: the hash's field names.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "哈希字段名"},
            "x-description-i18n" = {"zh-CN": "仅用于 `load_format: hash`：哈希中的字段名。"},
            "x-default-description" = "`running`, `waiting`, `cache_ratio`"
        ))
    )]
    pub hash_fields: Option<HashFields>,
}

/// The Redis hash field names of `load_format: hash`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub struct HashFields {
    /// The field holding running requests.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "运行中请求字段"},
            "x-description-i18n" = {"zh-CN": "保存运行中请求数的字段。"},
            "default" = "running"
        ))
    )]
    pub running: Option<Text>,
    /// The field holding waiting (prefill) requests.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "排队请求字段"},
            "x-description-i18n" = {"zh-CN": "保存排队（prefill）请求数的字段。"},
            "default" = "waiting"
        ))
    )]
    pub waiting: Option<Text>,
    /// The field holding the prefix-cache hit ratio (0 to 1).
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "缓存命中率字段"},
            "x-description-i18n" = {"zh-CN": "保存前缀缓存命中率（0 到 1）的字段。"},
            "default" = "cache_ratio"
        ))
    )]
    pub cache_ratio: Option<Text>,
}

/// An HTTP endpoint answering every provider's load as one JSON object.
///
/// Its `refresh` … `down_retry_ms` fields repeat `Redis`'s: a shared struct would need
/// `#[serde(flatten)]`, which serde does not support beside `deny_unknown_fields` (an unknown
/// field would then be accepted). The reference describes them once ("as described under").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub struct Endpoint {
    /// The Envoy cluster serving the loads.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "集群"},
            "x-description-i18n" = {"zh-CN": "提供负载数据的 Envoy 集群。"}
        ))
    )]
    pub cluster: Text,
    /// The path of the GET; starts with `/`.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "路径"},
            "x-description-i18n" = {"zh-CN": "GET 请求的路径，以 `/` 开头。"}
        ))
    )]
    pub path: Text,
    /// How long a read may take; past it the read counts as failed and weights decide.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "超时（毫秒）"},
            "x-description-i18n" = {"zh-CN": "一次读取的超时时间；超时视为失败，由权重决定。"},
            "default" = 100
        ))
    )]
    pub timeout_ms: Option<Whole<1, 60_000>>,
    /// `per_request`: each balanced request reads the loads and waits for them; `background`: one
    /// worker reads them every `refresh_interval_ms` and publishes them to every worker, and
    /// requests never wait.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "刷新方式"},
            "x-description-i18n" = {"zh-CN": "`per_request`：每个需要负载均衡的请求读取负载并等待结果；`background`：由一个 worker 每隔 `refresh_interval_ms` 读取一次并发布给所有 worker，请求无需等待。"},
            "default" = "per_request"
        ))
    )]
    pub refresh: Option<RefreshMode>,
    /// `refresh: background` only: how often the loads are read.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "刷新间隔（毫秒）"},
            "x-description-i18n" = {"zh-CN": "仅用于 `refresh: background`：读取负载的间隔。"},
            "default" = 500
        ))
    )]
    pub refresh_interval_ms: Option<Whole<10, 60_000>>,
    /// `refresh: background` only, at least `refresh_interval_ms`: older loads count as unknown and
    /// weights decide.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "最长有效期（毫秒）"},
            "x-description-i18n" = {"zh-CN": "仅用于 `refresh: background`，不小于 `refresh_interval_ms`：超过此时长的负载视为未知，由权重决定。"},
            "x-default-description" = "3 × `refresh_interval_ms`"
        ))
    )]
    pub max_age_ms: Option<Whole<10, 600_000>>,
    /// `refresh: per_request` only: failures in a row (refused, failed, timed out) after which the
    /// store counts as down and requests stop waiting for it.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "判定不可用的失败次数"},
            "x-description-i18n" = {"zh-CN": "仅用于 `refresh: per_request`：连续失败（拒绝连接、出错、超时）达到此次数后视为存储不可用，请求不再等待它。"},
            "default" = 3
        ))
    )]
    pub down_after_failures: Option<Whole<1, 1000>>,
    /// `refresh: per_request` only: while the store is down, one request asks it again this often.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "不可用时重试间隔（毫秒）"},
            "x-description-i18n" = {"zh-CN": "仅用于 `refresh: per_request`：存储不可用期间，每隔此时长由一个请求再次尝试读取。"},
            "default" = 1000
        ))
    )]
    pub down_retry_ms: Option<Whole<10, 600_000>>,
}

/// How engines' `/metrics` are scraped.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub struct EngineMetrics {
    /// How often each engine is scraped, by the one worker holding that engine's lease.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "采集间隔（毫秒）"},
            "x-description-i18n" = {"zh-CN": "每个引擎的采集间隔，由持有该引擎租约的那个 worker 采集。"},
            "default" = 1000
        ))
    )]
    pub interval_ms: Option<Whole<100, 60_000>>,
    /// How long a scrape may take.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "超时（毫秒）"},
            "x-description-i18n" = {"zh-CN": "一次采集的超时时间。"},
            "default" = 500
        ))
    )]
    pub timeout_ms: Option<Whole<1, 60_000>>,
    /// At least `interval_ms`: older scrapes count as unknown and weights decide.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "最长有效期（毫秒）"},
            "x-description-i18n" = {"zh-CN": "不小于 `interval_ms`：超过此时长的采集结果视为未知，由权重决定。"},
            "x-default-description" = "3 × `interval_ms`"
        ))
    )]
    pub max_age_ms: Option<Whole<100, 600_000>>,
}

/// The filter's own in-flight counts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub struct InFlight {
    /// `gateway`: counts in shared data, seen by every worker of one gateway; `replicas`: counts in
    /// Redis (`redis`, protocol `resp`, Higress build), seen by every replica of the gateway.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "计数范围"},
            "x-description-i18n" = {"zh-CN": "`gateway`：计数保存在共享数据中，同一网关的所有 worker 可见；`replicas`：计数保存在 Redis 中（需 `redis`、`resp` 协议和 Higress 构建），网关所有副本可见。"},
            "default" = "gateway"
        ))
    )]
    pub scope: Option<ReplicaScope>,
}
