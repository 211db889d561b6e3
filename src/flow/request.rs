//! Reading the request before any choice: which configuration applies, whether the filter
//! answers it itself or balances it, and what its whole body says (model, pool, prompt).

use std::borrow::Cow;

use log::debug;

use super::phase::{BodyCopy, Phase, ReadBody};
use super::retry::Resend;
use super::{answers, status_page, RequestHost, Stat, Step, Verdict};
use crate::config::{BalancerConfig, ConfigRef, PluginConfig, Pool, UnknownModel};
use crate::rewrite::body_facts_with_session;
use crate::rules::RequestIdentity;

/// A request the filter does not balance.
pub(super) enum Handled {
    /// It goes on as it is (why, for the debug log).
    Unbalanced(Cow<'static, str>),
    /// The filter answered it (or tried to: the verdict says).
    Answered(Verdict),
}

/// A request the filter balances, under configuration `config`.
pub(super) enum Balanced {
    /// Once its whole body is here: its pool or strategy reads it, or a retry resends it.
    AfterBody(ConfigRef),
    /// On its headers.
    Now(ConfigRef),
}

/// The request's headers are here.
pub(super) fn on_headers(
    plugin: &PluginConfig,
    host: &mut dyn RequestHost,
    end_of_stream: bool,
) -> Result<Balanced, Handled> {
    // A client never chooses its provider: its copies of the control headers go now, before
    // the route table or anything else reads them, whatever becomes of the request.
    if strip_control_headers(plugin, host) {
        // The route may have been matched on the client's header already.
        host.clear_route_cache();
    }
    let unbalanced = |why: &'static str| Err(Handled::Unbalanced(why.into()));
    let Some((which, config)) = applicable_config(plugin, host) else {
        return unbalanced("no configuration applies to this request");
    };
    if let Some(endpoint) = &config.status_endpoint {
        if status_page::is_asked(host, endpoint) {
            let page = status_page::render(host, config);
            return Err(answer(host, &page, Stat::StatusServed));
        }
    }
    if config.list_models && answers::is_models_list(host) {
        let list = answers::models_list(&config.pools);
        return Err(answer(host, &list, Stat::ModelsListed));
    }
    if !in_scope(host, config) {
        return unbalanced("path or route not balanced (paths, route_names)");
    }
    if end_of_stream {
        return unbalanced("request has no body");
    }
    host.count(Stat::Balanced);
    if config.needs_body() {
        // Said once per request at debug level: where a host never delivers the body to
        // held headers (Envoy without allow_on_headers_stop_iteration), this is the last line.
        debug!("ai-load-balancer: holding the headers until the whole body is in (model pools)");
        return Ok(Balanced::AfterBody(which));
    }
    Ok(Balanced::Now(which))
}

/// The whole body is here (`size` bytes), headers held: read its model and prompt, find the
/// pool.
pub(super) fn read_whole_body(
    plugin: &PluginConfig,
    host: &mut dyn RequestHost,
    which: ConfigRef,
    size: usize,
) -> Result<ReadBody, Handled> {
    let unbalanced = |why: &'static str| Err(Handled::Unbalanced(why.into()));
    let Some(config) = plugin.get(which) else {
        return unbalanced("no configuration");
    };
    let Some(body) = host.request_body(0, size) else {
        return unbalanced("request body unavailable");
    };
    // The pool is known only once the model is read: hash with the prefix length (and read the
    // session field) most pools use, and again in the rare case the request's pool differs.
    let prefix_bytes = config.pools.common_prefix_bytes;
    let session_field = config.pools.common_session_field.as_deref();
    let mut facts = match body_facts_with_session(&body, prefix_bytes, session_field) {
        Ok(facts) => facts,
        Err(skip) => {
            let why = format!("body forwarded untouched: {skip}");
            return Err(Handled::Unbalanced(why.into()));
        }
    };
    let pool = match config.pools.for_model(facts.model.as_deref()) {
        Ok(pool) | Err(UnknownModel::Pool(pool)) => pool,
        Err(UnknownModel::PassThrough) => {
            return unbalanced("model names no pool (unknown_model: pass_through)")
        }
        Err(UnknownModel::Reject) => {
            let answer = answers::unknown_model(facts.model.as_deref(), &config.pools);
            if !host.send_local_response(404, &answer) {
                return unbalanced("the 404 for an unknown model was refused");
            }
            host.count(Stat::UnknownModel);
            return Err(Handled::Answered(Verdict::Pause));
        }
    };
    let pool_entry = config.pools.pools.get(pool);
    let pool_prefix_bytes = pool_entry.map_or(0, Pool::prefix_bytes);
    let pool_session_field = pool_entry.and_then(Pool::session_field);
    if pool_prefix_bytes != prefix_bytes || pool_session_field != session_field {
        let again = body_facts_with_session(&body, pool_prefix_bytes, pool_session_field).ok();
        facts.prefix_hash = again.as_ref().and_then(|facts| facts.prefix_hash);
        facts.session_hash = again.and_then(|facts| facts.session_hash);
    }
    let copy = if config.retry.is_some() {
        BodyCopy::ForRetry(Resend::new(host, body, &plugin.control_headers))
    } else {
        BodyCopy::ForRewrite(body)
    };
    Ok(ReadBody { pool, facts, copy })
}

/// A request the filter does not balance goes on.
pub(super) fn handled(host: &mut dyn RequestHost, handled: Handled) -> Step {
    match handled {
        Handled::Unbalanced(why) => pass_through(host, &why),
        Handled::Answered(verdict) => (Phase::Passthrough, verdict),
    }
}

pub(super) fn pass_through(host: &mut dyn RequestHost, why: &str) -> Step {
    debug!("ai-load-balancer: not balanced: {why}");
    host.count(Stat::Passthrough);
    (Phase::Passthrough, Verdict::Continue)
}

/// Resumes a request paused in an earlier callback; when the host refuses, answers it (503)
/// rather than leave it held until its stream's timeout.
pub(super) fn resume_or_answer(host: &mut dyn RequestHost) {
    if !host.resume_request() {
        host.send_local_response(503, answers::NOT_RESUMED);
    }
}

/// Answers the request from the filter, counted when the host took the answer.
fn answer(host: &mut dyn RequestHost, body: &[u8], stat: Stat) -> Handled {
    if host.send_local_response(200, body) {
        host.count(stat);
        return Handled::Answered(Verdict::Pause);
    }
    Handled::Answered(Verdict::Continue)
}

fn strip_control_headers(plugin: &PluginConfig, host: &mut dyn RequestHost) -> bool {
    let mut stripped = false;
    for name in &plugin.control_headers {
        if host.request_header(name).is_some() {
            host.remove_request_header(name);
            stripped = true;
        }
    }
    stripped
}

fn applicable_config<'a>(
    plugin: &'a PluginConfig,
    host: &dyn RequestHost,
) -> Option<(ConfigRef, &'a BalancerConfig)> {
    let which = if plugin.rules.is_empty() {
        plugin.applicable(&RequestIdentity::default())
    } else {
        let route_name = host.property("route_name");
        let cluster_name = host.property("cluster_name");
        let authority = host.request_header(":authority");
        plugin.applicable(&RequestIdentity {
            route_name: route_name.as_deref(),
            cluster_name: cluster_name.as_deref(),
            authority: authority.as_deref(),
        })
    }?;
    Some((which, plugin.get(which)?))
}

/// Whether the configuration balances this request's path and route (`paths`, `route_names`).
fn in_scope(host: &dyn RequestHost, config: &BalancerConfig) -> bool {
    let path = host.request_header(":path").unwrap_or_default();
    if !config.scope.covers_path(&path) {
        return false;
    }
    // The route name is read only where routes are named: most configurations do not.
    config.scope.route_names.is_none()
        || config
            .scope
            .covers_route(host.property("route_name").as_deref())
}
