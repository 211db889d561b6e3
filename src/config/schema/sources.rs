//! Load sources: `redis`, `endpoint`, `engine_metrics`, `in_flight`.

use super::Default::{Described, None as Off};
use super::{int, text, Field, Object, Shape, ANY_TEXT, TEXT};

const MS_1_TO_60_000: Shape = Shape::Int {
    min: 1,
    max: 60_000,
};

pub static REDIS: Object = Object::of(&[REDIS_CONNECTION, REFRESH, REDIS_FORMAT]);

pub static ENDPOINT: Object = Object::of(&[ENDPOINT_TARGET, REFRESH]);

static REDIS_CONNECTION: &[Field] = &[
    Field::new(
        "service_name",
        "服务名称",
        TEXT,
        Off,
        "With `service_port`: the cluster is `outbound|<port>||<service_name>` (Higress's naming).",
        "与 `service_port` 一起使用：集群为 `outbound|<端口>||<服务名称>`（Higress 的命名方式）。",
    ),
    Field::new(
        "service_port",
        "服务端口",
        Shape::Int { min: 1, max: 65535 },
        Off,
        "The port of `service_name`; required with it.",
        "`service_name` 的端口；设置 `service_name` 时必填。",
    ),
    Field::new(
        "cluster",
        "集群",
        TEXT,
        Off,
        "The Envoy cluster's name; wins over `service_name`. One of the two is required.",
        "Envoy 集群名称，优先于 `service_name`。二者必须设置其一。",
    ),
    Field::new(
        "username",
        "用户名",
        TEXT,
        Off,
        "RESP: the Redis AUTH user (Higress); Webdis: the HTTP Basic user of Webdis's ACL.",
        "RESP：Redis AUTH 用户名（Higress）；Webdis：Webdis ACL 的 HTTP Basic 用户名。",
    ),
    Field::new(
        "password",
        "密码",
        ANY_TEXT,
        Off,
        "RESP: the Redis AUTH password; Webdis: the HTTP Basic password.",
        "RESP：Redis AUTH 密码；Webdis：HTTP Basic 密码。",
    ),
    Field::new(
        "database",
        "数据库",
        Shape::Int { min: 0, max: 65535 },
        Off,
        "The database number. RESP: `?db=N` on the cluster; Webdis: `/N/MGET/…`.",
        "数据库编号。RESP：集群名后加 `?db=N`；Webdis：`/N/MGET/…`。",
    ),
    Field::new(
        "key_prefix",
        "键前缀",
        ANY_TEXT,
        text("ai_metric:"),
        "Prefix of every provider's key, and of the in-flight counters' keys.",
        "每个提供方负载键的前缀，也是在途请求计数键的前缀。",
    ),
    Field::new(
        "protocol",
        "协议",
        Shape::Str {
            values: &["resp", "webdis"],
            non_empty: true,
        },
        Described("`resp` on the Higress build, `webdis` on the Envoy build"),
        "`resp`: Higress's Redis calls (Higress build only); `webdis`: `GET /MGET/<keys>.json` on \
         the cluster, through Webdis.",
        "`resp`：使用 Higress 的 Redis 调用（仅 Higress 构建）；`webdis`：经 Webdis 向集群发送 \
         `GET /MGET/<键>.json`。",
    ),
];

/// Shared by `redis` and `endpoint`: how and when the store is read.
static REFRESH: &[Field] = &[
    Field::new(
        "timeout_ms",
        "超时（毫秒）",
        MS_1_TO_60_000,
        int(100),
        "How long a read may take; past it the read counts as failed and weights decide.",
        "一次读取的超时时间；超时视为失败，由权重决定。",
    ),
    Field::new(
        "refresh",
        "刷新方式",
        Shape::Str {
            values: &["per_request", "background"],
            non_empty: true,
        },
        text("per_request"),
        "`per_request`: each balanced request reads the loads and waits for them; `background`: \
         one worker reads them every `refresh_interval_ms` and publishes them to every worker, \
         and requests never wait.",
        "`per_request`：每个需要负载均衡的请求读取负载并等待结果；`background`：由一个 worker 每隔 \
         `refresh_interval_ms` 读取一次并发布给所有 worker，请求无需等待。",
    ),
    Field::new(
        "refresh_interval_ms",
        "刷新间隔（毫秒）",
        Shape::Int {
            min: 10,
            max: 60_000,
        },
        int(500),
        "`refresh: background` only: how often the loads are read.",
        "仅用于 `refresh: background`：读取负载的间隔。",
    ),
    Field::new(
        "max_age_ms",
        "最长有效期（毫秒）",
        Shape::Int {
            min: 10,
            max: 600_000,
        },
        Described("3 × `refresh_interval_ms`"),
        "`refresh: background` only, at least `refresh_interval_ms`: older loads count as unknown \
         and weights decide.",
        "仅用于 `refresh: background`，不小于 `refresh_interval_ms`：超过此时长的负载视为未知，由权重决定。",
    ),
    Field::new(
        "down_after_failures",
        "判定不可用的失败次数",
        Shape::Int { min: 1, max: 1000 },
        int(3),
        "`refresh: per_request` only: failures in a row (refused, failed, timed out) after which \
         the store counts as down and requests stop waiting for it.",
        "仅用于 `refresh: per_request`：连续失败（拒绝连接、出错、超时）达到此次数后视为存储不可用，\
         请求不再等待它。",
    ),
    Field::new(
        "down_retry_ms",
        "不可用时重试间隔（毫秒）",
        Shape::Int {
            min: 10,
            max: 600_000,
        },
        int(1000),
        "`refresh: per_request` only: while the store is down, one request asks it again this \
         often.",
        "仅用于 `refresh: per_request`：存储不可用期间，每隔此时长由一个请求再次尝试读取。",
    ),
];

static REDIS_FORMAT: &[Field] = &[
    Field::new(
        "load_format",
        "负载格式",
        Shape::Str {
            values: &["key", "hash"],
            non_empty: true,
        },
        text("key"),
        "`key`: one number per provider (`MGET`); `hash`: a hash per provider (running, waiting, \
         cache ratio), read for every provider by one `EVAL`.",
        "`key`：每个提供方一个数值（`MGET`）；`hash`：每个提供方一个哈希（运行中、排队中、缓存命中率），\
         由一次 `EVAL` 读取全部提供方。",
    ),
    Field::new(
        "hash_fields",
        "哈希字段名",
        Shape::Object(&HASH_FIELDS),
        Described("`running`, `waiting`, `cache_ratio`"),
        "`load_format: hash` only: the hash's field names.",
        "仅用于 `load_format: hash`：哈希中的字段名。",
    ),
];

static HASH_FIELDS: Object = Object::of(&[&[
    Field::new(
        "running",
        "运行中请求字段",
        TEXT,
        text("running"),
        "The field holding running requests.",
        "保存运行中请求数的字段。",
    ),
    Field::new(
        "waiting",
        "排队请求字段",
        TEXT,
        text("waiting"),
        "The field holding waiting (prefill) requests.",
        "保存排队（prefill）请求数的字段。",
    ),
    Field::new(
        "cache_ratio",
        "缓存命中率字段",
        TEXT,
        text("cache_ratio"),
        "The field holding the prefix-cache hit ratio (0 to 1).",
        "保存前缀缓存命中率（0 到 1）的字段。",
    ),
]]);

static ENDPOINT_TARGET: &[Field] = &[
    Field::new(
        "cluster",
        "集群",
        TEXT,
        Off,
        "The Envoy cluster serving the loads.",
        "提供负载数据的 Envoy 集群。",
    )
    .required(),
    Field::new(
        "path",
        "路径",
        TEXT,
        Off,
        "The path of the GET; starts with `/`.",
        "GET 请求的路径，以 `/` 开头。",
    )
    .required(),
];

pub static ENGINE_METRICS: Object = Object::of(&[&[
    Field::new(
        "interval_ms",
        "采集间隔（毫秒）",
        Shape::Int {
            min: 100,
            max: 60_000,
        },
        int(1000),
        "How often each engine is scraped, by the one worker holding that engine's lease.",
        "每个引擎的采集间隔，由持有该引擎租约的那个 worker 采集。",
    ),
    Field::new(
        "timeout_ms",
        "超时（毫秒）",
        MS_1_TO_60_000,
        int(500),
        "How long a scrape may take.",
        "一次采集的超时时间。",
    ),
    Field::new(
        "max_age_ms",
        "最长有效期（毫秒）",
        Shape::Int {
            min: 100,
            max: 600_000,
        },
        Described("3 × `interval_ms`"),
        "At least `interval_ms`: older scrapes count as unknown and weights decide.",
        "不小于 `interval_ms`：超过此时长的采集结果视为未知，由权重决定。",
    ),
]]);

pub static IN_FLIGHT: Object = Object::of(&[&[Field::new(
    "scope",
    "计数范围",
    Shape::Str {
        values: &["gateway", "replicas"],
        non_empty: true,
    },
    text("gateway"),
    "`gateway`: counts in shared data, seen by every worker of one gateway; `replicas`: counts in \
     Redis (`redis`, protocol `resp`, Higress build), seen by every replica of the gateway.",
    "`gateway`：计数保存在共享数据中，同一网关的所有 worker 可见；`replicas`：计数保存在 Redis 中\
     （需 `redis`、`resp` 协议和 Higress 构建），网关所有副本可见。",
)]]);
