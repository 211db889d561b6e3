//! Model pools (`models.<name>`), their backends and strategies.

use super::Default::{Described, None as Off, Value};
use super::{int, text, Field, Literal, Object, Shape, TEXT};

const STRATEGY_NAMES: &[&str] = &[
    "least_load",
    "weighted_random",
    "random",
    "round_robin",
    "failover",
    "least_latency",
    "inference_score",
    "prefix_affinity",
];

/// `strategy: <name>` or `strategy: {name: <name>, <its options>}`.
pub const STRATEGY: Shape = Shape::Either(&[
    Shape::Str {
        values: STRATEGY_NAMES,
        non_empty: true,
    },
    Shape::Object(&STRATEGY_OPTIONS),
]);

const WEIGHT: Shape = Shape::Num { min: 0.0, max: 1e6 };

static STRATEGY_OPTIONS: Object = Object::of(&[&[
    Field::new(
        "name",
        "策略名称",
        Shape::Str {
            values: STRATEGY_NAMES,
            non_empty: true,
        },
        Off,
        "`least_load`: the lowest running + waiting requests; `weighted_random`: in proportion to \
         `weight`; `random`: uniformly; `round_robin`: in turn, one sequence per pool for every \
         worker; `failover`: the lowest `priority`; `least_latency`: the lowest moving average of \
         latency measured by the filter; `inference_score`: cache hits against running and \
         waiting requests; `prefix_affinity`: one prompt prefix stays on one backend (its KV \
         cache), with bounded load.",
        "`least_load`：运行中与排队请求之和最少；`weighted_random`：按 `weight` 比例随机；`random`：均匀随机；\
         `round_robin`：轮流选择，每个池的顺序在所有 worker 间共享；`failover`：`priority` 最小者优先；\
         `least_latency`：插件测得的延迟滑动平均最低；`inference_score`：综合缓存命中率与运行中、排队请求数；\
         `prefix_affinity`：相同提示词前缀固定到同一后端（复用其 KV 缓存），并限制负载上限。",
    )
    .required(),
    Field::new(
        "cache_ratio_weight",
        "缓存命中率权重",
        WEIGHT,
        Value(Literal::Num(2.0)),
        "`inference_score` only: the weight of the prefix-cache hit ratio.",
        "仅用于 `inference_score`：前缀缓存命中率的权重。",
    ),
    Field::new(
        "request_load_weight",
        "运行中请求权重",
        WEIGHT,
        Value(Literal::Num(1.0)),
        "`inference_score` only: the weight of running requests (relative to the pool's most \
         loaded backend).",
        "仅用于 `inference_score`：运行中请求数（相对池中负载最高的后端）的权重。",
    ),
    Field::new(
        "prefill_load_weight",
        "排队请求权重",
        WEIGHT,
        Value(Literal::Num(3.0)),
        "`inference_score` only: the weight of waiting (prefill) requests (relative to the pool's \
         most loaded backend).",
        "仅用于 `inference_score`：排队（prefill）请求数（相对池中负载最高的后端）的权重。",
    ),
    Field::new(
        "candidate_percent",
        "候选比例（%）",
        Shape::Int { min: 1, max: 100 },
        int(10),
        "`inference_score` only: the pick is random among this top percentage of backends.",
        "仅用于 `inference_score`：在得分最高的这一比例的后端中随机选择。",
    ),
    Field::new(
        "prefix_bytes",
        "前缀长度（字节）",
        Shape::Int {
            min: 1,
            max: 1 << 20,
        },
        int(1024),
        "`prefix_affinity` only: how much of the prompt is hashed (the raw JSON of `messages`, \
         else `prompt`, else `input`).",
        "仅用于 `prefix_affinity`：参与哈希的提示词长度（`messages` 的原始 JSON，否则 `prompt`，\
         否则 `input`）。",
    ),
    Field::new(
        "load_factor",
        "负载系数",
        Shape::Num {
            min: 0.0,
            max: 100.0,
        },
        Value(Literal::Num(0.25)),
        "`prefix_affinity` only: a backend above (1 + `load_factor`) × the mean load passes the \
         request to the next one on the ring.",
        "仅用于 `prefix_affinity`：负载超过平均值的 (1 + `load_factor`) 倍时，请求顺延到哈希环上的下一个后端。",
    ),
    Field::new(
        "max_age_ms",
        "延迟样本有效期（毫秒）",
        Shape::Int {
            min: 100,
            max: 3_600_000,
        },
        int(30_000),
        "`least_latency` only: latency samples older than this are forgotten, so a slow backend \
         is tried again.",
        "仅用于 `least_latency`：超过此时长的延迟样本被丢弃，较慢的后端会被再次尝试。",
    ),
]]);

pub static POOL: Object = Object::of(&[&[
    Field::new(
        "strategy",
        "负载均衡策略",
        STRATEGY,
        text("least_load"),
        "The pool's strategy: a name, or `{name, <options>}`.",
        "该池的策略：策略名，或 `{name, <选项>}`（选项同顶层 `strategy`）。",
    ),
    Field::new(
        "backends",
        "后端",
        Shape::List {
            item: &Shape::Object(&BACKEND),
            non_empty: true,
        },
        Off,
        "The pool's backends, each a provider and the model it expects; at least one, one of \
         them with a weight above 0.",
        "该池的后端，每个为一个提供方及其期望的模型；至少一个，且至少一个权重大于 0。",
    )
    .required(),
]]);

static BACKEND: Object = Object::of(&[&[
    Field::new(
        "provider",
        "提供方",
        TEXT,
        Off,
        "A name in `providers`; a provider and model appear once per pool.",
        "`providers` 中的名称；同一池中提供方与模型的组合不可重复。",
    )
    .required(),
    Field::new(
        "model",
        "模型",
        TEXT,
        Described("the provider's `model`"),
        "The model this provider expects for this pool.",
        "该提供方在此池中期望的模型名。",
    ),
    Field::new(
        "weight",
        "权重",
        Shape::Int {
            min: 0,
            max: 1_000_000,
        },
        Described("the provider's `weight`"),
        "Share of traffic when loads are unknown, and for weighted strategies.",
        "负载未知时及加权策略下的流量占比。",
    ),
    Field::new(
        "priority",
        "优先级",
        Shape::Int {
            min: 0,
            max: 1_000_000,
        },
        Described("its position: 1, 2, …"),
        "`failover` order: the lowest number first; equal priorities by weight.",
        "`failover` 的顺序：数值小者优先，相同时按权重。",
    ),
]]);
