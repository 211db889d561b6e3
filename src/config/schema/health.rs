//! Health, retry and the status page, and each provider's `probe` and `prefix_rewrite`.

use super::Default::{Described, None as Off, Value};
use super::{int, text, Field, Literal, Object, Shape, ANY_TEXT, TEXT};

/// A list of statuses: numbers, or classes like `"5xx"`.
const STATUSES: Shape = Shape::List {
    item: &Shape::Either(&[
        Shape::Int { min: 100, max: 599 },
        Shape::Str {
            values: &[
                "1xx", "2xx", "3xx", "4xx", "5xx", "1XX", "2XX", "3XX", "4XX", "5XX",
            ],
            non_empty: true,
        },
    ]),
    non_empty: true,
};

pub static HEALTH: Object = Object::of(&[&[
    Field::new(
        "failure_threshold",
        "失败阈值",
        Shape::Int { min: 0, max: 1000 },
        int(3),
        "Failures in a row that eject a provider (or make an API key unavailable); 0 never \
         ejects.",
        "连续失败达到此次数即摘除提供方（或使 API 密钥不可用）；0 表示从不摘除。",
    ),
    Field::new(
        "failure_statuses",
        "失败状态码",
        STATUSES,
        Value(Literal::List(&[Literal::Int(429), Literal::Str("5xx")])),
        "Statuses that count as a provider's failure: numbers (100 to 599) or classes like \
         `\"5xx\"`. No response at all (refused, reset, timed out) always does.",
        "视为提供方失败的状态码：数字（100 到 599）或 `\"5xx\"` 这样的类别。完全没有响应（拒绝、重置、\
         超时）总是视为失败。",
    ),
    Field::new(
        "cooldown_ms",
        "冷却时间（毫秒）",
        Shape::Int {
            min: 100,
            max: 3_600_000,
        },
        int(10_000),
        "How long an ejected provider stays out before a half-open trial request.",
        "被摘除的提供方在半开试探请求之前保持摘除的时长。",
    ),
    Field::new(
        "max_retry_after_ms",
        "Retry-After 上限（毫秒）",
        Shape::Int {
            min: 0,
            max: 3_600_000,
        },
        int(60_000),
        "A 429's `Retry-After` ejects the provider at once for that long, at most this.",
        "429 响应的 `Retry-After` 会立即摘除提供方相应时长，最多为此值。",
    ),
    Field::new(
        "success_threshold",
        "恢复阈值",
        Shape::Int { min: 1, max: 100 },
        int(1),
        "Good probe answers in a row that bring a provider (or API key) back.",
        "连续成功的探测次数达到此值后，提供方（或 API 密钥）恢复。",
    ),
    Field::new(
        "probe",
        "主动探测",
        Shape::Either(&[Shape::Bool, Shape::Object(&PROBE_SCHEDULE)]),
        Value(Literal::Bool(true)),
        "Active probes of providers (and API keys) that are out, sent by one worker through each \
         provider's `cluster`: `false` turns them off, a mapping sets their schedule.",
        "对已摘除的提供方（及 API 密钥）的主动探测，由一个 worker 经各提供方的 `cluster` 发出：`false` \
         关闭探测，映射用于设置探测计划。",
    ),
]]);

static PROBE_SCHEDULE: Object = Object::of(&[&[
    Field::new(
        "interval_ms",
        "探测间隔（毫秒）",
        Shape::Int {
            min: 100,
            max: 3_600_000,
        },
        int(5_000),
        "How often providers that are out are probed.",
        "探测已摘除提供方的间隔。",
    ),
    Field::new(
        "timeout_ms",
        "探测超时（毫秒）",
        Shape::Int {
            min: 10,
            max: 60_000,
        },
        int(2_000),
        "How long a probe may take.",
        "一次探测的超时时间。",
    ),
]]);

pub static RETRY: Object = Object::of(&[&[
    Field::new(
        "max_retries",
        "最大重试次数",
        Shape::Int { min: 1, max: 10 },
        int(1),
        "Retries on other providers, per request.",
        "每个请求在其他提供方上的最大重试次数。",
    ),
    Field::new(
        "budget_ms",
        "重试时间预算（毫秒）",
        Shape::Int {
            min: 100,
            max: 600_000,
        },
        int(30_000),
        "Every attempt must fit within this much time from the request's start.",
        "从请求开始起，所有尝试须在此时长内完成。",
    ),
]]);

pub static STATUS_ENDPOINT: Object = Object::of(&[&[
    Field::new(
        "path",
        "路径",
        TEXT,
        Off,
        "The status page's path; starts with `/`.",
        "状态页路径，以 `/` 开头。",
    )
    .required(),
    Field::new(
        "allowed_sources",
        "允许的来源地址",
        Shape::List {
            item: &TEXT,
            non_empty: true,
        },
        Off,
        "Source addresses or CIDR blocks that may read the page, e.g. `127.0.0.1`, \
         `10.0.0.0/8`; from any other address the request goes on as if the page did not exist.",
        "可以读取状态页的来源地址或 CIDR 网段，如 `127.0.0.1`、`10.0.0.0/8`；来自其他地址的请求\
         如同状态页不存在一样继续处理。",
    )
    .required(),
    Field::new(
        "trust_forwarded_for",
        "信任 X-Forwarded-For",
        Shape::Bool,
        Value(Literal::Bool(false)),
        "Off: a request carrying `X-Forwarded-For` is never served the page, since under \
         Envoy's default `use_remote_address: false` the source address comes from that header, \
         which any client can write. Turn on only where the connection manager sets \
         `use_remote_address: true` (or trusted hops), so that Envoy decides the source.",
        "关闭时，携带 `X-Forwarded-For` 的请求一律不返回状态页：Envoy 默认 `use_remote_address: false`，\
         来源地址取自该请求头，而任何客户端都可以伪造它。仅在连接管理器设置 `use_remote_address: true`\
         （或可信跳数）、由 Envoy 决定来源地址时开启。",
    ),
]]);

pub static PROBE: Object = Object::of(&[&[
    Field::new(
        "method",
        "方法",
        TEXT,
        Described("`GET`, or `POST` with a `body`"),
        "The probe's HTTP method, in capitals.",
        "探测请求的 HTTP 方法，须为大写。",
    ),
    Field::new(
        "path",
        "路径",
        TEXT,
        text("/v1/models"),
        "The probe's path; starts with `/`. `GET /v1/models` costs no tokens.",
        "探测请求的路径，以 `/` 开头。`GET /v1/models` 不消耗 token。",
    ),
    Field::new(
        "body",
        "请求体",
        ANY_TEXT,
        Off,
        "The probe's body; makes it a `POST` unless `method` says otherwise.",
        "探测请求的请求体；设置后除非另行指定 `method`，否则使用 `POST`。",
    ),
    Field::new(
        "expected_statuses",
        "期望状态码",
        STATUSES,
        Value(Literal::List(&[Literal::Str("2xx")])),
        "Statuses that count as a good answer: numbers (100 to 599) or classes like `\"2xx\"`.",
        "视为探测成功的状态码：数字（100 到 599）或 `\"2xx\"` 这样的类别。",
    ),
]]);

pub static REWRITE: Object = Object::of(&[&[
    Field::new(
        "from",
        "原前缀",
        TEXT,
        Off,
        "The path prefix the route replaces.",
        "路由替换掉的路径前缀。",
    )
    .required(),
    Field::new(
        "to",
        "新前缀",
        ANY_TEXT,
        text(""),
        "What replaces it.",
        "替换后的前缀。",
    ),
]]);
