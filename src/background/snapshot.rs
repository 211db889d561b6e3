//! The loads a background read publishes in shared data, and whether a request may still use
//! them (`now_ms` is Unix epoch milliseconds).

use std::fmt;

use crate::load::{Load, Loads};

/// Loads as read from the store at `fetched_at_ms`, as published in shared data.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub fetched_at_ms: u64,
    pub loads: Loads,
}

impl Snapshot {
    /// `v1 <fetched_at_ms> <l0>,<l1>,...`: each load is `-` (unknown), `<running>`, or
    /// `<running>/<waiting>/<cache_ratio>/<kv_usage>` with `-` for a figure not known. `{}`
    /// writes each figure in the shortest form that reads back exactly.
    pub fn encode(&self) -> Vec<u8> {
        let loads: Vec<String> = self.loads.iter().map(encode_load).collect();
        format!("v1 {} {}", self.fetched_at_ms, loads.join(",")).into_bytes()
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

fn encode_load(load: &Option<Load>) -> String {
    let Some(load) = load else {
        return "-".to_string();
    };
    let extras = [load.waiting, load.cache_ratio, load.kv_usage];
    if extras.iter().all(Option::is_none) {
        return load.running.to_string();
    }
    let figure = |value: Option<f64>| value.map_or_else(|| "-".to_string(), |v| v.to_string());
    let extras: Vec<String> = extras.into_iter().map(figure).collect();
    format!("{}/{}", load.running, extras.join("/"))
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
}
