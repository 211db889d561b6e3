//! `spillover` and `session_affinity`: the rules a pool applies before its strategy.

use serde::Deserialize;

use super::values::{Text, UpTo, Whole};

/// `spillover`: when a request leaves the first tier.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub struct Spillover {
    /// A tier takes the request while one of its backends has a known load (running + waiting
    /// requests) below this, or while none of its loads is known (an API); a full or ejected
    /// tier passes it to the next. With every tier full, the tier with the least loaded backend.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "负载上限"},
            "x-description-i18n" = {"zh-CN": "某一级中有后端的已知负载（运行中与排队请求之和）低于此值，或该级所有负载均未知（如 API）时，由该级接收请求；已满或被摘除的级别交给下一级。所有级别都满时，交给负载最低的后端所在的级别。"}
        ))
    )]
    pub max_load: Whole<1, { 1 << 20 }>,
}

/// `session_affinity`: where a request's session key is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(target_arch = "wasm32"), derive(schemars::JsonSchema))]
pub struct SessionAffinity {
    /// The request header holding the session key, e.g. `x-session-id`; when both are set and the
    /// header is present, it wins over `body_field`.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "会话请求头"},
            "x-description-i18n" = {"zh-CN": "携带会话键的请求头，例如 `x-session-id`；两者都设置且请求带有该请求头时，优先于 `body_field`。"}
        ))
    )]
    pub header: Option<Text>,
    /// A top-level string field of the JSON body holding the session key, e.g. OpenAI's `user`
    /// (the filter then reads the body before choosing); a missing or non-string field is no key.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "会话请求体字段"},
            "x-description-i18n" = {"zh-CN": "JSON 请求体中携带会话键的顶层字符串字段，例如 OpenAI 的 `user`（插件会先读取请求体再选择）；字段缺失或不是字符串时视为没有会话键。"}
        ))
    )]
    pub body_field: Option<Text>,
    /// A backend above (1 + `load_factor`) × the mean load passes the session to the next one
    /// on the ring until its load falls.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schemars(extend(
            "x-title-i18n" = {"zh-CN": "负载系数"},
            "x-description-i18n" = {"zh-CN": "后端负载超过平均值的 (1 + `load_factor`) 倍时，会话顺延到哈希环上的下一个后端，直到其负载回落。"},
            "default" = 0.25
        ))
    )]
    pub load_factor: Option<UpTo<100>>,
}
