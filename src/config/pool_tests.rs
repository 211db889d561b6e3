//! Model pools, strategies and load sources in the configuration.

use super::*;
use crate::strategy::{Affinity, ScoreWeights, Strategy};

fn parse(text: &str) -> Result<PluginConfig, ConfigError> {
    PluginConfig::from_yaml(text, Build::Envoy)
}

fn global(text: &str) -> BalancerConfig {
    parse(text).unwrap().global.unwrap()
}

const PROVIDERS: &str = "providers:\n- {name: a, model: ma}\n- {name: b}\n";

#[test]
fn pools_map_names_to_backends_with_their_own_models() {
    let config = global(&format!(
        "{PROVIDERS}load_source: in_flight\nlist_models: true\nunknown_model: fast\nmodels:
  fast:
    strategy: {{name: inference_score, candidate_percent: 50, prefill_load_weight: 5}}
    backends: [{{provider: a, model: mx, weight: 3}}, {{provider: b, priority: 7}}]
  chat:
    strategy: {{name: prefix_affinity, prefix_bytes: 64}}
    backends: [{{provider: b}}, {{provider: a}}]
  slow: {{strategy: round_robin, backends: [{{provider: b}}]}}
"
    ));
    let pools = &config.pools;
    assert!(pools.by_model && config.list_models && pools.need_body());
    let names: Vec<&str> = pools.names().collect();
    assert_eq!(names, ["chat", "fast", "slow"], "sorted by name");
    let fast = &pools.pools[pools.for_model(Some("fast")).unwrap()];
    assert_eq!(
        fast.strategy,
        Strategy::InferenceScore(ScoreWeights {
            candidate_percent: 50,
            prefill_load: 5.0,
            ..ScoreWeights::default()
        })
    );
    let backends: Vec<_> = fast
        .backends
        .iter()
        .map(|b| (b.provider, b.model.as_deref(), b.weight, b.priority))
        .collect();
    assert_eq!(backends, [(0, Some("mx"), 3, 1), (1, None, 1, 7)]);
    let chat = &pools.pools[pools.for_model(Some("chat")).unwrap()];
    let affinity = Affinity {
        prefix_bytes: 64,
        ..Affinity::default()
    };
    assert_eq!(chat.strategy, Strategy::PrefixAffinity(affinity));
    assert!(chat.ring.is_some());
    assert_eq!(
        chat.backends[1].model.as_deref(),
        Some("ma"),
        "the provider's model"
    );
    assert_eq!(pools.for_model(Some("nope")), Err(UnknownModel::Pool(1)));
    assert_eq!(pools.for_model(None), Err(UnknownModel::Pool(1)));
}

#[test]
fn without_models_one_pool_holds_every_provider_as_before() {
    let config = global(&format!("{PROVIDERS}redis: {{cluster: c}}\n"));
    assert!(!config.pools.by_model && !config.pools.need_body());
    assert_eq!(config.pools.for_model(Some("anything")), Ok(0));
    let pool = &config.pools.pools[0];
    assert_eq!(pool.strategy, Strategy::LeastLoad);
    let models: Vec<_> = pool.backends.iter().map(|b| b.model.as_deref()).collect();
    assert_eq!(models, [Some("ma"), None]);
    let rr = global(&format!("{PROVIDERS}strategy: round_robin\n"));
    assert_eq!(rr.pools.pools[0].strategy, Strategy::RoundRobin);
    assert_eq!(rr.loads, LoadSource::None);
}

#[test]
fn load_sources_are_read_from_their_sections() {
    let endpoint = global(&format!(
        "{PROVIDERS}load_source: endpoint\nendpoint: {{cluster: meta, path: /loads, refresh: background}}\n"
    ));
    let read = endpoint.store().unwrap();
    assert_eq!(
        read.format,
        ReplyFormat::Endpoint(vec!["a".into(), "b".into()])
    );
    assert!(matches!(read.config.refresh, Refresh::Background { .. }));
    let hashes = global(&format!(
        "{PROVIDERS}redis: {{cluster: c, load_format: hash, hash_fields: {{waiting: queue}}}}\n"
    ));
    let read = hashes.store().unwrap();
    assert_eq!(read.format, ReplyFormat::Hashes);
    let crate::store::StoreQuery::Webdis { path, .. } = &read.query else {
        panic!("webdis query expected")
    };
    assert!(
        path.starts_with("/EVAL/")
            && path.ends_with("/ai_metric:a/ai_metric:b/running/queue/cache_ratio.json"),
        "{path}"
    );
    let engines = global(
        "providers:\n- {name: a, metrics: {cluster: ea}}\n- {name: b, metrics: {cluster: eb, path: /m}}\nload_source: engine_metrics\nengine_metrics: {interval_ms: 200}\n",
    );
    assert_eq!(
        engines.loads,
        LoadSource::Engines(EngineScrape {
            interval_ms: 200,
            timeout_ms: 500,
            max_age_ms: 600
        })
    );
    assert_eq!(
        engines.providers[0].metrics.as_ref().unwrap().path,
        "/metrics"
    );
    let in_flight = global(&format!("{PROVIDERS}load_source: in_flight\n"));
    assert_eq!(
        in_flight.loads,
        LoadSource::InFlight(InFlightScope::Gateway)
    );
}

#[test]
fn bad_pools_and_sources_are_refused_naming_the_field() {
    let none = "load_source: none\n";
    let cases = [
        (format!("{PROVIDERS}{none}models: {{}}\n"), "models: must name at least one model"),
        (format!("{PROVIDERS}{none}models: {{x: {{backends: [{{provider: c}}]}}}}\n"), "models.x.backends[0].provider: \"c\" is not in providers"),
        (format!("{PROVIDERS}{none}models: {{x: {{backends: []}}}}\n"), "models.x.backends: must list at least one backend"),
        (format!("{PROVIDERS}{none}models: {{x: {{strategy: fastest, backends: [{{provider: a}}]}}}}\n"), "models.x.strategy: unknown variant `fastest`, expected one of `least_load`, `weighted_random`, `random`, `round_robin`, `failover`, `least_latency`, `inference_score`, `prefix_affinity`"),
        (format!("{PROVIDERS}{none}models: {{x: {{strategy: {{name: random, prefix_bytes: 3}}, backends: [{{provider: a}}]}}}}\n"), "models.x.strategy.prefix_bytes: not an option of strategy \"random\""),
        (format!("{PROVIDERS}{none}models: {{x: {{strategy: {{name: inference_score, candidate_percent: 0}}, backends: [{{provider: a}}]}}}}\n"), "models.x.strategy.candidate_percent: must be a whole number from 1 to 100, got 0"),
        (format!("{PROVIDERS}{none}models: {{x: {{backends: [{{provider: a}}, {{provider: a}}]}}}}\n"), "models.x.backends[1].provider: \"a/ma\" is listed twice in this pool"),
        (format!("{PROVIDERS}{none}models: {{x: {{backends: [{{provider: a, weight: 0}}]}}}}\n"), "models.x.backends: every weight is 0"),
        (format!("{PROVIDERS}{none}unknown_model: y\nmodels: {{x: {{strategy: random, backends: [{{provider: a}}]}}}}\n"), "unknown_model: \"y\" is neither \"reject\", \"pass_through\" nor a name in models"),
        (format!("{PROVIDERS}{none}models: {{reject: {{strategy: random, backends: [{{provider: a}}]}}}}\n"), "models.reject: \"reject\" cannot name a model"),
        (format!("{PROVIDERS}{none}strategy: random\nmodels: {{x: {{strategy: random, backends: [{{provider: a}}]}}}}\n"), "strategy: with models, each pool sets its own strategy"),
        (format!("{PROVIDERS}{none}strategy: random\nlist_models: true\n"), "list_models: lists the names in models; set models too"),
        (format!("{PROVIDERS}load_source: in_flight\nmodels: {{x: {{strategy: inference_score, backends: [{{provider: a}}]}}}}\nunknown_model: pass_through\n"), ""),
        (format!("{PROVIDERS}{none}models: {{x: {{strategy: least_load, backends: [{{provider: a}}]}}}}\n"), "models.x: strategy least_load ranks providers by load, and no load source is set"),
        (format!("{PROVIDERS}load_source: endpoint\nendpoint: {{cluster: m, path: loads}}\n"), "endpoint.path: \"loads\" must start with /"),
        (format!("{PROVIDERS}load_source: engine_metrics\n"), "providers: provider \"a\" has no metrics"),
        (format!("{PROVIDERS}load_source: in_flight\nredis: {{cluster: c}}\n"), "redis: only used with load_source \"redis\" (load_source is \"in_flight\")"),
        (format!("{PROVIDERS}load_source: in_flight\nin_flight: {{scope: replicas}}\nredis: {{cluster: c}}\n"), "in_flight.scope: \"replicas\" counts in Redis"),
        (format!("{PROVIDERS}load_source: magic\n"), "load_source: unknown variant `magic`, expected one of `redis`, `endpoint`, `engine_metrics`, `in_flight`, `none`"),
        (format!("{PROVIDERS}redis: {{cluster: c, hash_fields: {{running: r}}}}\n"), "redis.hash_fields: only used with load_format \"hash\""),
    ];
    for (text, expected) in &cases {
        match parse(text) {
            Ok(_) if expected.is_empty() => {}
            Ok(_) => panic!("accepted:\n{text}"),
            Err(err) => {
                let message = err.to_string();
                assert!(
                    !expected.is_empty() && message.starts_with(expected),
                    "config:\n{text}\nexpected: {expected}\n     got: {message}"
                );
            }
        }
    }
}

#[test]
fn rate_limits_set_pool_floors_and_each_provider_keeps_the_highest() {
    use crate::ratelimit::{Floor, RateWatch};
    let config = global(&format!(
        "{PROVIDERS}strategy: random\nrate_limits: {{min_remaining_tokens: 500}}\n"
    ));
    let floor = Floor {
        requests: 1,
        tokens: 500,
    };
    assert_eq!(config.pools.pools[0].rate_limits, Some(floor));
    assert_eq!(
        config.providers[0].rate_limits,
        Some(RateWatch {
            key: "ai_lb/ratelimit/a".into(),
            floor
        })
    );
    let config = global(&format!(
        "{PROVIDERS}models:
  x: {{strategy: random, rate_limits: {{min_remaining_requests: 5, min_remaining_tokens: 0}},
      backends: [{{provider: a}}]}}
  y: {{strategy: random, rate_limits: {{min_remaining_requests: 2}}, backends: [{{provider: a}}]}}
  z: {{strategy: random, backends: [{{provider: b}}]}}
"
    ));
    let watch = config.providers[0].rate_limits.as_ref().unwrap();
    assert_eq!(
        watch.floor,
        Floor {
            requests: 5,
            tokens: 1
        }
    );
    assert_eq!(config.providers[1].rate_limits, None, "in no watching pool");
    assert_eq!(config.pools.pools[2].rate_limits, None);
}

#[test]
fn rate_limits_are_refused_with_their_path() {
    for (text, message) in [
        (
            format!("{PROVIDERS}strategy: random\nrate_limits: {{min_remaining_requests: 0, min_remaining_tokens: 0}}\n"),
            "rate_limits: both floors are 0, so nothing would be avoided; leave rate_limits out to turn it off",
        ),
        (
            format!("{PROVIDERS}rate_limits: {{}}\nmodels: {{x: {{strategy: random, backends: [{{provider: a}}]}}}}\n"),
            "rate_limits: with models, each pool sets its own rate_limits (models.<name>.rate_limits)",
        ),
        (
            format!("{PROVIDERS}models: {{x: {{strategy: random, rate_limits: {{min_remaining_requests: -1}}, backends: [{{provider: a}}]}}}}\n"),
            "models.x.rate_limits.min_remaining_requests: must be a whole number from 0 to 1000000, got -1",
        ),
        (
            format!("{PROVIDERS}strategy: random\nrate_limits: {{floor: 1}}\n"),
            "rate_limits.floor: unknown field `floor`, expected `min_remaining_requests` or `min_remaining_tokens`",
        ),
    ] {
        assert_eq!(parse(&text).unwrap_err().to_string(), message, "{text}");
    }
}
