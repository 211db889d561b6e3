use super::*;
use crate::config::balancer::DEFAULT_MAX_BODY_BYTES;
use crate::config::sources::DEFAULT_TIMEOUT_MS;
use crate::config::Refresh;
use crate::store::StoreQuery;

/// The seed's configuration, verbatim (its comments included).
pub(super) const SEED: &str = r#"providers:
- name: "minmax"             # 匹配路由 Header 的值
  key: "minimax_1"           # Redis Key
  model: "MiniMax-M2.1"      # 改写后的真名
- name: "qianwen"
  key: "qwen_1"
  model: "qwen3-max-preview"
redis:
  service_name: "redis-svc"
  service_port: 6379
"#;

fn parse(text: &str) -> Result<PluginConfig, ConfigError> {
    PluginConfig::from_yaml(text, Build::Higress)
}

fn refusal(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

fn refusal_on(build: Build, text: &str) -> String {
    PluginConfig::from_yaml(text, build)
        .unwrap_err()
        .to_string()
}

#[test]
fn seed_config_works_verbatim_on_the_higress_build() {
    let plugin = parse(SEED).unwrap();
    let config = plugin.global.as_ref().unwrap();
    assert!(plugin.rules.is_empty());
    let names: Vec<_> = config.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["minmax", "qianwen"]);
    assert_eq!(config.providers[0].key, "ai_metric:minimax_1");
    assert_eq!(
        config.providers[1].model.as_deref(),
        Some("qwen3-max-preview")
    );
    assert_eq!(config.providers[0].weight, 1);
    assert_eq!(
        config.store().unwrap().config.cluster,
        "outbound|6379||redis-svc"
    );
    assert_eq!(config.store().unwrap().config.protocol, Protocol::Resp);
    assert_eq!(
        config.store().unwrap().config.timeout_ms,
        DEFAULT_TIMEOUT_MS
    );
    assert_eq!(config.selected_provider_header, "x-selected-provider");
    assert_eq!(config.rewrite_model_header, "x-rewrite-target-model");
    assert_eq!(config.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
    assert_eq!(
        config.store().unwrap().query,
        StoreQuery::Resp {
            upstream: "outbound|6379||redis-svc".into(),
            command:
                b"*3\r\n$4\r\nMGET\r\n$19\r\nai_metric:minimax_1\r\n$16\r\nai_metric:qwen_1\r\n"
                    .to_vec(),
        }
    );
    assert_eq!(
        plugin.control_headers,
        ["x-selected-provider", "x-rewrite-target-model"]
    );
}

#[test]
fn seed_config_on_the_envoy_build_reads_through_webdis() {
    let plugin = PluginConfig::from_yaml(SEED, Build::Envoy).unwrap();
    let config = plugin.global.unwrap();
    assert_eq!(config.store().unwrap().config.protocol, Protocol::Webdis);
    assert_eq!(
        config.store().unwrap().query,
        StoreQuery::Webdis {
            cluster: "outbound|6379||redis-svc".into(),
            path: "/MGET/ai_metric:minimax_1/ai_metric:qwen_1.json".into(),
            authorization: None,
        }
    );
}

#[test]
fn json_and_yaml_give_the_same_configuration() {
    let json = r#"{"providers":[{"name":"minmax","key":"minimax_1","model":"MiniMax-M2.1"},
        {"name":"qianwen","key":"qwen_1","model":"qwen3-max-preview"}],
        "redis":{"service_name":"redis-svc","service_port":6379}}"#;
    let from_json = parse(json).unwrap().global.unwrap();
    let from_yaml = parse(SEED).unwrap().global.unwrap();
    assert_eq!(from_json.providers, from_yaml.providers);
    assert_eq!(from_json.store(), from_yaml.store());
}

#[test]
fn every_field_is_read() {
    let plugin = parse(
        r#"
providers:
- {name: a, key: ka, weight: 3}
- {name: b, key: kb, model: m-b, weight: 0}
redis:
  cluster: "outbound|6380||redis.prod.svc.cluster.local"
  service_name: ignored-when-cluster-is-set
  service_port: 1
  username: lb
  password: pw
  database: 4
  timeout_ms: 250
  key_prefix: "load/"
  protocol: webdis
selected_provider_header: X-Provider
rewrite_model_header: x-model
max_body_bytes: 1048576
"#,
    )
    .unwrap();
    let config = plugin.global.unwrap();
    assert_eq!(config.providers[0].model, None);
    let weights: Vec<u32> = config.pools.pools[0]
        .backends
        .iter()
        .map(|b| b.weight)
        .collect();
    assert_eq!(weights, [3, 0]);
    assert_eq!(config.providers[1].key, "load/kb");
    assert_eq!(
        config.store().unwrap().config,
        StoreConfig {
            cluster: "outbound|6380||redis.prod.svc.cluster.local".into(),
            username: Some("lb".into()),
            password: Some("pw".into()),
            database: Some(4),
            timeout_ms: 250,
            protocol: Protocol::Webdis,
            refresh: Refresh::PerRequest {
                down: Default::default(),
            },
        }
    );
    assert_eq!(config.selected_provider_header, "x-provider");
    assert_eq!(config.rewrite_model_header, "x-model");
    assert_eq!(config.max_body_bytes, 1 << 20);
}

#[test]
fn refusals_name_the_field_and_the_reason() {
    let provider_list = "providers: [{name: a, key: ka}]\n";
    let redis = "redis: {service_name: r, service_port: 6379}\n";
    let cases: Vec<(String, &str)> = vec![
        (
            "providers:\n- {name: minmax, key: a}\n- {name: qianwen, key: b}\n- {name: qianwen, key: c}\nredis: {service_name: r, service_port: 1}\n".into(),
            "providers[2].name: duplicate \"qianwen\"",
        ),
        (redis.to_string(), "providers: required"),
        (format!("providers: []\n{redis}"), "providers: must list at least one provider"),
        (format!("providers: {{name: a}}\n{redis}"), "providers: invalid type: map, expected a sequence"),
        (format!("providers: [{{key: k}}]\n{redis}"), "providers[0]: missing field `name`"),
        (format!("providers: [{{name: '', key: k}}]\n{redis}"), "providers[0].name: must not be empty"),
        (format!("providers: [{{name: a, key: 7}}]\n{redis}"), "providers[0].key: invalid type: integer `7`, expected a string"),
        (
            format!("providers: [{{name: a, key: k, modle: m}}]\n{redis}"),
            "providers[0].modle: unknown field `modle`, expected one of `name`, `key`, `model`, `weight`, `tier`, `metrics`, `cluster`, `prefix_rewrite`, `probe`, `api_tokens`, `token_header`",
        ),
        (
            format!("providers: [{{name: a, key: k, weight: -1}}]\n{redis}"),
            "providers[0].weight: must be a whole number from 0 to 1000000, got -1",
        ),
        (
            format!("providers: [{{name: a, key: k, weight: 1.5}}]\n{redis}"),
            "providers[0].weight: must be a whole number from 0 to 1000000, got 1.5",
        ),
        (
            format!("providers: [{{name: a, key: k, weight: 0}}]\n{redis}"),
            "providers: every weight is 0; at least one provider needs a weight above 0 for when loads are unknown",
        ),
        (
            format!("providers: [{{name: \"a\\nb\", key: k}}]\n{redis}"),
            "providers[0].name: \"a\\nb\" cannot be sent in a header (control characters or surrounding spaces)",
        ),
        (provider_list.to_string(), "strategy: strategy least_load ranks providers by load, and no load source is set: set redis, or load_source \"endpoint\", \"engine_metrics\" or \"in_flight\""),
        (format!("{provider_list}redis: {{}}\n"), "redis: needs cluster, or service_name and service_port"),
        (
            format!("{provider_list}redis: {{service_name: r}}\n"),
            "redis.service_port: required with service_name",
        ),
        (
            format!("{provider_list}redis: {{service_name: r, service_port: 70000}}\n"),
            "redis.service_port: must be a whole number from 1 to 65535, got 70000",
        ),
        (
            format!("{provider_list}redis: {{service_name: r, service_port: \"6379\"}}\n"),
            "redis.service_port: must be a whole number from 1 to 65535, got \"6379\"",
        ),
        (
            format!("{provider_list}redis: {{servce_name: r}}\n"),
            "redis.servce_name: unknown field `servce_name`, expected one of `service_name`, `service_port`, `cluster`, `username`, `password`, `database`, `timeout_ms`, `key_prefix`, `protocol`, `refresh`, `refresh_interval_ms`, `max_age_ms`, `down_after_failures`, `down_retry_ms`, `load_format`, `hash_fields`",
        ),
        (
            format!("{provider_list}redis: {{cluster: c, timeout_ms: 0}}\n"),
            "redis.timeout_ms: must be a whole number from 1 to 60000, got 0",
        ),
        (
            format!("{provider_list}redis: {{cluster: c, protocol: http}}\n"),
            "redis.protocol: unknown variant `http`, expected `resp` or `webdis`",
        ),
        (
            format!("{provider_list}{redis}selected_provider_header: \"x provider\"\n"),
            "selected_provider_header: \"x provider\" is not a valid header name",
        ),
        (
            format!("{provider_list}{redis}rewrite_model_header: Content-Length\n"),
            "rewrite_model_header: \"Content-Length\" is a header the gateway relies on; choose another name",
        ),
        (
            format!("{provider_list}{redis}rewrite_model_header: X-Selected-Provider\n"),
            "rewrite_model_header: must differ from selected_provider_header (\"x-selected-provider\")",
        ),
        (
            format!("{provider_list}{redis}max_body_bytes: 0\n"),
            "max_body_bytes: must be a whole number from 1 to 134217728, got 0",
        ),
        (format!("{provider_list}{redis}providerz: []\n"), "providerz: unknown field `providerz`, expected one of `providers`, `redis`, `selected_provider_header`, `rewrite_model_header`, `max_body_bytes`, `models`, `strategy`, `spillover`, `session_affinity`, `rate_limits`, `unknown_model`, `list_models`, `load_source`, `endpoint`, `engine_metrics`, `in_flight`, `health`, `retry`, `status_endpoint`, `paths`, `route_names`"),
        ("- just\n- a list\n".into(), "configuration: must be a mapping, got a list"),
        ("providers: [\n".into(), "configuration: invalid YAML: "),
        ("".into(), "providers: required"),
        ("# only a comment\n".into(), "providers: required"),
        (
            "providers:\n\t- {name: a, key: k}\n".into(),
            "configuration: invalid YAML: tabs disallowed within this context (block indentation) at byte 12 line 2 column 2",
        ),
        (
            format!("{redis}providers: [{{name: a, key: k, weight: .inf}}]\n"),
            "configuration: invalid YAML: line 2: \".inf\" is not a finite number",
        ),
        (
            "a: 1\n---\nb: 2\n".into(),
            "configuration: invalid YAML: line 2: several documents; expected one",
        ),
    ];
    for (text, expected) in &cases {
        let message = refusal(text);
        assert!(
            message.starts_with(expected) && (expected.ends_with(": ") || message == *expected),
            "config:\n{text}\nexpected: {expected}\n     got: {message}"
        );
    }
}

#[test]
fn the_module_reads_json_and_refuses_yaml_saying_what_to_write() {
    let refusal = |text: &str| {
        PluginConfig::parse(text.as_bytes(), Build::Envoy)
            .unwrap_err()
            .to_string()
    };
    let refused = refusal("{\"providers\": [}");
    assert!(
        refused.starts_with("configuration: invalid JSON: expected value at line 1 column 16"),
        "{refused}"
    );
    assert_eq!(
        refusal("providers:\n- name: a\n"),
        "configuration: invalid JSON: expected value at line 1 column 1 (YAML is not read: \
         write the configuration as JSON, which a YAML block scalar such as `value: |` holds \
         as it is)"
    );
    let json = r#"{"providers": [{"name": "a"}], "load_source": "none", "strategy": "random"}"#;
    assert!(PluginConfig::parse(json.as_bytes(), Build::Envoy).is_ok());
    assert_eq!(
        PluginConfig::parse(b"  \n", Build::Envoy)
            .unwrap_err()
            .to_string(),
        "providers: required"
    );
}

#[test]
fn resp_on_the_envoy_build_names_the_higress_build() {
    let text = "providers: [{name: a, key: k}]\nredis: {cluster: c, protocol: resp}\n";
    assert_eq!(
        refusal_on(Build::Envoy, text),
        "redis.protocol: \"resp\" needs the Higress build (ai-load-balancer.wasm); this Envoy \
         build (ai-load-balancer-envoy.wasm) reads Redis through Webdis: use \"webdis\""
    );
    assert!(PluginConfig::from_yaml(text, Build::Higress).is_ok());
}

const RULES: &str = r#"{
  "redis": {"service_name": "redis-svc", "service_port": 6379},
  "_rules_": [
    {"_match_route_": ["chat"], "providers": [{"name": "a", "key": "ka"}]},
    {"_match_domain_": ["*.example.com"], "providers": [{"name": "b", "key": "kb"}],
     "redis": {"cluster": "other", "timeout_ms": 50}, "selected_provider_header": "x-vendor"}
  ]
}"#;

#[test]
fn rules_inherit_global_fields_and_override_them() {
    let plugin = parse(RULES).unwrap();
    assert!(plugin.global.is_none(), "no global providers: rules only");
    assert_eq!(plugin.rules.len(), 2);
    assert_eq!(
        plugin.rules[0].config.store().unwrap().config.cluster,
        "outbound|6379||redis-svc"
    );
    assert_eq!(
        plugin.rules[1].config.store().unwrap().config.cluster,
        "other"
    );
    assert_eq!(
        plugin.rules[1].config.store().unwrap().config.timeout_ms,
        50
    );
    assert_eq!(
        plugin.control_headers,
        ["x-selected-provider", "x-rewrite-target-model", "x-vendor"]
    );
}

#[test]
fn first_matching_rule_wins_then_global_then_nothing() {
    let rules_only = parse(RULES).unwrap();
    let chat = RequestIdentity {
        route_name: Some("chat"),
        authority: Some("api.example.com"),
        ..Default::default()
    };
    assert_eq!(rules_only.applicable(&chat), Some(ConfigRef::Rule(0)));
    let other = RequestIdentity {
        route_name: Some("other"),
        authority: Some("api.example.com"),
        ..Default::default()
    };
    assert_eq!(rules_only.applicable(&other), Some(ConfigRef::Rule(1)));
    assert_eq!(rules_only.applicable(&RequestIdentity::default()), None);

    let with_global = RULES.replacen(
        "\"_rules_\"",
        "\"providers\": [{\"name\": \"g\", \"key\": \"kg\"}], \"_rules_\"",
        1,
    );
    let plugin = parse(&with_global).unwrap();
    assert_eq!(
        plugin.applicable(&RequestIdentity::default()),
        Some(ConfigRef::Global)
    );
    assert_eq!(
        plugin.get(ConfigRef::Global).unwrap().providers[0].name,
        "g"
    );
    // A rule's own providers replace the global ones.
    assert_eq!(
        plugin.get(ConfigRef::Rule(0)).unwrap().providers[0].name,
        "a"
    );
}

#[test]
fn rule_refusals_name_the_rule() {
    let cases = [
        (
            r#"{"_rules_": {"_match_route_": ["a"]}}"#,
            "_rules_: must be a list, got a mapping",
        ),
        (
            r#"{"_rules_": [{"_match_route_": ["a"], "redis": {"cluster": "c"}}]}"#,
            "_rules_[0].providers: required",
        ),
        (
            r#"{"redis": {"cluster": "c"}, "_rules_": [{"_match_route_": ["a"], "providers": [{"name": "a", "key": "k", "wieght": 2}]}]}"#,
            "_rules_[0].providers[0].wieght: unknown field `wieght`, expected one of `name`, `key`, `model`, `weight`, `tier`, `metrics`, `cluster`, `prefix_rewrite`, `probe`, `api_tokens`, `token_header`",
        ),
        (
            r#"{"redis": {"cluster": "c"}, "_rules_": [{"providers": []}]}"#,
            "_rules_[0]: needs one of _match_route_, _match_route_prefix_, _match_domain_, _match_service_",
        ),
        (
            r#"{"redis": {"cluster": "c"}, "_rulez_": [], "_rules_": [{"_match_route_": ["a"], "providers": [{"name": "a", "key": "k"}]}]}"#,
            "_rulez_: unknown field `_rulez_`, expected one of `providers`, `redis`, `selected_provider_header`, `rewrite_model_header`, `max_body_bytes`, `models`, `strategy`, `spillover`, `session_affinity`, `rate_limits`, `unknown_model`, `list_models`, `load_source`, `endpoint`, `engine_metrics`, `in_flight`, `health`, `retry`, `status_endpoint`, `paths`, `route_names`",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(refusal(text), expected, "{text}");
    }
}

#[test]
fn loads_are_read_per_request_unless_background_refresh_is_chosen() {
    let config = parse(SEED).unwrap().global.unwrap();
    assert_eq!(
        config.store().unwrap().config.refresh,
        Refresh::PerRequest {
            down: Default::default()
        }
    );
    let background = format!("{SEED}  refresh: background\n");
    let config = parse(&background).unwrap().global.unwrap();
    assert_eq!(
        config.store().unwrap().config.refresh,
        Refresh::Background {
            interval_ms: 500,
            max_age_ms: 1500
        }
    );
    let tuned =
        format!("{SEED}  refresh: background\n  refresh_interval_ms: 200\n  max_age_ms: 250\n");
    let config = parse(&tuned).unwrap().global.unwrap();
    assert_eq!(
        config.store().unwrap().config.refresh,
        Refresh::Background {
            interval_ms: 200,
            max_age_ms: 250
        }
    );
    let down = format!("{SEED}  down_after_failures: 1\n  down_retry_ms: 250\n");
    let config = parse(&down).unwrap().global.unwrap();
    assert_eq!(
        config.store().unwrap().config.refresh,
        Refresh::PerRequest {
            down: DownPolicy {
                after_failures: 1,
                retry_ms: 250
            }
        }
    );
}

#[test]
fn refresh_settings_that_cannot_work_are_refused() {
    let cases = [
        ("  refresh: sometimes\n", r#"redis.refresh: unknown variant `sometimes`, expected `per_request` or `background`"#),
        ("  refresh_interval_ms: 200\n", r#"redis.refresh_interval_ms: only used with refresh "background""#),
        ("  refresh: per_request\n  max_age_ms: 900\n", r#"redis.max_age_ms: only used with refresh "background""#),
        ("  refresh: background\n  down_retry_ms: 500\n", r#"redis.down_retry_ms: only used with refresh "per_request""#),
        ("  down_after_failures: 0\n", "redis.down_after_failures: must be a whole number from 1 to 1000, got 0"),
        ("  refresh: background\n  refresh_interval_ms: 5\n", "redis.refresh_interval_ms: must be a whole number from 10 to 60000, got 5"),
        (
            "  refresh: background\n  refresh_interval_ms: 1000\n  max_age_ms: 500\n",
            "redis.max_age_ms: 500 is shorter than refresh_interval_ms (1000): every load would count as unknown between refreshes",
        ),
    ];
    for (extra, expected) in cases {
        assert_eq!(refusal(&format!("{SEED}{extra}")), expected, "{extra}");
    }
}

#[test]
fn lists_past_their_cap_are_refused_naming_the_list() {
    let providers: Vec<String> = (0..1025).map(|i| format!(r#"{{"name":"p{i}"}}"#)).collect();
    let config = format!(
        r#"{{"load_source":"none","strategy":"random","providers":[{}]}}"#,
        providers.join(",")
    );
    let err = PluginConfig::from_yaml(&config, Build::Envoy).unwrap_err();
    assert_eq!(
        err.to_string(),
        "providers: 1025 entries; at most 1024 are accepted"
    );
    let at_cap = config.replacen(r#"{"name":"p0"},"#, "", 1);
    assert!(PluginConfig::from_yaml(&at_cap, Build::Envoy).is_ok());
}
