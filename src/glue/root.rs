//! The root context: parses and validates the configuration once per `on_configure`, hands
//! each request a filter sharing it, and runs background refresh on the tick.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use log::{error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType};

use super::filter::{webdis_reply, Filter};
use super::host::dispatch_webdis;
use super::metrics::Metrics;
use super::refresh::{Read, Refresher};
use crate::config::{Build, PluginConfig};
use crate::flow::Stat;
use crate::rng::Rng;
use crate::store::{StoreError, StoreHealthBook, StoreQuery};

/// What every request of one plugin configuration shares.
pub struct Shared {
    pub plugin: Rc<PluginConfig>,
    pub metrics: RefCell<Metrics>,
    pub rng: RefCell<Rng>,
    pub refresher: RefCell<Refresher>,
    /// Whether each configuration's store is known down, as this worker has seen it.
    pub store_health: RefCell<StoreHealthBook>,
}

impl Shared {
    pub fn count(&self, stat: Stat) {
        if let Ok(mut metrics) = self.metrics.try_borrow_mut() {
            metrics.increment(&stat.name());
        }
    }

    /// Hands a background read's reply to the refresher and counts the outcome.
    fn refreshed(&self, store: usize, reply: Result<Vec<u8>, StoreError>) {
        let published = match self.refresher.try_borrow_mut() {
            Ok(mut refresher) => refresher.on_reply(store, reply),
            Err(_) => false,
        };
        self.count(if published {
            Stat::RefreshPublished
        } else {
            Stat::RefreshFailed
        });
    }
}

pub struct Root {
    /// Higress hands Redis replies back with this context made current again.
    #[cfg_attr(not(feature = "higress"), allow(dead_code))]
    context_id: u32,
    shared: Option<Rc<Shared>>,
}

impl Root {
    pub fn new(context_id: u32) -> Self {
        Self {
            context_id,
            shared: None,
        }
    }

    fn send(&self, shared: &Rc<Shared>, read: Read) {
        let sent = match &read.query {
            StoreQuery::Webdis { .. } => {
                dispatch_webdis(&read.query, read.timeout_ms).map(|token| {
                    if let Ok(mut refresher) = shared.refresher.try_borrow_mut() {
                        refresher.sent_webdis(token, read.store);
                    }
                })
            }
            #[cfg(feature = "higress")]
            StoreQuery::Resp { upstream, command } => {
                let shared_weak = Rc::downgrade(shared);
                let store = read.store;
                let on_reply = move |reply| {
                    if let Some(shared) = shared_weak.upgrade() {
                        shared.refreshed(store, reply);
                    }
                };
                super::redis::call(upstream, command, self.context_id, Box::new(on_reply))
            }
            #[cfg(not(feature = "higress"))]
            StoreQuery::Resp { .. } => Err("RESP needs the Higress build".into()),
        };
        if let Err(why) = sent {
            if let Ok(mut refresher) = shared.refresher.try_borrow_mut() {
                refresher.not_sent(read.store, &why);
            }
            shared.count(Stat::RefreshFailed);
        }
    }
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let Some(shared) = &self.shared else { return };
        let store = match shared.refresher.try_borrow_mut() {
            Ok(mut refresher) => refresher.webdis_store(token_id),
            Err(_) => None,
        };
        if let Some(store) = store {
            shared.refreshed(store, webdis_reply(num_headers, body_size));
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        // Follow the host's log level so that debug lines cost nothing when they are not shown.
        if let Ok(level) = hostcalls::get_log_level() {
            proxy_wasm::set_log_level(level);
        }
        let bytes = match hostcalls::get_buffer(
            BufferType::PluginConfiguration,
            0,
            plugin_configuration_size,
        ) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(status) => {
                error!("ai-load-balancer: cannot read the plugin configuration: {status:?}");
                return false;
            }
        };
        let plugin = match PluginConfig::parse(&bytes, Build::current()) {
            Ok(plugin) => plugin,
            Err(err) => {
                error!("ai-load-balancer: invalid configuration: {err}");
                return false;
            }
        };
        #[cfg(feature = "higress")]
        super::redis::init_clusters(&plugin);
        info!(
            "ai-load-balancer: configured ({} rules, global configuration {})",
            plugin.rules.len(),
            if plugin.global.is_some() {
                "set"
            } else {
                "absent"
            }
        );
        let mut rng = Rng::from_entropy(super::now_ms() ^ 0x9e37_79b9);
        let refresher = Refresher::new(&plugin, rng.next_u64());
        let period = refresher.tick_period().unwrap_or(Duration::ZERO);
        if let Err(status) = hostcalls::set_tick_period(period) {
            warn!("ai-load-balancer: cannot set the tick for background refresh: {status:?}");
        }
        self.shared = Some(Rc::new(Shared {
            plugin: Rc::new(plugin),
            metrics: RefCell::new(Metrics::default()),
            rng: RefCell::new(rng),
            refresher: RefCell::new(refresher),
            store_health: RefCell::new(StoreHealthBook::default()),
        }));
        true
    }

    fn on_tick(&mut self) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let reads = match shared.refresher.try_borrow_mut() {
            Ok(mut refresher) => refresher.due_reads(super::now_ms()),
            Err(_) => return,
        };
        for read in reads {
            self.send(&shared, read);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Filter::new(context_id, self.shared.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
