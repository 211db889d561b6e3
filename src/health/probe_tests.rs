//! Which probes run, when, and which are still out.

use super::*;
use crate::config::Build;

fn plugin(json: &str) -> PluginConfig {
    PluginConfig::parse(json.as_bytes(), Build::Envoy).unwrap()
}

/// A global configuration and two rules, each with its own probe interval; provider `a` is named
/// in the global configuration and in the first rule.
const CONFIGS: &str = r#"{
  "providers": [{"name": "a", "cluster": "ca"}, {"name": "b", "cluster": "cb"}],
  "load_source": "none", "strategy": "random",
  "health": {"probe": {"interval_ms": 3000, "timeout_ms": 500}},
  "_rules_": [
    {"_match_route_": ["r1"], "providers": [{"name": "a", "cluster": "ca"}, {"name": "c"}],
     "health": {"probe": {"interval_ms": 1000, "timeout_ms": 200}}},
    {"_match_route_": ["r2"], "providers": [{"name": "d"}],
     "health": {"probe": {"interval_ms": 500, "timeout_ms": 100}}},
    {"_match_route_": ["r3"], "providers": [{"name": "e", "cluster": "ce"}],
     "health": {"probe": false}}
  ]
}"#;

#[test]
fn probes_run_on_the_shortest_interval_of_a_configuration_that_can_probe() {
    let plugin = plugin(CONFIGS);
    // Rule r2 asks for 500 ms, but its one provider has no cluster: 1000 ms from rule r1.
    let schedule = probe_schedule(&plugin).unwrap();
    assert_eq!(schedule, Schedule::new(1_000, 200));
    let no_cluster = r#"{"providers": [{"name": "a"}], "load_source": "none",
        "strategy": "random"}"#;
    assert_eq!(probe_schedule(&self::plugin(no_cluster)), None);
    let off = r#"{"providers": [{"name": "a", "cluster": "ca"}], "load_source": "none",
        "strategy": "random", "health": {"probe": false}}"#;
    assert_eq!(probe_schedule(&self::plugin(off)), None);
}

#[test]
fn probes_look_at_each_provider_once_in_configurations_with_probes_on() {
    let plugin = plugin(CONFIGS);
    // Global a, b; rule r1's a again (skipped) and c; rule r2's d; rule r3 has probes off.
    let targets: Vec<_> = probe_targets(&plugin)
        .into_iter()
        .map(|(config, index, provider)| (config, index, provider.name.as_str()))
        .collect();
    assert_eq!(
        targets,
        [(0, 0, "a"), (0, 1, "b"), (1, 1, "c"), (2, 0, "d")]
    );
}

#[test]
fn a_probe_out_is_not_doubled_and_a_lost_one_is_given_up() {
    let schedule = Schedule::new(1_000, 200);
    let target = |provider, judged_token| ProbeTarget {
        config: 0,
        provider,
        judged_token,
    };
    let mut out = ProbesOut::default();
    out.sent(7, target(0, None), 10_000);
    out.sent(8, target(0, Some(42)), 10_000);
    assert!(out.is_out(&target(0, None)));
    assert!(out.is_out(&target(0, Some(42))));
    assert!(!out.is_out(&target(1, None)));
    assert_eq!(out.replied(7), Some(target(0, None)));
    assert_eq!(out.replied(7), None, "answered once");
    assert!(!out.is_out(&target(0, None)));
    out.sent(9, target(1, None), 10_500);
    // Given up one timeout plus one interval after it was sent.
    out.forget_lost(&schedule, 11_199);
    assert!(out.is_out(&target(0, Some(42))));
    out.forget_lost(&schedule, 11_200);
    assert!(!out.is_out(&target(0, Some(42))));
    assert!(out.is_out(&target(1, None)));
    assert_eq!(out.replied(8), None, "a reply given up on is no probe's");
}
