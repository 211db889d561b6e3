//! `health`, `retry`, `status_endpoint` and the providers' `cluster`, `probe` and `api_tokens`.

use super::*;
use crate::health::Verdict;

const BASE: &str = "load_source: none\nstrategy: random\n";

fn config(text: &str) -> BalancerConfig {
    let plugin = PluginConfig::from_yaml(&format!("{BASE}{text}"), Build::Envoy)
        .unwrap_or_else(|err| panic!("refused: {err}\n{text}"));
    let config = plugin.all().next().unwrap().clone();
    config
}

fn refusal(text: &str) -> String {
    PluginConfig::from_yaml(&format!("{BASE}{text}"), Build::Envoy)
        .unwrap_err()
        .to_string()
}

#[test]
fn health_is_on_with_defaults_and_retry_and_status_are_opt_in() {
    let config = config("providers: [{name: a}]\n");
    assert_eq!(config.health, HealthPolicy::default());
    assert_eq!(config.health.failure_threshold, 3);
    assert_eq!(config.health.cooldown_ms, 10_000);
    assert_eq!(config.retry, None);
    assert_eq!(config.status_endpoint, None);
    let provider = &config.providers[0];
    assert_eq!((&provider.upstream, &provider.tokens), (&None, &None));
    assert_eq!(provider.health_key, "ai_lb/health/a");
    assert!(
        !config.needs_body(),
        "without retry the choice needs no body"
    );
}

#[test]
fn every_health_field_is_read() {
    let config = config(
        r#"
providers:
- name: a
  cluster: a_cluster
  prefix_rewrite: {from: /masgod/, to: /}
  probe: {method: HEAD, path: /ping, expected_statuses: [204, "3xx"]}
  api_tokens: [sk-aaaaaaaaaaaa0001, sk-bbbbbbbbbbbb0002]
  token_header: X-Api-Key
- {name: b, cluster: b}
health:
  failure_threshold: 5
  failure_statuses: [500, 502, "4xx"]
  cooldown_ms: 2500
  max_retry_after_ms: 9000
  success_threshold: 2
  probe: {interval_ms: 700, timeout_ms: 300}
retry: {max_retries: 2, budget_ms: 4000}
status_endpoint: {path: /lb-status, allowed_sources: ["127.0.0.1", "10.0.0.0/8", "::1"]}
"#,
    );
    let health = &config.health;
    assert_eq!(
        (
            health.failure_threshold,
            health.cooldown_ms,
            health.max_retry_after_ms
        ),
        (5, 2_500, 9_000)
    );
    assert_eq!(health.success_threshold, 2);
    assert_eq!(
        health.probe,
        Some(ProbeSchedule {
            interval_ms: 700,
            timeout_ms: 300
        })
    );
    for (status, failed) in [
        (500, true),
        (502, true),
        (503, false),
        (404, true),
        (200, false),
    ] {
        assert_eq!(health.failure_statuses.contains(status), failed, "{status}");
    }
    assert_eq!(
        config.retry,
        Some(RetryPolicy {
            max_retries: 2,
            budget_ms: 4_000
        })
    );
    assert!(config.needs_body(), "a retry re-sends the body");
    let status = config.status_endpoint.as_ref().unwrap();
    assert_eq!(
        (status.path.as_str(), status.allowed_sources.len()),
        ("/lb-status", 3)
    );
    let a = &config.providers[0];
    let upstream = a.upstream.as_ref().unwrap();
    assert_eq!(upstream.cluster, "a_cluster");
    assert_eq!(
        upstream.path_for("/masgod/v1/chat/completions"),
        "/v1/chat/completions"
    );
    assert_eq!(
        upstream.path_for("/other/v1"),
        "/other/v1",
        "other paths as they are"
    );
    assert_eq!(
        (upstream.probe.method.as_str(), upstream.probe.path.as_str()),
        ("HEAD", "/ping")
    );
    assert!(upstream.probe.expected.contains(204) && upstream.probe.expected.contains(302));
    assert!(!upstream.probe.expected.contains(200));
    let tokens = a.tokens.as_ref().unwrap();
    assert_eq!(
        (tokens.header.as_str(), tokens.bearer),
        ("x-api-key", false)
    );
    assert_eq!(tokens.tokens.len(), 2);
    let b = config.providers[1].upstream.as_ref().unwrap();
    assert_eq!(
        (b.probe.method.as_str(), b.probe.path.as_str()),
        ("GET", "/v1/models")
    );
    assert!(b.probe.expected.contains(200) && !b.probe.expected.contains(503));
    let default_tokens =
        self::config("providers: [{name: c, api_tokens: [sk-cccccccccccc0003]}]\n");
    let pool = default_tokens.providers[0].tokens.clone().unwrap();
    assert_eq!((pool.header.as_str(), pool.bearer), ("authorization", true));
}

#[test]
fn probes_can_be_switched_off_and_tokens_then_come_back_after_the_cooldown() {
    let config = config("providers: [{name: a, cluster: a}]\nhealth: {probe: false}\n");
    assert_eq!(config.health.probe, None);
    assert_eq!(config.health.rules(true).token_cooldown_ms, Some(10_000));
    let probed = self::config("providers: [{name: a, cluster: a}]\n");
    assert_eq!(probed.health.rules(true).token_cooldown_ms, None);
    assert_eq!(probed.health.rules(false).token_cooldown_ms, Some(10_000));
}

#[test]
fn a_response_is_judged_by_its_status_and_the_token_it_used() {
    let health = HealthPolicy::default();
    let failure = |retry_after_ms| Verdict::Failure { retry_after_ms };
    assert_eq!(health.verdict(Some(200), None, false), Verdict::Success);
    assert_eq!(health.verdict(Some(400), None, false), Verdict::Success);
    assert_eq!(health.verdict(Some(503), Some("5"), false), failure(None));
    assert_eq!(
        health.verdict(None, None, false),
        failure(None),
        "no response"
    );
    assert_eq!(
        health.verdict(Some(429), Some("5"), false),
        failure(Some(5_000))
    );
    assert_eq!(health.verdict(Some(429), None, false), failure(None));
    assert_eq!(health.verdict(Some(401), None, false), Verdict::Success);
    for status in [401, 403] {
        assert_eq!(
            health.verdict(Some(status), None, true),
            Verdict::TokenFailure {
                retry_after_ms: None
            }
        );
    }
    assert_eq!(
        health.verdict(Some(429), Some("120"), true),
        Verdict::TokenFailure {
            retry_after_ms: Some(60_000)
        },
        "capped at max_retry_after_ms"
    );
    assert_eq!(health.verdict(Some(502), None, true), failure(None));
}

#[test]
fn health_refusals_name_the_field_and_the_reason() {
    let cases = [
        (
            "providers: [{name: a}]\nhealth: {failure_statuses: [200, \"6xx\"]}\n",
            "health.failure_statuses[1]: \"6xx\" is not a status (100 to 599) or a class like \"5xx\"",
        ),
        (
            "providers: [{name: a}]\nhealth: {failure_statuses: []}\n",
            "health.failure_statuses: must list at least one status",
        ),
        (
            "providers: [{name: a}]\nhealth: {cooldown_ms: 5}\n",
            "health.cooldown_ms: must be a whole number from 100 to 3600000, got 5",
        ),
        (
            "providers: [{name: a}]\nhealth: {probe: {interval: 5}}\n",
            "health.probe.interval: unknown field `interval`, expected `interval_ms` or `timeout_ms`",
        ),
        (
            "providers: [{name: a}]\nretry: {max_retries: 1}\n",
            "retry: needs providers[].cluster on the providers a request may be retried on",
        ),
        (
            "providers: [{name: a, cluster: a}]\nretry: {max_retries: 0}\n",
            "retry.max_retries: must be a whole number from 1 to 10, got 0",
        ),
        (
            "providers: [{name: a, probe: {path: /x}}]\n",
            "providers[0].probe: needs cluster: the Envoy cluster retries and probes are sent to",
        ),
        (
            "providers: [{name: a, cluster: a, probe: {path: x}}]\n",
            "providers[0].probe.path: \"x\" must start with /",
        ),
        (
            "providers: [{name: a, cluster: a, probe: {method: get}}]\n",
            "providers[0].probe.method: \"get\" is not an HTTP method like GET or POST",
        ),
        (
            "providers: [{name: a, api_tokens: []}]\n",
            "providers[0].api_tokens: must be a non-empty list of tokens, got a list",
        ),
        (
            "providers: [{name: a, api_tokens: [sk-aaaaaaaaaaaa0001, 'sk bad']}]\n",
            "providers[0].api_tokens[1]: must be a non-empty string of printable characters",
        ),
        (
            "providers: [{name: a, api_tokens: [sk-aaaaaaaaaaaa0001, sk-aaaaaaaaaaaa0001]}]\n",
            "providers[0].api_tokens[1]: duplicate token sk-…0001",
        ),
        (
            "providers: [{name: a, token_header: x-key}]\n",
            "providers[0].token_header: needs api_tokens",
        ),
        (
            "providers: [{name: a}]\nstatus_endpoint: {path: /s}\n",
            "status_endpoint.allowed_sources: required",
        ),
        (
            "providers: [{name: a}]\nstatus_endpoint: {path: /s, allowed_sources: [\"10.0.0.0/40\"]}\n",
            "status_endpoint.allowed_sources[0]: prefix length \"40\" is not 0 to 32",
        ),
        (
            "providers: [{name: a}]\nstatus_endpoint: {path: s, allowed_sources: [\"::1\"]}\n",
            "status_endpoint.path: \"s\" must start with /",
        ),
    ];
    for (text, expected) in cases {
        let message = refusal(text);
        assert!(
            message.starts_with(expected),
            "config:\n{text}\nexpected: {expected}\n     got: {message}"
        );
    }
    // A refused token is never quoted.
    let message = refusal("providers: [{name: a, api_tokens: ['sk-leak me-0001']}]\n");
    assert!(!message.contains("leak"), "{message}");
}
