//! A provider's health record and its shared-data text form:
//! `h1 <state> <failures> <probe successes>` then one `;<fingerprint> <failures> <until>
//! <successes>` per token that has a history, where `<state>` is `H`, `E<until_ms>` or
//! `T<since_ms>`. Text keeps it readable in a shared-data dump, and small.

use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    #[default]
    Healthy,
    /// Out until `until_ms`; after that the next request to claim it is a trial.
    Ejected { until_ms: u64 },
    /// One request, sent at `since_ms`, decides.
    Trial { since_ms: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenHealth {
    /// `tokens::fingerprint` of the secret.
    pub fingerprint: u64,
    pub failures: u32,
    /// Unavailable until then (0: available).
    pub until_ms: u64,
    /// Successful probes in a row while unavailable.
    pub successes: u32,
}

impl TokenHealth {
    pub fn new(fingerprint: u64) -> Self {
        Self {
            fingerprint,
            failures: 0,
            until_ms: 0,
            successes: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProviderHealth {
    pub state: State,
    /// Consecutive failures while healthy.
    pub failures: u32,
    /// Successful probes in a row while out.
    pub probe_successes: u32,
    pub tokens: Vec<TokenHealth>,
}

impl ProviderHealth {
    /// Reads a record; a missing or unreadable one is a healthy provider (health must never
    /// stop traffic because of its own bookkeeping).
    pub fn read(bytes: Option<&[u8]>) -> Self {
        bytes
            .and_then(|bytes| Self::decode(bytes).ok())
            .unwrap_or_default()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut text = String::from("h1 ");
        match self.state {
            State::Healthy => text.push('H'),
            State::Ejected { until_ms } => {
                let _ = write!(text, "E{until_ms}");
            }
            State::Trial { since_ms } => {
                let _ = write!(text, "T{since_ms}");
            }
        }
        let _ = write!(text, " {} {}", self.failures, self.probe_successes);
        for token in &self.tokens {
            let _ = write!(
                text,
                ";{:016x} {} {} {}",
                token.fingerprint, token.failures, token.until_ms, token.successes
            );
        }
        text.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "health record is not UTF-8")?;
        let mut parts = text.split(';');
        let head = parts.next().unwrap_or_default();
        let Some([version, state, failures, probe_successes]) = four_fields(head) else {
            return Err(format!("health record head {head:?} has not 4 fields"));
        };
        if version != "h1" {
            return Err(format!("health record version {version:?} is not h1"));
        }
        let state = match state.split_at_checked(1) {
            Some(("H", "")) => State::Healthy,
            Some(("E", until)) => State::Ejected {
                until_ms: number(until)?,
            },
            Some(("T", since)) => State::Trial {
                since_ms: number(since)?,
            },
            _ => return Err(format!("health state {state:?} is not H, E<ms> or T<ms>")),
        };
        let tokens = parts.map(decode_token).collect::<Result<_, _>>()?;
        Ok(Self {
            state,
            failures: small_number(failures)?,
            probe_successes: small_number(probe_successes)?,
            tokens,
        })
    }
}

fn decode_token(text: &str) -> Result<TokenHealth, String> {
    let Some([fingerprint, failures, until_ms, successes]) = four_fields(text) else {
        return Err(format!("token record {text:?} has not 4 fields"));
    };
    Ok(TokenHealth {
        fingerprint: u64::from_str_radix(fingerprint, 16)
            .map_err(|_| format!("token fingerprint {fingerprint:?} is not hex"))?,
        failures: small_number(failures)?,
        until_ms: number(until_ms)?,
        successes: small_number(successes)?,
    })
}

/// Exactly four space-separated fields.
fn four_fields(text: &str) -> Option<[&str; 4]> {
    let mut fields = text.split(' ');
    let four = [
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    ];
    fields.next().is_none().then_some(four)
}

fn number(text: &str) -> Result<u64, String> {
    text.parse()
        .map_err(|_| format!("{text:?} in a health record is not a number"))
}

/// A count (`u32`): one parser for both widths keeps the module small.
fn small_number(text: &str) -> Result<u32, String> {
    u32::try_from(number(text)?).map_err(|_| format!("{text:?} in a health record is not a number"))
}
