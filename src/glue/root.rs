//! The root context: parses and validates the configuration once per `on_configure`, and hands
//! each request a filter sharing it.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use log::{error, info};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType};

use super::filter::Filter;
use super::metrics::Metrics;
use crate::config::{Build, PluginConfig};
use crate::rng::Rng;

/// What every request of one plugin configuration shares.
pub struct Shared {
    pub plugin: Rc<PluginConfig>,
    pub metrics: RefCell<Metrics>,
    pub rng: RefCell<Rng>,
}

#[derive(Default)]
pub struct Root {
    shared: Option<Rc<Shared>>,
}

impl Context for Root {}

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
        let seed = hostcalls::get_current_time()
            .ok()
            .and_then(|now| now.duration_since(UNIX_EPOCH).ok())
            .map_or(0x9e37_79b9, |since| since.as_nanos() as u64);
        self.shared = Some(Rc::new(Shared {
            plugin: Rc::new(plugin),
            metrics: RefCell::new(Metrics::default()),
            rng: RefCell::new(Rng::from_entropy(seed)),
        }));
        true
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Filter::new(context_id, self.shared.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
