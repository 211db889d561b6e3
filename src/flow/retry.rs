//! Retry on another provider: when the chosen provider answers with a failure (a status the
//! health rules count, or a refused token), the upstream's response is held, the client's
//! request is sent again to another provider of the pool through that provider's cluster (a
//! dispatched call, the model rewritten for it), and the first useful reply answers the client.
//! Bounded by `max_retries` and a time budget from the request's start; when every retry fails,
//! the first provider's own answer goes on. The decision is taken on the response's headers,
//! before any byte reached the client, so a streaming request is retried the same way (its
//! retried reply arrives whole).

use log::debug;

use super::phase::Sent;
use super::{accounting, backends, meter, rate_limits, RequestHost, Stat, Worker};
use crate::call::{is_hop_by_hop, CallReply, CallRequest};
use crate::config::BalancerConfig;
use crate::health::Verdict as HealthVerdict;
use crate::rewrite::rewrite_model;
use crate::strategy::Inputs;

/// The request as the client sent it: what a retry sends again.
pub(super) struct Resend {
    body: Vec<u8>,
    method: String,
    path: String,
    authority: String,
    /// The end-to-end headers to send again (routing and hop-by-hop headers left out).
    headers: Vec<(String, String)>,
}

impl Resend {
    /// Taken before the choice sets the routing headers and the provider's token.
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
        }
    }
}

/// What retries on other providers need: the request to send again, and where it went.
pub(super) struct Retry {
    request: Resend,
    /// Providers this request went to, first pick included.
    tried: Vec<usize>,
    retries: u32,
}

impl Retry {
    /// For a request first sent to `provider`.
    pub fn new(request: Resend, provider: usize) -> Self {
        Self {
            request,
            tried: vec![provider],
            retries: 0,
        }
    }

    /// The body as the client sent it.
    pub fn body(&self) -> &[u8] {
        &self.request.body
    }
}

/// A retry that is out.
#[derive(Debug, Clone, Copy)]
pub(super) struct Attempt {
    provider: usize,
    /// Its backend in the pool.
    backend: usize,
    token: Option<u64>,
}

/// The upstream's response headers are here: notes the first byte (where the pool learns
/// latencies), and judges the provider once. The verdict recorded now, if any.
pub(super) fn judge_response(
    host: &mut dyn RequestHost,
    config: &BalancerConfig,
    sent: &mut Sent,
) -> Option<HealthVerdict> {
    if sent.first_byte_ms.is_none() && accounting::tracks_latency(config, sent.pool) {
        sent.first_byte_ms = Some(host.now_ms());
    }
    if sent.verdict.is_some() {
        return None;
    }
    let status = host
        .response_header(":status")
        .and_then(|status| status.parse::<u32>().ok())?;
    sent.status = Some(status);
    // Only a 429's wait is read (`HealthPolicy::verdict`): one host call fewer on every other
    // answer.
    let retry_after = (status == 429)
        .then(|| host.response_header("retry-after"))
        .flatten();
    let verdict = config
        .health
        .verdict(Some(status), retry_after.as_deref(), sent.token.is_some());
    backends::record_verdict(host, config, sent.provider, sent.token, verdict);
    rate_limits::record_response(host, config, sent.provider, sent.token);
    sent.verdict = Some(verdict);
    Some(verdict)
}

/// The reply of the retry `out`: the first useful one answers the client; otherwise another
/// retry, while one may go. The retry now out, if any (`None`: the request was answered).
pub(super) fn on_reply(
    host: &mut dyn RequestHost,
    worker: &mut dyn Worker,
    config: &BalancerConfig,
    sent: &Sent,
    retry: &mut Retry,
    out: Attempt,
    reply: CallReply,
) -> Option<Attempt> {
    let verdict = config.health.verdict(
        reply.status,
        reply.header("retry-after"),
        out.token.is_some(),
    );
    backends::record_verdict(host, config, out.provider, out.token, verdict);
    rate_limits::record_answer(host, config, out.provider, out.token, &reply.headers);
    if verdict == HealthVerdict::Success {
        let mut headers = reply.headers;
        headers.retain(|(name, _)| !is_hop_by_hop(name));
        if host.send_response(reply.status.unwrap_or(200), &headers, &reply.body) {
            host.count(Stat::RetryRecovered);
            let answered = Sent {
                provider: out.provider,
                backend: out.backend,
                ..*sent
            };
            meter::count_reply_tokens(host, config, &answered, &reply.body);
        } else {
            // The first provider's own answer goes on instead.
            host.count(Stat::RetryExhausted);
            host.resume_response();
        }
        return None;
    }
    if let Some(next) = retry_elsewhere(host, worker, config, sent, retry) {
        return Some(next);
    }
    host.count(Stat::RetryExhausted);
    host.resume_response();
    None
}

/// Sends the request to another provider of the pool, if the policy, the budget and the pool
/// allow one: the retry now out.
pub(super) fn retry_elsewhere(
    host: &mut dyn RequestHost,
    worker: &mut dyn Worker,
    config: &BalancerConfig,
    sent: &Sent,
    retry: &mut Retry,
) -> Option<Attempt> {
    let policy = config.retry?;
    let pool = config.pools.pools.get(sent.pool)?;
    let now_ms = host.now_ms();
    let elapsed_ms = now_ms.saturating_sub(sent.at_ms);
    if retry.retries >= policy.max_retries || elapsed_ms >= policy.budget_ms {
        return None;
    }
    let remaining_ms = policy.budget_ms - elapsed_ms;
    let health = backends::read_health(host, config, pool);
    let mut backends = super::choose::backends_now(host, pool, None, false, now_ms);
    let tried = &retry.tried;
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
        prefix_hash: sent.prefix_hash,
        spillover: pool.spillover,
        session: super::choose::session(pool, sent.session_hash),
    };
    let rng = worker.rng();
    let Some(picked) = backends::pick_healthy(host, &candidates, &mut backends, &inputs, rng)
    else {
        debug!("ai-load-balancer: no other provider to retry on");
        return None;
    };
    let backend = pool.backends.get(picked.index)?;
    let provider = config.providers.get(backend.provider)?;
    let upstream = provider.upstream.as_ref()?;
    let request = &retry.request;
    let mut headers = vec![
        (":method".to_string(), request.method.clone()),
        (":path".to_string(), upstream.path_for(&request.path)),
        (":authority".to_string(), request.authority.clone()),
    ];
    let token = backends::choose_token(provider, &picked, now_ms, rng);
    let fingerprint = token.map(|token| token.fingerprint);
    for (name, value) in &request.headers {
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
        Some(model) => rewrite_model(&request.body, model).unwrap_or_else(|skip| {
            debug!("ai-load-balancer: retried body sent untouched: {skip}");
            request.body.clone()
        }),
        None => request.body.clone(),
    };
    let call = CallRequest {
        cluster: upstream.cluster.clone(),
        headers,
        body: Some(body),
        timeout_ms: u32::try_from(remaining_ms).unwrap_or(u32::MAX),
    };
    let (trial_since, index) = (picked.trial_since, picked.index);
    retry.tried.push(backend.provider);
    if let Err(why) = host.dispatch(&call) {
        debug!(
            "ai-load-balancer: retry on {} not sent: {why}",
            provider.name
        );
        if let Some(since_ms) = trial_since {
            backends::abandon_trial(host, provider, since_ms);
        }
        return None;
    }
    retry.retries += 1;
    host.count(Stat::RetrySent);
    host.count(Stat::Provider(provider.name.clone(), "retried"));
    Some(Attempt {
        provider: backend.provider,
        backend: index,
        token: fingerprint,
    })
}
