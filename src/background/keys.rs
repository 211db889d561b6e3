//! Shared-data keys of background reads: every VM (and every replica) derives the same keys
//! for the same read, so they share one published snapshot and one lease.

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

#[cfg(test)]
mod tests {
    use super::*;

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
