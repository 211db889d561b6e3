//! Background refresh: one VM holds a lease in Envoy shared data, reads providers' loads from
//! the store on a timer and publishes them; every VM's requests read that snapshot instead of
//! waiting on the store. This module holds the host-free decisions (keys, formats, freshness,
//! lease claims); time comes in as `now_ms` (Unix epoch milliseconds) so it tests natively.

use std::fmt;

use crate::float_text::write_float;
use crate::load::{Load, Loads};
use crate::store::StoreQuery;

/// Shared-data keys for one store query: VMs with the same query share one snapshot and lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedKeys {
    pub loads: String,
    pub lease: String,
}

pub fn shared_keys(query: &StoreQuery) -> SharedKeys {
    let hash = format!("{:016x}", fnv1a_64(&stable_encoding(query)));
    SharedKeys {
        loads: format!("ai_lb/loads/{hash}"),
        lease: format!("ai_lb/lease/{hash}"),
    }
}

/// Tag plus length-prefixed fields, so no two different queries encode to the same bytes.
fn stable_encoding(query: &StoreQuery) -> Vec<u8> {
    fn field(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    let mut out = Vec::new();
    match query {
        StoreQuery::Resp { upstream, command } => {
            out.push(b'R');
            field(&mut out, upstream.as_bytes());
            field(&mut out, command);
        }
        StoreQuery::Webdis {
            cluster,
            path,
            authorization,
        } => {
            out.push(b'W');
            field(&mut out, cluster.as_bytes());
            field(&mut out, path.as_bytes());
            match authorization {
                Some(value) => {
                    out.push(1);
                    field(&mut out, value.as_bytes());
                }
                None => out.push(0),
            }
        }
    }
    out
}

/// FNV-1a, 64 bits: seedless, so every VM and every replica derives the same keys.
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Where the scrape of one engine's `/metrics` (`cluster`, `path`) is published, and its lease.
pub fn engine_keys(cluster: &str, path: &str) -> SharedKeys {
    let mut identity = cluster.as_bytes().to_vec();
    identity.push(0);
    identity.extend_from_slice(path.as_bytes());
    let hash = format!("{:016x}", fnv1a_64(&identity));
    SharedKeys {
        loads: format!("ai_lb/engine/{hash}"),
        lease: format!("ai_lb/engine_lease/{hash}"),
    }
}

/// Loads as read from the store at `fetched_at_ms`, as published in shared data.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub fetched_at_ms: u64,
    pub loads: Loads,
}

impl Snapshot {
    /// `v1 <fetched_at_ms> <l0>,<l1>,...`: each load is `-` (unknown), `<running>`, or
    /// `<running>/<waiting>/<cache_ratio>/<kv_usage>` with `-` for a figure not known. Figures
    /// are written by `write_float`, which round-trips exactly.
    pub fn encode(&self) -> Vec<u8> {
        let mut text = format!("v1 {} ", self.fetched_at_ms);
        for (index, load) in self.loads.iter().enumerate() {
            if index > 0 {
                text.push(',');
            }
            let Some(load) = load else {
                text.push('-');
                continue;
            };
            write_float(&mut text, load.running);
            let extras = [load.waiting, load.cache_ratio, load.kv_usage];
            if extras.iter().any(Option::is_some) {
                for extra in extras {
                    match extra {
                        Some(value) => {
                            text.push('/');
                            write_float(&mut text, value);
                        }
                        None => text.push_str("/-"),
                    }
                }
            }
        }
        text.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Snapshot, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "snapshot is not UTF-8".to_string())?;
        let mut parts = text.splitn(3, ' ');
        if parts.next() != Some("v1") {
            return Err(format!("snapshot is not version v1: {text:?}"));
        }
        let fetched_at_ms = parts
            .next()
            .and_then(|ms| ms.parse::<u64>().ok())
            .ok_or_else(|| format!("snapshot has no valid fetch time: {text:?}"))?;
        let loads_text = parts
            .next()
            .ok_or_else(|| format!("snapshot has no loads field: {text:?}"))?;
        let mut loads = Vec::new();
        if !loads_text.is_empty() {
            for load in loads_text.split(',') {
                loads.push(decode_load(load)?);
            }
        }
        Ok(Snapshot {
            fetched_at_ms,
            loads,
        })
    }
}

fn decode_load(text: &str) -> Result<Option<Load>, String> {
    if text == "-" {
        return Ok(None);
    }
    let mut figures = text.split('/');
    let running = decode_figure(figures.next().unwrap_or_default())?
        .ok_or_else(|| format!("snapshot load {text:?} has no running figure"))?;
    let mut extras = [None; 3];
    for slot in extras.iter_mut() {
        if let Some(figure) = figures.next() {
            *slot = decode_figure(figure)?;
        }
    }
    if figures.next().is_some() {
        return Err(format!("snapshot load {text:?} has too many figures"));
    }
    let [waiting, cache_ratio, kv_usage] = extras;
    Ok(Some(Load {
        running,
        waiting,
        cache_ratio,
        kv_usage,
    }))
}

fn decode_figure(text: &str) -> Result<Option<f64>, String> {
    if text == "-" {
        return Ok(None);
    }
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(Some(value)),
        Ok(_) => Err(format!("snapshot load {text:?} is not finite and >= 0")),
        Err(_) => Err(format!("snapshot load {text:?} is not a number")),
    }
}

/// Why a request cannot use the published loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    NeverPublished,
    TooOld { age_ms: u64 },
    Unreadable(String),
    WrongProviderCount { published: usize, expected: usize },
}

impl fmt::Display for Stale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stale::NeverPublished => write!(f, "no loads have been published yet"),
            Stale::TooOld { age_ms } => {
                write!(f, "loads published {age_ms} ms ago, older than max_age_ms")
            }
            Stale::Unreadable(reason) => write!(f, "published loads are unreadable: {reason}"),
            Stale::WrongProviderCount {
                published,
                expected,
            } => write!(
                f,
                "published loads cover {published} providers, but {expected} are configured"
            ),
        }
    }
}

/// The published loads if usable now. A snapshot stamped in the future (clock skew between
/// workers) counts as just fetched.
pub fn fresh_loads(
    published: Option<&[u8]>,
    providers: usize,
    now_ms: u64,
    max_age_ms: u64,
) -> Result<Loads, Stale> {
    let bytes = published.ok_or(Stale::NeverPublished)?;
    let snapshot = Snapshot::decode(bytes).map_err(Stale::Unreadable)?;
    if snapshot.loads.len() != providers {
        return Err(Stale::WrongProviderCount {
            published: snapshot.loads.len(),
            expected: providers,
        });
    }
    let age_ms = now_ms.saturating_sub(snapshot.fetched_at_ms);
    if age_ms > max_age_ms {
        return Err(Stale::TooOld { age_ms });
    }
    Ok(snapshot.loads)
}

/// Who refreshes the loads, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub holder: u64,
    pub expires_at_ms: u64,
}

impl Lease {
    /// `<holder as 16 hex digits> <expires_at_ms>`.
    pub fn encode(&self) -> Vec<u8> {
        format!("{:016x} {}", self.holder, self.expires_at_ms).into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Lease, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "lease is not UTF-8".to_string())?;
        let (holder, expires) = text
            .split_once(' ')
            .ok_or_else(|| format!("lease is not \"<holder> <expires>\": {text:?}"))?;
        let holder = u64::from_str_radix(holder, 16)
            .map_err(|_| format!("lease holder {holder:?} is not hex"))?;
        let expires_at_ms = expires
            .parse::<u64>()
            .map_err(|_| format!("lease expiry {expires:?} is not a number"))?;
        Ok(Lease {
            holder,
            expires_at_ms,
        })
    }
}

/// The lease `me` should write (with the CAS it read `current` under), or None while another
/// holder's lease is valid. An unreadable lease is taken over rather than blocking refresh forever.
pub fn claim(current: Option<&[u8]>, me: u64, now_ms: u64, ttl_ms: u64) -> Option<Lease> {
    let mine = Lease {
        holder: me,
        expires_at_ms: now_ms.saturating_add(ttl_ms),
    };
    match current.map(Lease::decode) {
        Some(Ok(lease)) if lease.holder != me && now_ms < lease.expires_at_ms => None,
        _ => Some(mine),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(fetched_at_ms: u64, loads: Loads) -> Snapshot {
        Snapshot {
            fetched_at_ms,
            loads,
        }
    }

    fn lease(holder: u64, expires_at_ms: u64) -> Lease {
        Lease {
            holder,
            expires_at_ms,
        }
    }

    #[test]
    fn snapshot_round_trips() {
        let r = |running: f64| Some(Load::running(running));
        let full = Some(Load {
            running: 3.0,
            waiting: Some(1.5),
            cache_ratio: None,
            kv_usage: Some(0.25),
        });
        let cases: [Loads; 6] = [
            vec![],
            vec![None],
            vec![r(0.0), r(0.1), r(2.5), r(1.0 / 3.0)],
            vec![r(1e300), r(f64::MAX), r(123_456_789.0)],
            vec![r(7.0), None, r(0.0), None],
            vec![full, r(2.0)],
        ];
        for loads in cases {
            let original = snapshot(1_700_000_000_123, loads);
            assert_eq!(Snapshot::decode(&original.encode()), Ok(original));
        }
        assert_eq!(snapshot(5, vec![]).encode(), b"v1 5 ");
        let mixed = snapshot(5, vec![r(0.0), None, r(1.5), full]);
        assert_eq!(mixed.encode(), b"v1 5 0,-,1.5,3/1.5/-/0.25");
    }

    #[test]
    fn snapshot_rejects_bad_input_saying_why() {
        let bad: [(&[u8], &str); 14] = [
            (b"v1 5 1/2/3/4/5", "too many figures"),
            (b"v1 5 -/2", "no running figure"),
            (b"", "version"),
            (b"garbage", "version"),
            (b"v2 5 1", "version"),
            (b"v1", "fetch time"),
            (b"v1 x 1", "fetch time"),
            (b"v1 -5 1", "fetch time"),
            (b"v1 5", "loads field"),
            (b"v1 5 1,,2", "not a number"),
            (b"v1 5 abc", "not a number"),
            (b"v1 5 -1", "finite and >= 0"),
            (b"v1 5 1,inf", "finite and >= 0"),
            (b"\xff\xfe", "UTF-8"),
        ];
        for (bytes, why) in bad {
            let error = Snapshot::decode(bytes).expect_err("bad snapshot accepted");
            assert!(error.contains(why), "{bytes:?}: {error}");
        }
        assert!(Snapshot::decode(b"v1 5 NaN").is_err());
    }

    #[test]
    fn fresh_loads_decides_staleness() {
        let published = snapshot(10_000, vec![Some(Load::running(1.0)), None]).encode();
        let read = |now, max| fresh_loads(Some(&published), 2, now, max);
        let loads = Ok(vec![Some(Load::running(1.0)), None]);
        assert_eq!(read(10_500, 1000), loads);
        assert_eq!(read(11_000, 1000), loads, "age == max_age_ms is fresh");
        assert_eq!(read(11_001, 1000), Err(Stale::TooOld { age_ms: 1001 }));
        assert_eq!(read(9_000, 0), loads, "from the future counts as age 0");
        assert_eq!(fresh_loads(None, 2, 0, 1000), Err(Stale::NeverPublished));
        let unreadable = fresh_loads(Some(b"junk"), 2, 0, 1000);
        assert!(matches!(unreadable, Err(Stale::Unreadable(_))));
        let wrong_count = fresh_loads(Some(&published), 3, 10_000, 1000);
        let expected = Stale::WrongProviderCount {
            published: 2,
            expected: 3,
        };
        assert_eq!(wrong_count, Err(expected));
        let too_old = Stale::TooOld { age_ms: 2500 }.to_string();
        assert_eq!(
            too_old,
            "loads published 2500 ms ago, older than max_age_ms"
        );
    }

    #[test]
    fn lease_round_trips_and_rejects_bad_input() {
        for original in [lease(0, 0), lease(u64::MAX, 42), lease(0xabc, u64::MAX)] {
            assert_eq!(Lease::decode(&original.encode()), Ok(original));
        }
        assert_eq!(lease(0xabc, 9).encode(), b"0000000000000abc 9");
        let bad: [&[u8]; 6] = [b"", b"abc", b"xyz 5", b"ab -5", b"ab 5 6", b"\xff 5"];
        for bytes in bad {
            assert!(Lease::decode(bytes).is_err(), "accepted {bytes:?}");
        }
    }

    #[test]
    fn claim_covers_every_case() {
        let me = 7;
        let mine = |now: u64| Some(lease(me, now + 100));
        let others = lease(9, 1000).encode();
        assert_eq!(claim(None, me, 500, 100), mine(500), "absent");
        assert_eq!(claim(Some(b"junk"), me, 500, 100), mine(500), "unreadable");
        // Someone else's lease is valid up to, not including, its expiry.
        assert_eq!(claim(Some(&others), me, 999, 100), None);
        assert_eq!(claim(Some(&others), me, 1000, 100), mine(1000));
        let held = lease(me, 1000).encode();
        assert_eq!(claim(Some(&held), me, 500, 100), mine(500), "renewal");
        assert_eq!(claim(None, me, u64::MAX, 100), Some(lease(me, u64::MAX)));
    }

    #[test]
    fn keys_are_stable_and_distinct_per_field() {
        let resp = |upstream: &str, command: &[u8]| StoreQuery::Resp {
            upstream: upstream.into(),
            command: command.to_vec(),
        };
        let webdis = |cluster: &str, path: &str, auth: Option<&str>| StoreQuery::Webdis {
            cluster: cluster.into(),
            path: path.into(),
            authorization: auth.map(Into::into),
        };
        let keys = shared_keys(&webdis("c", "/p", Some("a")));
        assert_eq!(keys, shared_keys(&webdis("c", "/p", Some("a"))));
        assert!(keys.loads.starts_with("ai_lb/loads/") && keys.loads.len() == 12 + 16);
        assert_eq!(keys.lease, keys.loads.replace("loads", "lease"));
        let queries = [
            webdis("c", "/p", Some("a")),
            webdis("d", "/p", Some("a")),
            webdis("c", "/q", Some("a")),
            webdis("c", "/p", Some("b")),
            webdis("c", "/p", Some("")),
            webdis("c", "/p", None),
            webdis("c/", "p", Some("a")),
            resp("u", b"cmd"),
            resp("v", b"cmd"),
            resp("u", b"cme"),
            resp("uc", b"md"),
        ];
        let mut distinct: Vec<String> = queries.iter().map(|q| shared_keys(q).loads).collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), queries.len());
    }
}
