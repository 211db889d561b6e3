//! Higress's Redis host calls (its fork of the proxy-wasm host, module `env`): the imports, the
//! reply export and the routing of each reply to its request (by token).

use std::cell::RefCell;
use std::collections::BTreeMap;

use log::{debug, warn};

use super::abi::{self, BufferType};

use crate::config::PluginConfig;
use crate::store::{StoreError, StoreQuery};

const STATUS_OK: u32 = 0;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_redis_init(
        upstream_data: *const u8,
        upstream_size: usize,
        username_data: *const u8,
        username_size: usize,
        password_data: *const u8,
        password_size: usize,
        timeout_milliseconds: u32,
    ) -> u32;

    fn proxy_redis_call(
        upstream_data: *const u8,
        upstream_size: usize,
        query_data: *const u8,
        query_size: usize,
        token: *mut u32,
    ) -> u32;
}

/// What to do with a reply (or its failure), once the caller's context is current again.
pub type OnReply = Box<dyn FnOnce(Result<Vec<u8>, StoreError>)>;

struct Pending {
    context_id: u32,
    on_reply: OnReply,
}

#[derive(Clone)]
struct ClusterSettings {
    username: String,
    password: String,
    timeout_ms: u32,
    /// `proxy_redis_init` succeeded for these settings.
    ready: bool,
}

thread_local! {
    /// The worker's calls in flight, by token.
    static PENDING: RefCell<BTreeMap<u32, Pending>> = const { RefCell::new(BTreeMap::new()) };
    /// The configuration's Redis clusters, by name.
    static CLUSTERS: RefCell<BTreeMap<String, ClusterSettings>> =
        const { RefCell::new(BTreeMap::new()) };
}

/// Registers every RESP store of the configuration with the host (once per cluster).
pub fn init_clusters(plugin: &PluginConfig) {
    for config in plugin.all() {
        let Some(read) = config.store() else {
            continue;
        };
        // The query is RESP exactly when the store's protocol is.
        let StoreQuery::Resp { upstream, .. } = &read.query else {
            continue;
        };
        let settings = ClusterSettings {
            username: read.config.username.clone().unwrap_or_default(),
            password: read.config.password.clone().unwrap_or_default(),
            timeout_ms: read.config.timeout_ms,
            ready: false,
        };
        CLUSTERS.with(|clusters| clusters.borrow_mut().insert(upstream.clone(), settings));
        init(upstream);
    }
}

fn init(upstream: &str) -> bool {
    let settings = CLUSTERS.with(|clusters| clusters.borrow().get(upstream).cloned());
    let Some(settings) = settings else {
        return false;
    };
    let status = unsafe {
        proxy_redis_init(
            upstream.as_ptr(),
            upstream.len(),
            settings.username.as_ptr(),
            settings.username.len(),
            settings.password.as_ptr(),
            settings.password.len(),
            settings.timeout_ms,
        )
    };
    if status == STATUS_OK {
        CLUSTERS.with(|clusters| {
            if let Some(settings) = clusters.borrow_mut().get_mut(upstream) {
                settings.ready = true;
            }
        });
        true
    } else {
        warn!("ai-load-balancer: Redis cluster {upstream:?} not initialised (status {status}); requests fall back to weights until it is");
        false
    }
}

/// Sends the MGET; its reply comes back through `proxy_on_redis_call_response` and goes to
/// `on_reply` with `context_id` (a request's, or the root's) current.
pub fn call(
    upstream: &str,
    command: &[u8],
    context_id: u32,
    on_reply: OnReply,
) -> Result<(), String> {
    let ready = CLUSTERS.with(|clusters| {
        clusters
            .borrow()
            .get(upstream)
            .is_some_and(|settings| settings.ready)
    });
    if !ready && !init(upstream) {
        return Err(format!("Redis cluster {upstream:?} is not initialised"));
    }
    let mut token = 0u32;
    let status = unsafe {
        proxy_redis_call(
            upstream.as_ptr(),
            upstream.len(),
            command.as_ptr(),
            command.len(),
            &mut token,
        )
    };
    if status != STATUS_OK {
        return Err(format!(
            "proxy_redis_call to {upstream:?} failed (status {status})"
        ));
    }
    let pending = Pending {
        context_id,
        on_reply,
    };
    PENDING.with(|calls| calls.borrow_mut().insert(token, pending));
    Ok(())
}

/// Drops the calls of a finished request: a late reply then finds nothing to resume.
pub fn forget_context(context_id: u32) {
    PENDING.with(|calls| {
        calls
            .borrow_mut()
            .retain(|_, call| call.context_id != context_id)
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_redis_call_response(
    context_id: u32,
    token: u32,
    status: u32,
    response_size: usize,
) {
    let pending = PENDING.with(|calls| calls.borrow_mut().remove(&token));
    let Some(pending) = pending else {
        debug!("ai-load-balancer: Redis reply for unknown token {token} (context {context_id})");
        return;
    };
    if let Err(err) = abi::set_effective_context(pending.context_id) {
        warn!(
            "ai-load-balancer: cannot resume request {}: {err}",
            pending.context_id
        );
        return;
    }
    let reply = if status == STATUS_OK {
        read_reply(response_size)
    } else {
        Err(StoreError::Unavailable(format!(
            "Redis call failed or timed out (status {status})"
        )))
    };
    (pending.on_reply)(reply);
}

fn read_reply(size: usize) -> Result<Vec<u8>, StoreError> {
    abi::buffer(BufferType::RedisCallResponse, 0, size)
        .map(Option::unwrap_or_default)
        .map_err(|err| StoreError::Unavailable(format!("cannot read the Redis reply: {err}")))
}
