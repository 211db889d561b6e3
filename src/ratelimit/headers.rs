//! What a provider's response headers say of its remaining budget. Every parser here is
//! linear in its input and never fails loudly: a missing or unreadable value is "not said".
//!
//! Read (names compared without case):
//! - OpenAI, Azure OpenAI, Groq, Mistral: `x-ratelimit-remaining-requests`,
//!   `x-ratelimit-remaining-tokens`, `x-ratelimit-reset-requests`, `x-ratelimit-reset-tokens`
//!   (Go durations: `20ms`, `6m0s`, `2m59.56s`; a bare number is seconds);
//! - Anthropic: `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-remaining`
//!   and `…-reset` (RFC 3339 times);
//! - the IETF draft as gateways send it: `ratelimit-remaining` with `ratelimit-reset`
//!   (seconds), counted as requests. (The draft's later structured `RateLimit` field is not
//!   read: no LLM provider sends it, and its parser would cost the module a kilobyte.)

/// A reset further away than this is read as this far: a value that would keep a provider
/// aside for days is more likely wrong than right, and the next answer says again.
pub const MAX_RESET_MS: u64 = 3_600_000;

/// One budget as one response told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remaining {
    pub left: u64,
    /// When it refills (epoch ms), if the response said.
    pub reset_at_ms: Option<u64>,
}

/// A response's requests and tokens budgets (the tightest where several are told).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Observed {
    pub requests: Option<Remaining>,
    pub tokens: Option<Remaining>,
}

impl Observed {
    pub fn is_empty(&self) -> bool {
        self.requests.is_none() && self.tokens.is_none()
    }
}

#[derive(Clone, Copy)]
enum Part {
    Left,
    /// A delay: a Go duration or seconds.
    ResetIn,
    /// An RFC 3339 time.
    ResetAt,
}

/// Header name, what it gives, its slot (budgets told by one family of headers), and
/// whether that slot counts tokens.
const FIELDS: &[(&str, Part, usize)] = &[
    ("x-ratelimit-remaining-requests", Part::Left, 0),
    ("x-ratelimit-reset-requests", Part::ResetIn, 0),
    ("x-ratelimit-remaining-tokens", Part::Left, 1),
    ("x-ratelimit-reset-tokens", Part::ResetIn, 1),
    ("anthropic-ratelimit-requests-remaining", Part::Left, 2),
    ("anthropic-ratelimit-requests-reset", Part::ResetAt, 2),
    ("anthropic-ratelimit-tokens-remaining", Part::Left, 3),
    ("anthropic-ratelimit-tokens-reset", Part::ResetAt, 3),
    ("anthropic-ratelimit-input-tokens-remaining", Part::Left, 4),
    ("anthropic-ratelimit-input-tokens-reset", Part::ResetAt, 4),
    ("anthropic-ratelimit-output-tokens-remaining", Part::Left, 5),
    ("anthropic-ratelimit-output-tokens-reset", Part::ResetAt, 5),
    ("ratelimit-remaining", Part::Left, 6),
    ("ratelimit-reset", Part::ResetIn, 6),
];
/// Slots that count tokens; the others count requests.
const TOKEN_SLOTS: [bool; 7] = [false, true, false, true, true, true, false];

/// The budgets `headers` tell, resets made absolute from `now_ms` (the host's epoch clock).
pub fn observe(headers: &[(String, String)], now_ms: u64) -> Observed {
    let mut slots: [(Option<u64>, Option<u64>); 7] = [(None, None); 7];
    for (name, value) in headers {
        let Some(&(_, part, slot)) = FIELDS
            .iter()
            .find(|(field, ..)| field.eq_ignore_ascii_case(name))
        else {
            continue;
        };
        let Some((left, reset_at)) = slots.get_mut(slot) else {
            continue;
        };
        let value = value.trim();
        let cap = |at_ms: u64| at_ms.min(now_ms.saturating_add(MAX_RESET_MS));
        match part {
            Part::Left => *left = whole(value),
            Part::ResetIn => *reset_at = delay_ms(value).map(|ms| cap(now_ms.saturating_add(ms))),
            Part::ResetAt => *reset_at = epoch_ms(value).map(cap),
        }
    }
    let mut observed = Observed::default();
    for ((left, reset_at_ms), tokens) in slots.into_iter().zip(TOKEN_SLOTS) {
        let Some(left) = left else { continue };
        let told = Remaining { left, reset_at_ms };
        let kept = if tokens {
            &mut observed.tokens
        } else {
            &mut observed.requests
        };
        // The tightest budget is the one that runs out first.
        if kept.is_none_or(|kept| left < kept.left) {
            *kept = Some(told);
        }
    }
    observed
}

/// Digits only (no sign, no fraction), saturating.
fn whole(text: &str) -> Option<u64> {
    match decimal(text.as_bytes(), 0)? {
        (number, _, 1, end) if end == text.len() => Some(number),
        _ => None,
    }
}

/// A Go duration (`1h2m3.5s`, `20ms`, `100us`) or bare seconds (`30`, `1.5`), in
/// milliseconds rounded up (coming back a little late is better than a little early).
pub fn delay_ms(text: &str) -> Option<u64> {
    let text = text.strip_prefix('+').unwrap_or(text);
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return None;
    }
    let mut total_ns: u64 = 0;
    let mut at = 0;
    while at < bytes.len() {
        let first = at == 0;
        let (whole_part, fraction, scale, next) = decimal(bytes, at)?;
        let unit_start = next;
        at = next;
        while bytes
            .get(at)
            .is_some_and(|b| !b.is_ascii_digit() && *b != b'.')
        {
            at += 1;
        }
        // Units end where digits start: both are character boundaries.
        let unit_ns: u64 = match text.get(unit_start..at)? {
            "" if first && at == bytes.len() => 1_000_000_000,
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let part = whole_part
            .saturating_mul(unit_ns)
            .saturating_add(fraction.saturating_mul(unit_ns) / scale);
        total_ns = total_ns.saturating_add(part);
    }
    Some(total_ns.div_ceil(1_000_000))
}

/// Digits, optionally `.` and more digits, from `at`: the whole part, the fraction's digits
/// (at most nine kept) and their scale (10^kept), and where it ended. At least one digit.
fn decimal(bytes: &[u8], mut at: usize) -> Option<(u64, u64, u64, usize)> {
    let mut digits = 0;
    let mut whole_part: u64 = 0;
    while let Some(digit) = bytes.get(at).filter(|b| b.is_ascii_digit()) {
        whole_part = whole_part
            .saturating_mul(10)
            .saturating_add(u64::from(digit - b'0'));
        digits += 1;
        at += 1;
    }
    let (mut fraction, mut scale) = (0u64, 1u64);
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        while let Some(digit) = bytes.get(at).filter(|b| b.is_ascii_digit()) {
            if scale < 1_000_000_000 {
                fraction = fraction * 10 + u64::from(digit - b'0');
                scale *= 10;
            }
            digits += 1;
            at += 1;
        }
    }
    (digits > 0).then_some((whole_part, fraction, scale, at))
}

/// An RFC 3339 time (`2026-12-04T09:49:06Z`, `…T09:49:06.5+08:00`) in epoch milliseconds.
pub fn epoch_ms(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    let number = |from: usize, len: usize| -> Option<i64> {
        let digits = bytes.get(from..from + len)?;
        digits.iter().try_fold(0i64, |n, b| {
            b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
        })
    };
    // `YYYY-MM-DDTHH:MM:SS`: each field, then its separator.
    let mut fields = [0i64; 6];
    for (index, field) in fields.iter_mut().enumerate() {
        let (start, len) = if index == 0 {
            (0, 4)
        } else {
            (3 * index + 2, 2)
        };
        *field = number(start, len)?;
        let separator = bytes.get(start + len).copied();
        let expected = match index {
            0 | 1 => separator == Some(b'-'),
            2 => matches!(separator, Some(b'T' | b't' | b' ')),
            3 | 4 => separator == Some(b':'),
            _ => true,
        };
        if !expected {
            return None;
        }
    }
    let [year, month, day, hour, minute, second] = fields;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut at = 19;
    let mut millis = 0i64;
    if bytes.get(at) == Some(&b'.') {
        let (_, fraction, scale, next) = decimal(bytes, at)?;
        millis = i64::try_from(fraction * 1000 / scale).ok()?;
        at = next;
    }
    let offset_minutes = match bytes.get(at) {
        Some(b'Z' | b'z') if at + 1 == bytes.len() => 0,
        Some(sign @ (b'+' | b'-')) if at + 6 == bytes.len() && bytes.get(at + 3) == Some(&b':') => {
            let minutes = number(at + 1, 2)? * 60 + number(at + 4, 2)?;
            if *sign == b'+' {
                minutes
            } else {
                -minutes
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    u64::try_from(seconds * 1000 + millis).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}
