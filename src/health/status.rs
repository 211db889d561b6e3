//! The opt-in status page: which source addresses may read it, and what it says (each
//! provider's health, load, cooldown, tokens, masked, and low rate-limit budgets), as JSON.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use super::{Availability, ProviderHealth, State};
use crate::load::Load;
use crate::ratelimit::Entry;

/// An address or a CIDR block (`10.0.0.0/8`, `::1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRange {
    pub network: IpAddr,
    pub prefix_len: u8,
}

impl AddressRange {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("{address:?} is not an IP address"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix {
            None => max,
            // Read as a `u32`, whose parser the module has anyway; a `u8` takes the same text.
            Some(prefix) => match prefix.parse::<u32>() {
                Ok(len) if len <= u32::from(max) => len as u8,
                _ => return Err(format!("prefix length {prefix:?} is not 0 to {max}")),
            },
        };
        Ok(Self {
            network,
            prefix_len,
        })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let (network, network_v4) = octets(self.network);
        let (address, address_v4) = octets(address);
        if address_v4 && !network_v4 {
            return false;
        }
        // An IPv4 range, as IPv4-mapped IPv6, also holds the mapped form of its addresses.
        let bits = usize::from(self.prefix_len) + if network_v4 { 96 } else { 0 };
        let (whole, rest) = (bits / 8, bits % 8);
        network.get(..whole) == address.get(..whole)
            && (rest == 0
                || network
                    .get(whole)
                    .zip(address.get(whole))
                    .is_some_and(|(n, a)| (n ^ a) >> (8 - rest) == 0))
    }
}

/// An address as IPv6 octets (IPv4 mapped to `::ffff:a.b.c.d`), and whether it is IPv4.
fn octets(address: IpAddr) -> ([u8; 16], bool) {
    match address {
        IpAddr::V4(v4) => (v4.to_ipv6_mapped().octets(), true),
        IpAddr::V6(v6) => (v6.octets(), false),
    }
}

/// The client's address from Envoy's `source.address` property (`ip:port`, `[v6]:port`, or a
/// bare address).
pub fn source_ip(property: &str) -> Option<IpAddr> {
    let socket = property.parse::<SocketAddr>().map(|socket| socket.ip());
    socket.or_else(|_| property.parse::<IpAddr>()).ok()
}

/// What the page shows of one provider.
pub struct ProviderStatus<'a> {
    pub name: &'a str,
    pub health: &'a ProviderHealth,
    pub load: Option<Load>,
    /// Masked token, whether it is usable now, and its low rate-limit budgets.
    pub tokens: Vec<(String, bool, Option<Entry>)>,
    /// Its own low rate-limit budgets, if any.
    pub rate_limit: Option<Entry>,
}

/// The page's JSON: `{"providers": [...]}`.
#[derive(Serialize)]
struct Page<'a> {
    providers: Vec<ProviderEntry<'a>>,
}

#[derive(Serialize)]
struct ProviderEntry<'a> {
    name: &'a str,
    health: &'static str,
    consecutive_failures: u32,
    cooldown_remaining_ms: u64,
    load: Option<Load>,
    tokens: Vec<TokenEntry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_limit: Option<RateView>,
}

#[derive(Serialize)]
struct TokenEntry<'a> {
    token: &'a str,
    available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_limit: Option<RateView>,
}

/// A low budget as the page shows it: what is left, and how long until it refills.
#[derive(Serialize)]
struct RateView {
    requests_remaining: Option<u64>,
    requests_reset_in_ms: u64,
    tokens_remaining: Option<u64>,
    tokens_reset_in_ms: u64,
}

/// The budgets of `entry` not yet refilled; `None` when none is.
fn rate_view(entry: Option<&Entry>, now_ms: u64) -> Option<RateView> {
    let entry = entry?;
    let live = |left: Option<u64>, reset_ms: u64| left.filter(|_| reset_ms > now_ms);
    let view = RateView {
        requests_remaining: live(entry.requests, entry.requests_reset_ms),
        requests_reset_in_ms: entry.requests_reset_ms.saturating_sub(now_ms),
        tokens_remaining: live(entry.tokens, entry.tokens_reset_ms),
        tokens_reset_in_ms: entry.tokens_reset_ms.saturating_sub(now_ms),
    };
    (view.requests_remaining.is_some() || view.tokens_remaining.is_some()).then_some(view)
}

pub fn render(providers: &[ProviderStatus<'_>], now_ms: u64) -> Vec<u8> {
    let page = Page {
        providers: providers
            .iter()
            .map(|provider| entry(provider, now_ms))
            .collect(),
    };
    // Plain structs of strings, numbers and options always serialize.
    serde_json::to_vec(&page).unwrap_or_default()
}

fn entry<'a>(provider: &'a ProviderStatus<'a>, now_ms: u64) -> ProviderEntry<'a> {
    let health = provider.health;
    let (state, cooldown_ms) = match (health.state, health.availability(now_ms, &[])) {
        (State::Healthy, _) => ("healthy", 0),
        (_, Availability::TrialDue) => ("half_open", 0),
        (State::Trial { .. }, _) => ("half_open", 0),
        (State::Ejected { until_ms }, _) => ("ejected", until_ms.saturating_sub(now_ms)),
    };
    ProviderEntry {
        name: provider.name,
        health: state,
        consecutive_failures: health.failures,
        cooldown_remaining_ms: cooldown_ms,
        load: provider.load,
        tokens: provider
            .tokens
            .iter()
            .map(|(masked, usable, rate)| TokenEntry {
                token: masked,
                available: *usable,
                rate_limit: rate_view(rate.as_ref(), now_ms),
            })
            .collect(),
        rate_limit: rate_view(provider.rate_limit.as_ref(), now_ms),
    }
}
