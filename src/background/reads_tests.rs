//! Which background reads there are, when they go out, and what their replies publish.

use super::*;
use crate::config::Build;
use crate::load::Load;

const START: u64 = 1_767_225_600_000;

/// A store in background mode, the same store again in another rule, and a rule scraping two
/// engines.
const CONFIG: &str = r#"
_rules_:
- _match_route_: [store]
  providers: [{name: a, key: ka}, {name: b, key: kb}]
  redis: {cluster: webdis, protocol: webdis, refresh: background, refresh_interval_ms: 500}
- _match_route_: [same]
  providers: [{name: a, key: ka}, {name: b, key: kb}]
  redis: {cluster: webdis, protocol: webdis, refresh: background, refresh_interval_ms: 500}
- _match_route_: [engines]
  providers: [{name: e1, metrics: {cluster: ea}}, {name: e2, metrics: {cluster: eb}}]
  load_source: engine_metrics
  engine_metrics: {interval_ms: 200, timeout_ms: 150}
"#;

fn reads(text: &str) -> BackgroundReads {
    BackgroundReads::new(&PluginConfig::from_yaml(text, Build::Envoy).unwrap())
}

/// Every lease free: each claim asked for is recorded and granted.
fn all_leases(claims: &mut Vec<(String, u64)>) -> impl FnMut(&str, u64) -> bool + '_ {
    move |key: &str, ttl_ms| {
        claims.push((key.to_string(), ttl_ms));
        true
    }
}

#[test]
fn one_read_per_distinct_store_in_background_mode_and_per_engine() {
    let background = reads(CONFIG);
    assert_eq!(
        background.intervals_ms().collect::<Vec<_>>(),
        [500, 200, 200]
    );
    assert!(!background.is_engine(0));
    assert!(background.is_engine(1) && background.is_engine(2));
    assert!(!background.is_engine(3), "no such read");
    let per_request =
        "providers: [{name: a, key: ka}]\nredis: {cluster: webdis, protocol: webdis}\n";
    assert_eq!(reads(per_request).intervals_ms().count(), 0);
}

#[test]
fn reads_go_out_when_due_and_when_this_worker_holds_their_lease() {
    let mut background = reads(CONFIG);
    let mut claims = Vec::new();
    let due = background.due_reads(START, 100, &mut all_leases(&mut claims));
    let sent: Vec<(usize, u32)> = due.iter().map(|r| (r.index, r.timeout_ms)).collect();
    assert_eq!(sent, [(0, 100), (1, 150), (2, 150)]);
    assert!(matches!(&due[1].query, StoreQuery::Webdis { cluster, .. } if cluster == "ea"));
    // Leases for 3 intervals plus the timeout (the store's default, 100 ms).
    let ttls: Vec<u64> = claims.iter().map(|(_, ttl)| *ttl).collect();
    assert_eq!(ttls, [1_600, 750, 750]);
    assert!(claims[0].0.starts_with("ai_lb/lease/"));
    assert!(claims[1].0.starts_with("ai_lb/engine_lease/"));
    // All three out: none again until their replies.
    claims.clear();
    assert!(background
        .due_reads(START + 200, 100, &mut all_leases(&mut claims))
        .is_empty());
    assert!(
        claims.is_empty(),
        "no lease asked for while the reads are out"
    );
    // Another worker holds the engines' leases: only the store is read here.
    let mut elsewhere = reads(CONFIG);
    let mut store_only = |key: &str, _| key.starts_with("ai_lb/lease/");
    let due = elsewhere.due_reads(START, 100, &mut store_only);
    assert_eq!(due.iter().map(|r| r.index).collect::<Vec<_>>(), [0]);
    // The engines are asked for again one interval later, not at every tick.
    assert!(elsewhere
        .due_reads(START + 100, 100, &mut store_only)
        .is_empty());
    let due = elsewhere.due_reads(START + 150, 100, &mut |_, _| true);
    assert_eq!(due.iter().map(|r| r.index).collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn a_store_reply_publishes_the_loads_stamped_when_they_were_asked_for() {
    let mut background = reads(CONFIG);
    background.due_reads(START, 100, &mut |_, _| true);
    let publication = background.on_reply(0, Ok(br#"{"MGET":["7","1.5"]}"#.to_vec()));
    let publication = publication.unwrap();
    assert!(publication.key.starts_with("ai_lb/loads/"));
    let loads = vec![Some(Load::running(7.0)), Some(Load::running(1.5))];
    let expected = Snapshot {
        fetched_at_ms: START,
        loads,
    };
    assert_eq!(publication.snapshot, expected);
    assert_eq!(background.on_reply(0, Ok(b"{}".to_vec())), None, "none out");
    // A failed read publishes nothing, and the next goes out when due.
    background.due_reads(START + 500, 100, &mut |_, _| true);
    let failed = Err(StoreError::Unavailable("refused".into()));
    assert_eq!(background.on_reply(0, failed), None);
    let due = background.due_reads(START + 1_000, 100, &mut |_, _| true);
    assert!(due.iter().any(|read| read.index == 0));
}

#[test]
fn an_engine_reply_publishes_its_running_requests() {
    let mut background = reads(CONFIG);
    background.due_reads(START, 100, &mut |_, _| true);
    let page = b"vllm:num_requests_running{model_name=\"m\"} 3\n".to_vec();
    let publication = background.on_reply(1, Ok(page)).unwrap();
    assert!(publication.key.starts_with("ai_lb/engine/"));
    assert_eq!(publication.snapshot.loads.len(), 1);
    assert_eq!(publication.snapshot.loads[0].map(|l| l.running), Some(3.0));
    let no_metric = b"other_metric 1\n".to_vec();
    assert_eq!(background.on_reply(2, Ok(no_metric)), None);
}

#[test]
fn http_replies_find_their_read_once() {
    let mut background = reads(CONFIG);
    background.sent_http(5, 1);
    background.sent_http(6, 2);
    background.sent_http(5, 0);
    assert_eq!(background.http_read(5), Some(0), "the token's latest read");
    assert_eq!(background.http_read(5), None);
    assert_eq!(background.http_read(6), Some(2));
    assert_eq!(background.http_read(7), None);
}
