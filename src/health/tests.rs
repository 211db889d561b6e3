//! The health state machine, its shared-data form, Retry-After, tokens and probes.

use super::probe::{probe_request, probes_due, prune, ProbePlan};
use super::status::{render, ProviderStatus};
use super::tokens::{fingerprint, mask, ApiToken, TokenPool};
use super::*;
use crate::config::{Build, PluginConfig, Provider};
use crate::load::Load;
use crate::rng::Rng;

const RULES: Rules = Rules {
    failure_threshold: 3,
    cooldown_ms: 10_000,
    success_threshold: 2,
    token_cooldown_ms: None,
};
const FAILED: Verdict = Verdict::Failure {
    retry_after_ms: None,
};
const TOKEN_FAILED: Verdict = Verdict::TokenFailure {
    retry_after_ms: None,
};

fn failures(health: &mut ProviderHealth, n: usize, now_ms: u64) -> Vec<Option<Change>> {
    (0..n)
        .map(|_| health.record(FAILED, None, now_ms, &RULES))
        .collect()
}

#[test]
fn consecutive_failures_up_to_the_threshold_eject_for_the_cooldown() {
    let mut health = ProviderHealth::default();
    assert_eq!(failures(&mut health, 2, 1_000), vec![None, None]);
    assert_eq!(health.availability(1_000, &[]), Availability::Available);
    // A success in between starts the count again.
    assert_eq!(health.record(Verdict::Success, None, 1_000, &RULES), None);
    assert_eq!(failures(&mut health, 2, 1_000), vec![None, None]);
    assert_eq!(
        health.record(FAILED, None, 2_000, &RULES),
        Some(Change::Ejected { until_ms: 12_000 })
    );
    assert_eq!(
        health.availability(11_999, &[]),
        Availability::Out { until_ms: 12_000 }
    );
    assert_eq!(health.availability(12_000, &[]), Availability::TrialDue);
}

#[test]
fn after_the_cooldown_one_request_decides() {
    let mut health = ProviderHealth::default();
    failures(&mut health, 3, 0);
    assert!(!health.claim_trial(9_999), "cooldown not over");
    assert!(health.claim_trial(10_000));
    assert!(!health.claim_trial(10_001), "a second request waits");
    assert_eq!(
        health.availability(10_001, &[]),
        Availability::Out {
            until_ms: 10_000 + TRIAL_TIMEOUT_MS
        }
    );
    // The trial fails: out for another cooldown, from then.
    assert_eq!(health.record(FAILED, None, 10_500, &RULES), None);
    assert_eq!(health.state, State::Ejected { until_ms: 20_500 });
    // The next trial succeeds: restored.
    assert!(health.claim_trial(20_500));
    assert_eq!(
        health.record(Verdict::Success, None, 20_600, &RULES),
        Some(Change::Restored)
    );
    assert_eq!(health.availability(20_600, &[]), Availability::Available);
}

#[test]
fn a_trial_that_never_reports_is_handed_on() {
    let mut health = ProviderHealth::default();
    failures(&mut health, 3, 0);
    assert!(health.claim_trial(10_000));
    assert_eq!(
        health.availability(10_000 + TRIAL_TIMEOUT_MS, &[]),
        Availability::TrialDue
    );
    assert!(health.claim_trial(10_000 + TRIAL_TIMEOUT_MS));
    // A trial whose client went away gives its turn back at once.
    health.abandon_trial(10_000 + TRIAL_TIMEOUT_MS);
    assert!(health.claim_trial(10_000 + TRIAL_TIMEOUT_MS + 1));
    // Abandoning someone else's (older) trial changes nothing.
    health.abandon_trial(1);
    assert_eq!(
        health.state,
        State::Trial {
            since_ms: 10_000 + TRIAL_TIMEOUT_MS + 1
        }
    );
}

#[test]
fn retry_after_ejects_at_once_for_as_long_as_it_says() {
    let mut health = ProviderHealth::default();
    let told = Verdict::Failure {
        retry_after_ms: Some(2_000),
    };
    assert_eq!(
        health.record(told, None, 5_000, &RULES),
        Some(Change::Ejected { until_ms: 7_000 })
    );
    assert_eq!(retry_after_ms(Some("2"), 60_000), Some(2_000));
    assert_eq!(retry_after_ms(Some(" 1.5 "), 60_000), Some(1_500));
    assert_eq!(retry_after_ms(Some("3600"), 60_000), Some(60_000), "capped");
    for unusable in [
        None,
        Some("Wed, 21 Oct 2015 07:28:00 GMT"),
        Some("-1"),
        Some("NaN"),
    ] {
        assert_eq!(retry_after_ms(unusable, 60_000), None, "{unusable:?}");
    }
}

#[test]
fn a_threshold_of_zero_never_ejects() {
    let rules = Rules {
        failure_threshold: 0,
        ..RULES
    };
    let mut health = ProviderHealth::default();
    for _ in 0..10 {
        assert_eq!(health.record(FAILED, None, 0, &rules), None);
    }
    let told = Verdict::Failure {
        retry_after_ms: Some(5_000),
    };
    assert_eq!(health.record(told, None, 0, &rules), None);
    assert_eq!(health.availability(0, &[]), Availability::Available);
}

#[test]
fn probes_restore_after_success_threshold_successes_in_a_row() {
    let mut health = ProviderHealth::default();
    failures(&mut health, 3, 0);
    assert!(health.needs_probe(1));
    assert_eq!(health.record_probe(true, None, 1, &RULES), None);
    assert_eq!(health.record_probe(false, None, 2, &RULES), None, "resets");
    assert_eq!(health.record_probe(true, None, 3, &RULES), None);
    assert_eq!(
        health.record_probe(true, None, 4, &RULES),
        Some(Change::Restored)
    );
    assert_eq!(health.availability(4, &[]), Availability::Available);
    assert!(!health.needs_probe(4));
    // A healthy provider's probe changes nothing.
    assert_eq!(health.record_probe(false, None, 5, &RULES), None);
    assert_eq!(health, ProviderHealth::default());
}

#[test]
fn tokens_fail_alone_and_come_back_through_probes() {
    let (good, bad) = (
        fingerprint("sk-good-0000000000"),
        fingerprint("sk-bad-11111111111"),
    );
    let both = [good, bad];
    let mut health = ProviderHealth::default();
    for _ in 0..2 {
        assert_eq!(health.record(TOKEN_FAILED, Some(bad), 0, &RULES), None);
    }
    assert_eq!(
        health.record(TOKEN_FAILED, Some(bad), 0, &RULES),
        Some(Change::TokenUnavailable)
    );
    // The provider itself is fine, and one token is still usable.
    assert_eq!(health.state, State::Healthy);
    assert_eq!(health.availability(0, &both), Availability::Available);
    assert!(
        !health.token_usable(bad, u64::MAX - 1),
        "until a probe brings it back"
    );
    assert!(health.needs_probe(1));
    assert_eq!(health.record_probe(true, Some(bad), 1, &RULES), None);
    assert_eq!(
        health.record_probe(true, Some(bad), 2, &RULES),
        Some(Change::TokenRestored)
    );
    assert!(health.token_usable(bad, 2));
    // Every token out: the provider is out until the first comes back.
    let rules = Rules {
        token_cooldown_ms: Some(4_000),
        ..RULES
    };
    let limited = Verdict::TokenFailure {
        retry_after_ms: Some(1_000),
    };
    health.record(limited, Some(good), 10, &rules);
    for _ in 0..3 {
        health.record(TOKEN_FAILED, Some(bad), 10, &rules);
    }
    assert_eq!(
        health.availability(10, &both),
        Availability::Out { until_ms: 1_010 }
    );
    assert_eq!(health.availability(1_010, &both), Availability::Available);
    assert!(!health.token_usable(bad, 4_009));
    assert!(
        health.token_usable(bad, 4_010),
        "no probe: back after the cooldown"
    );
}

#[test]
fn records_survive_shared_data_and_bad_ones_read_as_healthy() {
    let record = ProviderHealth {
        state: State::Ejected {
            until_ms: 1_700_000_000_123,
        },
        failures: 2,
        probe_successes: 1,
        tokens: vec![TokenHealth {
            fingerprint: 0xdead_beef_0000_0001,
            failures: 1,
            until_ms: u64::MAX,
            successes: 0,
        }],
    };
    assert_eq!(ProviderHealth::decode(&record.encode()), Ok(record.clone()));
    let trial = ProviderHealth {
        state: State::Trial { since_ms: 42 },
        ..ProviderHealth::default()
    };
    assert_eq!(trial.encode(), b"h1 T42 0 0".to_vec());
    assert_eq!(
        ProviderHealth::decode(b"h1 H 0 0"),
        Ok(ProviderHealth::default())
    );
    for bad in [
        &b""[..],
        b"h2 H 0 0",
        b"h1 X 0 0",
        b"h1 E 0 0",
        b"h1 H 0",
        b"h1 H 0 0;zz 0 0 0",
        b"\xff",
    ] {
        assert!(ProviderHealth::decode(bad).is_err(), "{bad:?}");
        assert_eq!(ProviderHealth::read(Some(bad)), ProviderHealth::default());
    }
    assert_eq!(ProviderHealth::read(None), ProviderHealth::default());
}

#[test]
fn tokens_are_masked_and_picked_at_random_among_the_usable() {
    assert_eq!(mask("sk-abcdefghijklmnop1234"), "sk-…1234");
    assert_eq!(mask("short-token"), "…");
    let pool = TokenPool {
        tokens: [
            "sk-one-000000000001",
            "sk-two-000000000002",
            "sk-three-0000000003",
        ]
        .into_iter()
        .map(ApiToken::new)
        .collect(),
        header: "authorization".into(),
        bearer: true,
    };
    assert_eq!(
        format!("{:?}", pool.tokens[0]),
        "ApiToken(sk-…0001)",
        "Debug hides the secret"
    );
    assert_eq!(
        pool.header_value(&pool.tokens[1]),
        "Bearer sk-two-000000000002"
    );
    let mut health = ProviderHealth::default();
    for _ in 0..3 {
        health.record(TOKEN_FAILED, Some(pool.tokens[2].fingerprint), 0, &RULES);
    }
    let mut rng = Rng::new(7);
    let mut seen = [0usize; 3];
    for _ in 0..1_000 {
        let token = pool.choose(&health, &|_| false, 5, &mut rng).unwrap();
        let index = pool.tokens.iter().position(|t| t == token).unwrap();
        seen[index] += 1;
    }
    assert_eq!(seen[2], 0, "the unavailable token is never used");
    assert!(seen[0] > 400 && seen[1] > 400, "{seen:?}");
}

#[test]
fn the_status_page_shows_health_cooldown_load_and_masked_tokens() {
    let token = ApiToken::new("sk-secret-value-9999");
    let mut ejected = ProviderHealth::default();
    failures(&mut ejected, 3, 1_000);
    ejected.record(TOKEN_FAILED, Some(token.fingerprint), 1_000, &RULES);
    let healthy = ProviderHealth::default();
    let page = render(
        &[
            ProviderStatus {
                name: "a",
                health: &ejected,
                load: Some(Load {
                    running: 3.0,
                    waiting: Some(1.5),
                    cache_ratio: None,
                    kv_usage: Some(0.25),
                }),
                tokens: vec![(token.masked(), false, None)],
                rate_limit: None,
            },
            ProviderStatus {
                name: "b\"",
                health: &healthy,
                load: None,
                tokens: Vec::new(),
                rate_limit: None,
            },
        ],
        4_000,
    );
    let text = String::from_utf8(page).unwrap();
    assert!(!text.contains("sk-secret-value-9999"));
    let page: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        page,
        serde_json::json!({"providers": [
            {"name": "a", "health": "ejected", "consecutive_failures": 0,
             "cooldown_remaining_ms": 7_000,
             "load": {"running": 3.0, "waiting": 1.5, "cache_ratio": null, "kv_usage": 0.25},
             "tokens": [{"token": "sk-…9999", "available": false}]},
            {"name": "b\"", "health": "healthy", "consecutive_failures": 0,
             "cooldown_remaining_ms": 0, "load": null, "tokens": []}
        ]})
    );
}

#[test]
fn the_status_page_shows_budgets_below_a_floor_until_they_refill() {
    use crate::ratelimit::Entry;
    let healthy = ProviderHealth::default();
    let low = Entry {
        token: None,
        requests: Some(0),
        requests_reset_ms: 5_000,
        tokens: Some(10),
        tokens_reset_ms: 3_000,
    };
    let status = |rate_limit| ProviderStatus {
        name: "a",
        health: &healthy,
        load: None,
        tokens: vec![(
            "sk-…9999".into(),
            true,
            Some(Entry {
                token: Some(1),
                ..low
            }),
        )],
        rate_limit,
    };
    let page = |now_ms| {
        let page = render(&[status(Some(low))], now_ms);
        serde_json::from_slice::<serde_json::Value>(&page).unwrap()["providers"][0].clone()
    };
    let view = serde_json::json!({"requests_remaining": 0, "requests_reset_in_ms": 1_000,
        "tokens_remaining": null, "tokens_reset_in_ms": 0});
    let at_4000 = page(4_000);
    assert_eq!(at_4000["rate_limit"], view);
    assert_eq!(at_4000["tokens"][0]["rate_limit"], view);
    let refilled = page(5_000);
    assert!(refilled.get("rate_limit").is_none(), "{refilled}");
    assert!(refilled["tokens"][0].get("rate_limit").is_none());
}

fn provider(yaml_entry: &str) -> Provider {
    let text = format!("providers:\n- {yaml_entry}\nload_source: none\nstrategy: random\n");
    let plugin = PluginConfig::from_yaml(&text, Build::Envoy).unwrap();
    let provider = plugin.all().next().unwrap().providers[0].clone();
    provider
}

#[test]
fn probes_go_to_providers_that_are_out_and_to_tokens_that_are_out() {
    let plain = provider("{name: a, cluster: a_cluster}");
    let mut health = ProviderHealth::default();
    assert!(
        probes_due(&plain, &health, 0).is_empty(),
        "healthy: traffic judges it"
    );
    failures(&mut health, 3, 0);
    assert_eq!(
        probes_due(&plain, &health, 0),
        vec![ProbePlan {
            token: None,
            judges_token: false
        }]
    );
    let request = probe_request(&plain, &probes_due(&plain, &health, 0)[0], 2_000).unwrap();
    assert_eq!(request.cluster, "a_cluster");
    assert_eq!(request.timeout_ms, 2_000);
    assert_eq!(request.body, None);
    assert_eq!(
        &request.headers[..3],
        &[
            (":method".to_string(), "GET".to_string()),
            (":path".to_string(), "/v1/models".to_string()),
            (":authority".to_string(), "a_cluster".to_string()),
        ]
    );
    let unreachable = provider("{name: b}");
    assert!(
        probes_due(&unreachable, &health, 0).is_empty(),
        "no cluster, no probe"
    );

    let keyed = provider(
        "{name: c, cluster: c, api_tokens: [sk-first-00000001, sk-second-0000002], \
         token_header: x-api-key, probe: {path: /v1/chat/completions, body: '{\"max_tokens\":1}', \
         expected_statuses: [200, 400]}}",
    );
    let pool = keyed.tokens.clone().unwrap();
    let mut health = ProviderHealth::default();
    for _ in 0..3 {
        health.record(TOKEN_FAILED, Some(pool.tokens[1].fingerprint), 0, &RULES);
    }
    let plans = probes_due(&keyed, &health, 0);
    assert_eq!(
        plans,
        vec![ProbePlan {
            token: Some(pool.tokens[1].clone()),
            judges_token: true
        }]
    );
    let request = probe_request(&keyed, &plans[0], 1_000).unwrap();
    assert!(request
        .headers
        .contains(&(":method".to_string(), "POST".to_string())));
    assert!(request
        .headers
        .contains(&("x-api-key".to_string(), "sk-second-0000002".to_string())));
    assert_eq!(request.body.as_deref(), Some(&b"{\"max_tokens\":1}"[..]));
    // The provider out as well: probed with its usable token.
    failures(&mut health, 3, 0);
    assert_eq!(
        probes_due(&keyed, &health, 0)[0],
        ProbePlan {
            token: Some(pool.tokens[0].clone()),
            judges_token: false
        }
    );
}

#[test]
fn a_reload_clears_only_the_providers_no_longer_named() {
    let (registry, removed) = prune(Some(b"a\nb\nc"), &["a", "c", "d"]);
    assert_eq!(registry, b"a\nc\nd".to_vec());
    assert_eq!(removed, vec![health_key("b")]);
    let (registry, removed) = prune(None, &["x"]);
    assert_eq!((registry, removed), (b"x".to_vec(), Vec::<String>::new()));
}
