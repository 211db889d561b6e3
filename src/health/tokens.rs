//! API-key pools: a provider's tokens, which one a request uses, and how a token is shown
//! (never whole: logs, stats and the status page see a masked form).

use super::ProviderHealth;
use crate::background::fnv1a_64;
use crate::rng::Rng;

/// One configured secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub secret: String,
    /// Identifies the token in shared data without its value.
    pub fingerprint: u64,
}

impl ApiToken {
    pub fn new(secret: &str) -> Self {
        Self {
            secret: secret.to_string(),
            fingerprint: fingerprint(secret),
        }
    }

    pub fn masked(&self) -> String {
        mask(&self.secret)
    }
}

/// Debug output must not print a secret either.
impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiToken({})", self.masked())
    }
}

/// A provider's tokens and how they are written into a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPool {
    pub tokens: Vec<ApiToken>,
    /// Lowercase header name.
    pub header: String,
    /// `Bearer <token>` (the `authorization` header) rather than the bare token.
    pub bearer: bool,
}

impl TokenPool {
    pub fn fingerprints(&self) -> Vec<u64> {
        self.tokens.iter().map(|token| token.fingerprint).collect()
    }

    /// The header value that carries `token`.
    /// The headers a client's own credential may travel in; a request to a provider with a pool
    /// carries none of them but the pool's token (the client's key is not the provider's, and
    /// must not leak to it).
    pub fn client_credential_headers(&self) -> [&str; 4] {
        [
            "authorization",
            "api-key",
            "x-api-key",
            self.header.as_str(),
        ]
    }

    pub fn is_client_credential(&self, name: &str) -> bool {
        self.client_credential_headers().contains(&name)
    }

    pub fn header_value(&self, token: &ApiToken) -> String {
        if self.bearer {
            format!("Bearer {}", token.secret)
        } else {
            token.secret.clone()
        }
    }

    /// A random usable token, preferring those whose rate-limit budget is not `low`; when none
    /// is usable, the one that comes back first (a request is never refused for want of a token).
    pub fn choose<'a>(
        &'a self,
        health: &ProviderHealth,
        low: &dyn Fn(u64) -> bool,
        now_ms: u64,
        rng: &mut Rng,
    ) -> Option<&'a ApiToken> {
        let usable_now = |token: &ApiToken| health.token_usable(token.fingerprint, now_ms);
        let prefer_not_low = self
            .tokens
            .iter()
            .any(|token| usable_now(token) && !low(token.fingerprint));
        let usable: Vec<&ApiToken> = self
            .tokens
            .iter()
            .filter(|token| usable_now(token) && !(prefer_not_low && low(token.fingerprint)))
            .collect();
        if usable.is_empty() {
            // The first of those whose cooldown ends first (`min_by_key` keeps the first tie).
            return self
                .tokens
                .iter()
                .min_by_key(|token| health.token(token.fingerprint).map_or(0, |h| h.until_ms));
        }
        let index = rng.below(usable.len() as u64) as usize;
        usable.get(index).copied()
    }
}

pub fn fingerprint(secret: &str) -> u64 {
    fnv1a_64(secret.as_bytes())
}

/// `sk-…wxyz`: the first three and last four characters of a long token, nothing of a short one.
pub fn mask(secret: &str) -> String {
    let count = secret.chars().count();
    if count < 12 {
        return "…".into();
    }
    // Where the fourth character starts, and the fourth from the end.
    let start_of = |position: usize| secret.char_indices().nth(position).map_or(0, |(at, _)| at);
    let head = secret.get(..start_of(3)).unwrap_or_default();
    let tail = secret.get(start_of(count - 4)..).unwrap_or_default();
    format!("{head}…{tail}")
}
