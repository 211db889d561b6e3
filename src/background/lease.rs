//! Leases: one VM does a piece of background work (a read, the probes) for every worker and
//! holds a lease in shared data while it does. Host-free: the glue reads the lease with its
//! compare-and-swap number, asks `claim`, and writes what it returns under that number.

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

    fn lease(holder: u64, expires_at_ms: u64) -> Lease {
        Lease {
            holder,
            expires_at_ms,
        }
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
}
