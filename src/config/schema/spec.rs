//! Higress's plugin spec (`higress/spec.yaml`): the plugin's card in the console, where it sits in
//! the filter chain, and the configuration schemas the console renders as forms.

use super::text::Node;
use super::{object_entries, plugin_object, route_object, Object};

/// Where the plugin runs among Higress's plugins, and why (written into the spec as comments).
const PHASE: &str = "UNSPECIFIED_PHASE";
const PRIORITY: u64 = 250;
const PLACEMENT: &[&str] = &[
    "Phase UNSPECIFIED_PHASE: at the end of the chain, after the AUTHN, AUTHZ and STATS phases,",
    "so a request that authentication or a rate limit refuses costs no load read, body hold or",
    "retry. Priority 250 (higher runs first within a phase): after ai-prompt-template (500) and",
    "ai-prompt-decorator (450), which build the body whose model it rewrites; before",
    "ai-statistics (200) and ai-proxy (100), which then see the provider's route and model.",
    "The same as higress/wasmplugin.yaml.",
];

/// The spec document, as shipped in `higress/spec.yaml`.
pub fn higress_spec_yaml() -> String {
    let head = Node::Map(vec![
        entry("apiVersion", Node::str("1.0.0")),
        entry("info", info()),
    ]);
    let placement = Node::Map(vec![
        entry("phase", Node::str(PHASE)),
        entry("priority", Node::Int(PRIORITY)),
    ]);
    let schemas = Node::Map(vec![
        entry("configSchema", console_schema(plugin_object())),
        entry("routeConfigSchema", console_schema(route_object())),
    ]);
    let mut out = String::from(
        "# Generated from src/config/schema.rs by tests/schema.rs; do not edit. Regenerate with\n\
         # UPDATE_SCHEMA=1 cargo test --test schema\n",
    );
    out.push_str(&head.to_yaml(0));
    out.push_str("spec:\n");
    for line in PLACEMENT {
        out.push_str("  # ");
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&placement.to_yaml(2));
    out.push_str(&schemas.to_yaml(2));
    out
}

fn entry(key: &str, value: Node) -> (String, Node) {
    (key.to_string(), value)
}

fn zh(text: &str) -> Node {
    Node::Map(vec![entry("zh-CN", Node::str(text))])
}

fn info() -> Node {
    Node::Map(vec![
        entry("category", Node::str("ai")),
        entry("name", Node::str("ai-load-balancer")),
        entry("title", Node::str("AI Load Balancer")),
        entry("x-title-i18n", zh("AI 负载均衡")),
        entry(
            "description",
            Node::str(
                "Sends each LLM request to the least-loaded (or best-scored) provider: writes \
                 the routing header the routes match on and rewrites the body's model. Loads \
                 from Redis, an HTTP endpoint, engines' Prometheus metrics or the filter's own \
                 in-flight counts; model pools, eight strategies, health checks, API-key pools \
                 and retries on another provider.",
            ),
        ),
        entry(
            "x-description-i18n",
            zh("把每个 LLM 请求发往负载最低（或得分最高）的服务提供方：写入路由匹配所用的请求头，并改写请求体中的模型名。负载可来自 Redis、HTTP 接口、推理引擎的 Prometheus 指标或插件自身的在途请求计数；支持模型池、八种策略、健康检查、API 密钥池以及在其他提供方上重试。"),
        ),
        entry("version", Node::str(env!("CARGO_PKG_VERSION"))),
        entry(
            "contact",
            Node::Map(vec![entry("name", Node::str("ai-load-balancer maintainers"))]),
        ),
    ])
}

/// `openAPIV3Schema` of one form: the object's schema and an example (the seed's configuration).
fn console_schema(object: &Object) -> Node {
    let mut schema = object_entries(object);
    schema.push(entry("example", seed_example()));
    Node::Map(vec![entry("openAPIV3Schema", Node::Map(schema))])
}

fn seed_example() -> Node {
    let provider = |name: &str, key: &str, model: &str| {
        Node::Map(vec![
            entry("name", Node::str(name)),
            entry("key", Node::str(key)),
            entry("model", Node::str(model)),
        ])
    };
    Node::Map(vec![
        entry(
            "providers",
            Node::List(vec![
                provider("minmax", "minimax_1", "MiniMax-M2.1"),
                provider("qianwen", "qwen_1", "qwen3-max-preview"),
            ]),
        ),
        entry(
            "redis",
            Node::Map(vec![
                entry("service_name", Node::str("redis-svc")),
                entry("service_port", Node::Int(6379)),
            ]),
        ),
    ])
}
