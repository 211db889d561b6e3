//! Spillover tiers and session affinity in the configuration.

use super::*;
use crate::strategy::Spillover;

fn parse(text: &str) -> Result<PluginConfig, ConfigError> {
    PluginConfig::from_yaml(text, Build::Envoy)
}

fn global(text: &str) -> BalancerConfig {
    parse(text).unwrap().global.unwrap()
}

const TIERED: &str = "providers:
- {name: gpu-a, tier: 0}
- {name: gpu-b}
- {name: api, tier: 1}
load_source: in_flight
";

#[test]
fn tiers_come_from_providers_and_pools_may_set_their_own() {
    let config = global(&format!("{TIERED}spillover: {{max_load: 8}}\n"));
    let pool = &config.pools.pools[0];
    assert_eq!(pool.spillover, Some(Spillover { max_load: 8.0 }));
    let tiers: Vec<u32> = pool.backends.iter().map(|b| b.tier).collect();
    assert_eq!(tiers, [0, 0, 1]);
    assert!(!pool.past_first_tier(1) && pool.past_first_tier(2));
    assert!(pool.session.is_none() && pool.ring.is_none());

    let config = global(&format!(
        "{TIERED}models:
  chat:
    spillover: {{max_load: 3}}
    backends: [{{provider: api, tier: 0}}, {{provider: gpu-a, tier: 5}}]
  tiered:
    spillover: {{max_load: 2}}
    backends: [{{provider: gpu-a}}, {{provider: gpu-b}}, {{provider: api}}]
"
    ));
    let tiers = |name: &str| -> Vec<u32> {
        let pool = &config.pools.pools[config.pools.for_model(Some(name)).unwrap()];
        pool.backends.iter().map(|b| b.tier).collect()
    };
    assert_eq!(tiers("chat"), [0, 5]);
    assert_eq!(tiers("tiered"), [0, 0, 1], "the providers' tiers");
}

#[test]
fn with_engine_metrics_a_provider_without_an_engine_belongs_in_a_higher_tier() {
    let engines = "providers:
- {name: gpu-a, metrics: {cluster: gpu-a}}
- {name: gpu-b, metrics: {cluster: gpu-b}}
";
    let config = global(&format!(
        "{engines}- {{name: api, tier: 1}}\nload_source: engine_metrics\nspillover: {{max_load: 4}}\n"
    ));
    assert_eq!(config.pools.pools[0].backends[2].tier, 1);
    let refused = parse(&format!(
        "{engines}- {{name: api}}\nload_source: engine_metrics\n"
    ))
    .unwrap_err();
    assert!(
        refused.to_string().ends_with(
            "which load_source \"engine_metrics\" needs (a provider without an engine, such as \
             a paid API, goes in a spillover tier above 0)"
        ),
        "{refused}"
    );
}

#[test]
fn session_affinity_reads_a_header_or_a_body_field() {
    let header_only = global(
        "providers: [{name: a}, {name: b}]\nstrategy: random\nsession_affinity: {header: X-Session-ID}\n",
    );
    let pool = &header_only.pools.pools[0];
    let session = pool.session.as_ref().unwrap();
    assert_eq!(session.header.as_deref(), Some("x-session-id"));
    assert_eq!(
        (session.body_field.as_deref(), session.load_factor),
        (None, 0.25)
    );
    assert!(pool.ring.is_some(), "the session walks the pool's ring");
    assert!(
        !header_only.pools.need_body(),
        "a header is read with the headers"
    );

    let body = global(
        "providers: [{name: a}, {name: b}]
models:
  chat: {strategy: random, backends: [{provider: a}, {provider: b}]}
  sticky:
    strategy: round_robin
    session_affinity: {header: x-session-id, body_field: user, load_factor: 0.5}
    backends: [{provider: a}, {provider: b}]
",
    );
    let sticky = &body.pools.pools[body.pools.for_model(Some("sticky")).unwrap()];
    assert_eq!(sticky.session_field(), Some("user"));
    assert_eq!(sticky.session.as_ref().unwrap().load_factor, 0.5);
    assert_eq!(body.pools.common_session_field.as_deref(), Some("user"));
    let without_models = global(
        "providers: [{name: a}]\nload_source: in_flight\nsession_affinity: {body_field: user}\n",
    );
    assert!(
        without_models.pools.need_body(),
        "the body field needs the body"
    );
}

#[test]
fn misconfigured_tiers_and_sessions_are_refused_naming_the_field() {
    let two = "providers: [{name: a}, {name: b}]\nload_source: in_flight\n";
    let pool = |rest: &str| format!("{two}models: {{x: {{strategy: random, {rest}}}}}\n");
    let cases = [
        (TIERED.to_string(), "providers[0].tier: read by no pool with spillover: set spillover (with models, models.<name>.spillover), or remove it"),
        (format!("{TIERED}models: {{x: {{backends: [{{provider: api}}, {{provider: gpu-b}}]}}}}\n"), "providers[0].tier: read by no pool"),
        (format!("{TIERED}models: {{x: {{spillover: {{max_load: 2}}, backends: [{{provider: gpu-a, tier: 1}}, {{provider: api}}, {{provider: gpu-b}}]}}}}\n"), "providers[0].tier: read by no pool"),
        (pool("backends: [{provider: a, tier: 1}, {provider: b}]"), "models.x.backends[0].tier: only used with spillover (models.<name>.spillover)"),
        (pool("spillover: {max_load: 4}, backends: [{provider: a}, {provider: b}]"), "models.x.spillover: every backend is in one tier; spillover needs backends in two tiers or more (tier)"),
        (pool("spillover: {max_load: 0}, backends: [{provider: a}, {provider: b, tier: 1}]"), "models.x.spillover.max_load: must be a whole number from 1 to 1048576, got 0"),
        (pool("spillover: {}, backends: [{provider: a}, {provider: b, tier: 1}]"), "models.x.spillover: missing field `max_load`"),
        (format!("{two}spillover: {{max_load: 4}}\n"), "spillover: every backend is in one tier"),
        (format!("{two}spillover: {{max_load: 4}}\nmodels: {{x: {{backends: [{{provider: a}}]}}}}\n"), "spillover: with models, each pool sets its own spillover (models.<name>.spillover)"),
        (format!("{two}session_affinity: {{header: s}}\nmodels: {{x: {{backends: [{{provider: a}}]}}}}\n"), "session_affinity: with models, each pool sets its own session_affinity (models.<name>.session_affinity)"),
        (pool("session_affinity: {load_factor: 1}, backends: [{provider: a}]"), "models.x.session_affinity: needs header, body_field or both: where the session key is"),
        (pool("session_affinity: {header: \"x session\"}, backends: [{provider: a}]"), "models.x.session_affinity.header: \"x session\" is not a valid header name"),
        (pool("session_affinity: {body_field: model}, backends: [{provider: a}]"), "models.x.session_affinity.body_field: \"model\" is read for routing already"),
        (pool("session_affinity: {body_field: \"\"}, backends: [{provider: a}]"), "models.x.session_affinity.body_field: must not be empty"),
        (pool("session_affinity: {header: X-Selected-Provider}, backends: [{provider: a}]"), "models.x.session_affinity.header: \"x-selected-provider\" is a routing header the filter sets; choose another"),
        (format!("{two}session_affinity: {{header: x-rewrite-target-model}}\n"), "session_affinity.header: \"x-rewrite-target-model\" is a routing header"),
        (pool("spillover: {max_load: 2, header: h}, backends: [{provider: a}, {provider: b, tier: 1}]"), "models.x.spillover.header: unknown field `header`, expected `max_load`"),
        (format!("{two}session_affinity: x-session-id\n"), "session_affinity: invalid type: string \"x-session-id\", expected struct SessionAffinity"),
        (format!("{two}session_affinity: {{header: s, cookie: c}}\n"), "session_affinity.cookie: unknown field `cookie`, expected one of `header`, `body_field`, `load_factor`"),
        (format!("{two}session_affinity: {{header: s, max_load: 3}}\n"), "session_affinity.max_load: unknown field `max_load`, expected one of `header`, `body_field`, `load_factor`"),
    ];
    for (text, expected) in &cases {
        match parse(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(err) => {
                let message = err.to_string();
                assert!(
                    message.starts_with(expected),
                    "config:\n{text}\nexpected: {expected}\n     got: {message}"
                );
            }
        }
    }
}
