//! Retry on another provider: when the chosen provider answers with a failure (a status the
//! health rules count, or a refused token), the upstream's response is held, the client's
//! request is sent again to another provider of the pool through that provider's cluster (a
//! dispatched call, the model rewritten for it), and the first useful reply answers the client.
//! Bounded by `max_retries` and a time budget from the request's start; when every retry fails,
//! the first provider's own answer goes on. The decision is taken on the response's headers,
//! before any byte reached the client, so a streaming request is retried the same way (its
//! retried reply arrives whole).

use log::debug;

use super::{backends, Phase, RequestFlow, RequestHost, Stat, Verdict};
use crate::call::{is_hop_by_hop, CallReply, CallRequest};
use crate::config::BalancerConfig;
use crate::health::Verdict as HealthVerdict;
use crate::rewrite::rewrite_model;
use crate::rng::Rng;
use crate::strategy::Inputs;

/// The request as the client sent it, and the retries so far.
pub(super) struct RetryState {
    body: Vec<u8>,
    method: String,
    path: String,
    authority: String,
    /// The end-to-end headers to send again (routing and hop-by-hop headers left out).
    headers: Vec<(String, String)>,
    /// Providers this request went to, first pick included.
    pub tried: Vec<usize>,
    retries: u32,
    /// The retry now out.
    out: Option<Attempt>,
}

#[derive(Debug, Clone, Copy)]
struct Attempt {
    provider: usize,
    token: Option<u64>,
}

impl RetryState {
    pub fn new(host: &dyn RequestHost, body: Vec<u8>, control_headers: &[String]) -> Self {
        let mut method = None;
        let mut path = None;
        let mut authority = None;
        let mut headers = Vec::new();
        for (name, value) in host.request_headers() {
            // The first of each pseudo-header, as a lookup finds it; pseudo-headers are never
            // sent on as they are.
            let pseudo = match name.as_str() {
                ":method" => &mut method,
                ":path" => &mut path,
                ":authority" => &mut authority,
                _ => {
                    if !is_hop_by_hop(&name) && !control_headers.contains(&name) {
                        headers.push((name, value));
                    }
                    continue;
                }
            };
            pseudo.get_or_insert(value);
        }
        Self {
            body,
            method: method.unwrap_or_default(),
            path: path.unwrap_or_default(),
            authority: authority.unwrap_or_default(),
            headers,
            tried: Vec::new(),
            retries: 0,
            out: None,
        }
    }
}

impl RetryState {
    /// The body as the client sent it.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

impl RequestFlow {
    /// The upstream's response headers are here: judge the provider, and when it failed, try
    /// another. `Pause` holds the response while a retry is out.
    pub fn on_response_headers(&mut self, host: &mut dyn RequestHost, rng: &mut Rng) -> Verdict {
        self.note_first_byte(host);
        let Some(mut sent) = self.sent.filter(|sent| sent.verdict.is_none()) else {
            return Verdict::Continue;
        };
        let plugin = std::rc::Rc::clone(&self.plugin);
        let Some(config) = self.config.and_then(|which| plugin.get(which)) else {
            return Verdict::Continue;
        };
        let Some(status) = host
            .response_header(":status")
            .and_then(|status| status.parse::<u32>().ok())
        else {
            return Verdict::Continue;
        };
        let retry_after = host.response_header("retry-after");
        let verdict =
            config
                .health
                .verdict(Some(status), retry_after.as_deref(), sent.token.is_some());
        backends::record_verdict(host, config, sent.provider, sent.token, verdict);
        sent.verdict = Some(verdict);
        self.sent = Some(sent);
        if verdict != HealthVerdict::Success && self.retry_elsewhere(host, config, rng) {
            self.phase = Phase::Retrying;
            return Verdict::Pause;
        }
        // No retry can happen any more: free its copy of the body.
        self.retry = None;
        Verdict::Continue
    }

    /// While a retry is out the failed response's body is held back (it is dropped when the
    /// retry answers).
    pub fn on_response_body(&mut self) -> Verdict {
        if self.phase == Phase::Retrying {
            Verdict::Pause
        } else {
            Verdict::Continue
        }
    }

    /// A dispatched call came back: the store's reply, or a retry's.
    pub fn on_call_reply(&mut self, host: &mut dyn RequestHost, reply: CallReply, rng: &mut Rng) {
        match self.phase {
            Phase::AwaitingStore => self.on_store_reply(host, reply.into_store_reply(), rng),
            Phase::Retrying => self.on_retry_reply(host, reply, rng),
            _ => {}
        }
    }

    fn on_retry_reply(&mut self, host: &mut dyn RequestHost, reply: CallReply, rng: &mut Rng) {
        let plugin = std::rc::Rc::clone(&self.plugin);
        let Some(config) = self.config.and_then(|which| plugin.get(which)) else {
            return;
        };
        let Some(attempt) = self.retry.as_mut().and_then(|state| state.out.take()) else {
            return;
        };
        let verdict = config.health.verdict(
            reply.status,
            reply.header("retry-after"),
            attempt.token.is_some(),
        );
        backends::record_verdict(host, config, attempt.provider, attempt.token, verdict);
        if verdict == HealthVerdict::Success {
            let mut headers = reply.headers;
            headers.retain(|(name, _)| !is_hop_by_hop(name));
            self.phase = Phase::Released;
            self.retry = None;
            if host.send_response(reply.status.unwrap_or(200), &headers, &reply.body) {
                host.count(Stat::RetryRecovered);
            } else {
                // The first provider's own answer goes on instead.
                host.count(Stat::RetryExhausted);
                host.resume_response();
            }
            return;
        }
        if self.retry_elsewhere(host, config, rng) {
            return;
        }
        self.phase = Phase::Released;
        self.retry = None;
        host.count(Stat::RetryExhausted);
        host.resume_response();
    }

    /// Sends the request to another provider of the pool, if the policy, the budget and the
    /// pool allow one; true when a retry is out.
    fn retry_elsewhere(
        &mut self,
        host: &mut dyn RequestHost,
        config: &BalancerConfig,
        rng: &mut Rng,
    ) -> bool {
        let (Some(policy), Some(sent)) = (config.retry, self.sent) else {
            return false;
        };
        let Some(pool) = config.pools.pools.get(self.pool) else {
            return false;
        };
        let Some(state) = self.retry.as_mut() else {
            return false;
        };
        let now_ms = host.now_ms();
        let elapsed_ms = now_ms.saturating_sub(sent.at_ms);
        if state.retries >= policy.max_retries || elapsed_ms >= policy.budget_ms {
            return false;
        }
        let remaining_ms = policy.budget_ms - elapsed_ms;
        let health = backends::read_health(host, config, pool);
        let mut backends = super::choose::backends_now(host, pool, None, false, now_ms);
        let tried = &state.tried;
        let unreachable = |provider: usize| {
            tried.contains(&provider)
                || config
                    .providers
                    .get(provider)
                    .is_none_or(|p| p.upstream.is_none())
        };
        let candidates = backends::Candidates {
            config,
            pool,
            health: &health,
            excluded: &unreachable,
            fall_back_to_out: false,
        };
        let inputs = Inputs {
            round_robin_ticket: None,
            prefix_hash: self.facts.prefix_hash,
        };
        let Some(picked) = backends::pick_healthy(host, &candidates, &mut backends, &inputs, rng)
        else {
            debug!("ai-load-balancer: no other provider to retry on");
            return false;
        };
        let Some(backend) = pool.backends.get(picked.index) else {
            return false;
        };
        let Some(provider) = config.providers.get(backend.provider) else {
            return false;
        };
        let Some(upstream) = &provider.upstream else {
            return false;
        };
        let mut headers = vec![
            (":method".to_string(), state.method.clone()),
            (":path".to_string(), upstream.path_for(&state.path)),
            (":authority".to_string(), state.authority.clone()),
        ];
        let token = backends::choose_token(provider, picked.health, now_ms, rng);
        let fingerprint = token.map(|token| token.fingerprint);
        for (name, value) in &state.headers {
            let credential = provider
                .tokens
                .as_ref()
                .is_some_and(|pool| pool.is_client_credential(name));
            if !credential {
                headers.push((name.clone(), value.clone()));
            }
        }
        if let (Some(token), Some(pool)) = (token, &provider.tokens) {
            headers.push((pool.header.clone(), pool.header_value(token)));
        }
        let body = match &backend.model {
            Some(model) => rewrite_model(&state.body, model).unwrap_or_else(|skip| {
                debug!("ai-load-balancer: retried body sent untouched: {skip}");
                state.body.clone()
            }),
            None => state.body.clone(),
        };
        let call = CallRequest {
            cluster: upstream.cluster.clone(),
            headers,
            body: Some(body),
            timeout_ms: u32::try_from(remaining_ms).unwrap_or(u32::MAX),
        };
        let trial_since = picked.trial_since;
        state.tried.push(backend.provider);
        if let Err(why) = host.dispatch(&call) {
            debug!(
                "ai-load-balancer: retry on {} not sent: {why}",
                provider.name
            );
            if let Some(since_ms) = trial_since {
                backends::abandon_trial(host, provider, since_ms);
            }
            return false;
        }
        state.retries += 1;
        state.out = Some(Attempt {
            provider: backend.provider,
            token: fingerprint,
        });
        host.count(Stat::RetrySent);
        host.count(Stat::Provider(provider.name.clone(), "retried"));
        true
    }
}
