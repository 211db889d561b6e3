//! Model pools and strategies: `models`, `strategy`, `spillover`, `session_affinity`.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

pub use super::pool_rules::{SessionAffinity, Spillover};
use super::values::{Text, UpTo, Whole};
use super::StrategyChoice;

/// A strategy's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub enum StrategyName {
    LeastLoad,
    WeightedRandom,
    Random,
    RoundRobin,
    Failover,
    LeastLatency,
    InferenceScore,
    PrefixAffinity,
}

/// A strategy with its options (each option belongs to one strategy).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub struct StrategyOptions {
    /// `least_load`: the lowest running + waiting requests; `weighted_random`: in proportion to
    /// `weight`; `random`: uniformly; `round_robin`: in turn, one sequence per pool for every
    /// worker; `failover`: the lowest `priority`; `least_latency`: the lowest moving average of
    /// latency measured by the filter; `inference_score`: cache hits against running and waiting
    /// requests; `prefix_affinity`: one prompt prefix stays on one backend (its KV cache), with
    /// bounded load.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "策略名称"},
            "x-description-i18n" = {"zh-CN": "`least_load`：运行中与排队请求之和最少；`weighted_random`：按 `weight` 比例随机；`random`：均匀随机；`round_robin`：轮流选择，每个池的顺序在所有 worker 间共享；`failover`：`priority` 最小者优先；`least_latency`：插件测得的延迟滑动平均最低；`inference_score`：综合缓存命中率与运行中、排队请求数；`prefix_affinity`：相同提示词前缀固定到同一后端（复用其 KV 缓存），并限制负载上限。"}
        ))
    )]
    pub name: StrategyName,
    /// `inference_score` only: the weight of the prefix-cache hit ratio.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "缓存命中率权重"},
            "x-description-i18n" = {"zh-CN": "仅用于 `inference_score`：前缀缓存命中率的权重。"},
            "default" = 2
        ))
    )]
    pub cache_ratio_weight: Option<UpTo<1_000_000>>,
    /// `inference_score` only: the weight of running requests (relative to the pool's most loaded
    /// backend).
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "运行中请求权重"},
            "x-description-i18n" = {"zh-CN": "仅用于 `inference_score`：运行中请求数（相对池中负载最高的后端）的权重。"},
            "default" = 1
        ))
    )]
    pub request_load_weight: Option<UpTo<1_000_000>>,
    /// `inference_score` only: the weight of waiting (prefill) requests (relative to the pool's
    /// most loaded backend).
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "排队请求权重"},
            "x-description-i18n" = {"zh-CN": "仅用于 `inference_score`：排队（prefill）请求数（相对池中负载最高的后端）的权重。"},
            "default" = 3
        ))
    )]
    pub prefill_load_weight: Option<UpTo<1_000_000>>,
    /// `inference_score` only: the pick is random among this top percentage of backends.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "候选比例（%）"},
            "x-description-i18n" = {"zh-CN": "仅用于 `inference_score`：在得分最高的这一比例的后端中随机选择。"},
            "default" = 10
        ))
    )]
    pub candidate_percent: Option<Whole<1, 100>>,
    /// `prefix_affinity` only: how much of the prompt is hashed (the raw JSON of `messages`, else
    /// `prompt`, else `input`).
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "前缀长度（字节）"},
            "x-description-i18n" = {"zh-CN": "仅用于 `prefix_affinity`：参与哈希的提示词长度（`messages` 的原始 JSON，否则 `prompt`，否则 `input`）。"},
            "default" = 1024
        ))
    )]
    pub prefix_bytes: Option<Whole<1, { 1 << 20 }>>,
    /// `prefix_affinity` only: a backend above (1 + `load_factor`) × the mean load passes the
    /// request to the next one on the ring.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "负载系数"},
            "x-description-i18n" = {"zh-CN": "仅用于 `prefix_affinity`：负载超过平均值的 (1 + `load_factor`) 倍时，请求顺延到哈希环上的下一个后端。"},
            "default" = 0.25
        ))
    )]
    pub load_factor: Option<UpTo<100>>,
    /// `least_latency` only: latency samples older than this are forgotten, so a slow backend is
    /// tried again.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "延迟样本有效期（毫秒）"},
            "x-description-i18n" = {"zh-CN": "仅用于 `least_latency`：超过此时长的延迟样本被丢弃，较慢的后端会被再次尝试。"},
            "default" = 30000
        ))
    )]
    pub max_age_ms: Option<Whole<100, 3_600_000>>,
}

/// One model name's pool.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub struct Pool {
    /// The pool's strategy: a name, or `{name, <options>}`.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "负载均衡策略"},
            "x-description-i18n" = {"zh-CN": "该池的策略：策略名，或 `{name, <选项>}`（选项同顶层 `strategy`）。"},
            "default" = "least_load"
        ))
    )]
    pub strategy: Option<StrategyChoice>,
    /// Steer away from a backend whose provider (or every usable API key of it) says in its
    /// rate-limit headers that its remaining requests or tokens are below these floors, until the
    /// reset; used only when nothing else in the pool is available.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "限流感知"},
            "x-description-i18n" = {"zh-CN": "后端的提供方（或其全部可用 API 密钥）在限流响应头中表明剩余请求数或 token 数低于这些下限时，在重置之前避开它；仅在池中没有其他可用后端时使用。"},
            "x-default-description" = "off"
        ))
    )]
    pub rate_limits: Option<super::RateLimits>,
    /// The pool's backends, each a provider and the model it expects; at least one, one of them
    /// with a weight above 0.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "后端"},
            "x-description-i18n" = {"zh-CN": "该池的后端，每个为一个提供方及其期望的模型；至少一个，且至少一个权重大于 0。"}
        ))
    )]
    #[cfg_attr(not(target_arch = "wasm32"), schemars(required, length(min = 1)))]
    pub backends: Option<Vec<Backend>>,
    /// Backends in tiers (`tier`, lowest first): requests stay on the first tier while its least
    /// loaded backend is under `max_load`, and go on to the next only then.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "分级溢出"},
            "x-description-i18n" = {"zh-CN": "后端按 `tier` 分级（数值小者优先）：第一级中负载最低的后端低于 `max_load` 时请求留在该级，否则才溢出到下一级。"},
            "x-default-description" = "off: one tier"
        ))
    )]
    pub spillover: Option<Spillover>,
    /// Keeps a conversation on one backend: requests with the same session key go to the same
    /// backend (consistent hashing with bounded load); without a key, the strategy picks.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "会话亲和"},
            "x-description-i18n" = {"zh-CN": "让一段会话固定在同一后端：会话键相同的请求发往同一后端（带负载上限的一致性哈希）；没有会话键时由策略选择。"},
            "x-default-description" = "off"
        ))
    )]
    pub session_affinity: Option<SessionAffinity>,
}

/// A provider in a pool, with the model it expects there.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub struct Backend {
    /// A name in `providers`; a provider and model appear once per pool.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "提供方"},
            "x-description-i18n" = {"zh-CN": "`providers` 中的名称；同一池中提供方与模型的组合不可重复。"}
        ))
    )]
    pub provider: Text,
    /// The model this provider expects for this pool.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "模型"},
            "x-description-i18n" = {"zh-CN": "该提供方在此池中期望的模型名。"},
            "x-default-description" = "the provider's `model`"
        ))
    )]
    pub model: Option<Text>,
    /// Share of traffic when loads are unknown, and for weighted strategies.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "权重"},
            "x-description-i18n" = {"zh-CN": "负载未知时及加权策略下的流量占比。"},
            "x-default-description" = "the provider's `weight`"
        ))
    )]
    pub weight: Option<Whole<0, 1_000_000>>,
    /// `failover` order: the lowest number first; equal priorities by weight.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "优先级"},
            "x-description-i18n" = {"zh-CN": "`failover` 的顺序：数值小者优先，相同时按权重。"},
            "x-default-description" = "its position: 1, 2, …"
        ))
    )]
    pub priority: Option<Whole<0, 1_000_000>>,
    /// The pool's `spillover` tier: the lowest first.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "级别"},
            "x-description-i18n" = {"zh-CN": "该池 `spillover` 中的级别：数值小者优先。"},
            "x-default-description" = "the provider's `tier`"
        ))
    )]
    pub tier: Option<Whole<0, 1_000_000>>,
}

/// `models`: each name clients send, with its pool, sorted by name (serde_json's mapping is
/// sorted in the module but keeps the written order natively, where schemars turns on its
/// `preserve_order`; the pools' order shows in `/v1/models` and the status page). A list of pairs rather than a map type: nothing looks a pool up by name while
/// the configuration is read, and a second `BTreeMap` instantiation costs the module bytes.
#[derive(Debug, Clone, Default)]
pub struct Models(pub Vec<(String, Pool)>);

impl<'de> Deserialize<'de> for Models {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ModelsVisitor)
    }
}

struct ModelsVisitor;

impl<'de> Visitor<'de> for ModelsVisitor {
    type Value = Models;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping of model names to pools")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Models, A::Error> {
        let mut models = Vec::new();
        while let Some(entry) = entries.next_entry()? {
            models.push(entry);
        }
        models.sort_by(|(a, _): &(String, Pool), (b, _)| a.cmp(b));
        Ok(Models(models))
    }
}
