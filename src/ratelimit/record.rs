//! A provider's shared rate-limit record and its text form: `r1` then one
//! `;<who> <requests> <requests reset> <tokens> <tokens reset>` per provider or API token whose
//! budget is low, where `<who>` is `-` (the provider) or a token's fingerprint in hex, a budget
//! is `-` when not told, and resets are epoch milliseconds. Garbage reads as nothing known.

use std::fmt::Write;

/// One provider's (or one key's) budgets as last told, while low.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The API token's fingerprint; `None`: the provider itself.
    pub token: Option<u64>,
    pub requests: Option<u64>,
    pub requests_reset_ms: u64,
    pub tokens: Option<u64>,
    pub tokens_reset_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RateRecord {
    pub entries: Vec<Entry>,
}

impl RateRecord {
    /// A missing or unreadable record knows nothing: no budget is low.
    pub fn read(bytes: Option<&[u8]>) -> Self {
        bytes.and_then(decode).unwrap_or_default()
    }

    pub fn entry(&self, token: Option<u64>) -> Option<&Entry> {
        self.entries.iter().find(|entry| entry.token == token)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut text = String::from("r1");
        for entry in &self.entries {
            text.push(';');
            match entry.token {
                Some(fingerprint) => {
                    let _ = write!(text, "{fingerprint:016x}");
                }
                None => text.push('-'),
            }
            for (left, reset_ms) in [
                (entry.requests, entry.requests_reset_ms),
                (entry.tokens, entry.tokens_reset_ms),
            ] {
                match left {
                    Some(left) => {
                        let _ = write!(text, " {left}");
                    }
                    None => text.push_str(" -"),
                }
                let _ = write!(text, " {reset_ms}");
            }
        }
        text.into_bytes()
    }
}

fn decode(bytes: &[u8]) -> Option<RateRecord> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut parts = text.split(';');
    if parts.next()? != "r1" {
        return None;
    }
    let mut entries = Vec::new();
    for part in parts {
        entries.push(decode_entry(part)?);
    }
    Some(RateRecord { entries })
}

fn decode_entry(text: &str) -> Option<Entry> {
    let mut fields = text.split(' ');
    let token = match fields.next()? {
        "-" => None,
        hex => Some(u64::from_str_radix(hex, 16).ok()?),
    };
    // Budgets then resets, in order; `-`: not told.
    let mut numbers = [None; 4];
    for number in &mut numbers {
        *number = match fields.next()? {
            "-" => None,
            digits => Some(digits.parse::<u64>().ok()?),
        };
    }
    let [requests, requests_reset_ms, tokens, tokens_reset_ms] = numbers;
    fields.next().is_none().then_some(Entry {
        token,
        requests,
        requests_reset_ms: requests_reset_ms?,
        tokens,
        tokens_reset_ms: tokens_reset_ms?,
    })
}
