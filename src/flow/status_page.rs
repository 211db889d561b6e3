//! The opt-in status page (`status_endpoint`): served only to the configured source addresses,
//! it shows each provider's health, cooldown, load (where the filter holds one without asking
//! the store), token availability, tokens masked, and budgets below a rate-limit floor.

use super::{accounting, choose, RequestHost};
use crate::background::fresh_loads;
use crate::config::{BalancerConfig, InFlightScope, LoadSource, Refresh, StatusEndpoint};
use crate::health::status::{render as render_page, source_ip, ProviderStatus};
use crate::health::ProviderHealth;
use crate::load::Loads;
use crate::ratelimit::RateRecord;

/// A `GET` of the page's path from an allowed address. Any other source is not told the page
/// exists: its request goes on like any other.
pub fn is_asked(host: &dyn RequestHost, endpoint: &StatusEndpoint) -> bool {
    let path = host.request_header(":path").unwrap_or_default();
    let path = path.split('?').next().unwrap_or_default();
    if path != endpoint.path || host.request_header(":method").as_deref() != Some("GET") {
        return false;
    }
    // Under Envoy's default `use_remote_address: false` the source address is taken from
    // X-Forwarded-For, which any client can write.
    if !endpoint.trust_forwarded_for && host.request_header("x-forwarded-for").is_some() {
        return false;
    }
    let Some(source) = host.property("source.address").and_then(|a| source_ip(&a)) else {
        return false;
    };
    endpoint
        .allowed_sources
        .iter()
        .any(|range| range.contains(source))
}

pub fn render(host: &dyn RequestHost, config: &BalancerConfig) -> Vec<u8> {
    let now_ms = host.now_ms();
    let loads = loads_at_hand(host, config, now_ms);
    let mut health = Vec::with_capacity(config.providers.len());
    for provider in &config.providers {
        health.push(ProviderHealth::read(
            host.shared_data(&provider.health_key).as_deref(),
        ));
    }
    let mut providers = Vec::with_capacity(config.providers.len());
    for (index, (provider, health)) in config.providers.iter().zip(&health).enumerate() {
        let rate_limits = RateRecord::read(
            provider
                .rate_limits
                .as_ref()
                .and_then(|watch| host.shared_data(&watch.key))
                .as_deref(),
        );
        let mut tokens = Vec::new();
        if let Some(pool) = &provider.tokens {
            for token in &pool.tokens {
                tokens.push((
                    token.masked(),
                    health.token_usable(token.fingerprint, now_ms),
                    rate_limits.entry(Some(token.fingerprint)).copied(),
                ));
            }
        }
        providers.push(ProviderStatus {
            name: &provider.name,
            health,
            load: loads.get(index).copied().flatten(),
            tokens,
            rate_limit: rate_limits.entry(None).copied(),
        });
    }
    render_page(&providers, now_ms)
}

/// The loads the filter holds without asking anyone: published by background reads or
/// scrapes, or counted in flight in this gateway. Unknown otherwise.
fn loads_at_hand(host: &dyn RequestHost, config: &BalancerConfig, now_ms: u64) -> Loads {
    let providers = config.providers.len();
    match &config.loads {
        LoadSource::Store(read) => match read.config.refresh {
            Refresh::Background { max_age_ms, .. } => {
                let published = host.shared_data(&read.shared_keys.loads);
                fresh_loads(
                    published.as_deref(),
                    providers,
                    now_ms,
                    u64::from(max_age_ms),
                )
                .unwrap_or_else(|_| vec![None; providers])
            }
            Refresh::PerRequest { .. } => vec![None; providers],
        },
        LoadSource::Engines(scrape) => choose::engine_loads(host, config, scrape.max_age_ms),
        LoadSource::InFlight(InFlightScope::Gateway) => accounting::in_flight_loads(host, config),
        LoadSource::InFlight(InFlightScope::Replicas(_)) | LoadSource::None => {
            vec![None; providers]
        }
    }
}
