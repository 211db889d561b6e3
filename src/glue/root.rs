//! The root context: parses and validates the configuration once per `on_configure`, hands
//! each request a filter sharing it, and runs the background work on the tick.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use log::{debug, error, info, warn};

use super::abi::{self, BufferType};
use super::filter::{call_reply, ReplyHeaders};
use super::metrics::Metrics;
use super::probe::{prune_removed_providers, Prober};
use super::waits::Waits;
use crate::background::reads::BackgroundReads;
use crate::background::schedule::{tick_period, Schedule};
use crate::config::{Build, LoadSource, PluginConfig};
use crate::flow::{Stat, Timing};
use crate::inflight;
use crate::rng::Rng;
use crate::store::StoreOutages;

/// What every request of one plugin configuration shares.
pub struct Shared {
    pub plugin: Rc<PluginConfig>,
    pub metrics: RefCell<Metrics>,
    pub rng: RefCell<Rng>,
    pub background: RefCell<BackgroundReads>,
    pub prober: RefCell<Prober>,
    /// Whether each configuration's store is known down, as this worker has seen it.
    pub store_outages: RefCell<StoreOutages>,
    /// This VM's in-flight slot beats on this schedule (`None`: no configuration counts
    /// requests in flight).
    pub heartbeat: RefCell<Option<Schedule>>,
    /// This VM's identity: its in-flight slot and its leases.
    pub worker_id: u64,
    /// The tick the periodic work wants (zero: none).
    pub tick_period: Duration,
    /// Requests the tick comes back to.
    pub waits: RefCell<Waits>,
    /// Calls that need no reply (Redis in-flight counts) are made from the root context, and
    /// the tick makes it current again after resuming requests.
    pub root_context_id: u32,
    /// This worker's own in-flight counts kept in Redis, re-asserted on the tick.
    #[cfg(feature = "higress")]
    pub redis_in_flight: RefCell<RedisInFlight>,
}

/// This worker's in-flight counts per (upstream, heartbeats key, provider key).
#[cfg(feature = "higress")]
#[derive(Default)]
pub struct RedisInFlight {
    pub counts: Vec<(String, String, String, u64)>,
}

#[cfg(feature = "higress")]
impl RedisInFlight {
    pub fn add(&mut self, upstream: &str, heartbeats: &str, key: &str, delta: i64) {
        match self
            .counts
            .iter_mut()
            .find(|(u, _, k, _)| u == upstream && k == key)
        {
            Some(entry) => entry.3 = entry.3.saturating_add_signed(delta),
            None => self.counts.push((
                upstream.to_string(),
                heartbeats.to_string(),
                key.to_string(),
                0u64.saturating_add_signed(delta),
            )),
        }
    }
}

impl Shared {
    pub fn count(&self, stat: Stat) {
        self.count_by(stat, 1);
    }

    pub fn count_by(&self, stat: Stat, by: u64) {
        if let Ok(mut metrics) = self.metrics.try_borrow_mut() {
            metrics.increment(stat, by);
        }
    }

    /// A histogram sample.
    pub fn record(&self, timing: Timing, provider: &str, value: u64) {
        if let Ok(mut metrics) = self.metrics.try_borrow_mut() {
            metrics.record(timing, provider, value);
        }
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
}

impl Root {
    /// The configuration every request under this root shares (`None` until one is valid).
    pub fn shared(&self) -> Option<Rc<Shared>> {
        self.shared.clone()
    }

    pub fn on_http_call_response(&mut self, token_id: u32, num_headers: usize, body_size: usize) {
        let Some(shared) = &self.shared else { return };
        let reply = call_reply(num_headers, body_size, ReplyHeaders::Status);
        if let Ok(mut prober) = shared.prober.try_borrow_mut() {
            let mut count = |stat| shared.count(stat);
            let now_ms = super::now_ms();
            if prober.on_reply(&shared.plugin, token_id, &reply, now_ms, &mut count) {
                return;
            }
        }
        super::background::on_http_reply(shared, token_id, reply.into_store_reply());
    }
}

impl Root {
    pub fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        // Follow the host's log level so that debug lines cost nothing when they are not shown.
        abi::follow_host_level();
        let bytes = match abi::buffer(
            BufferType::PluginConfiguration,
            0,
            plugin_configuration_size,
        ) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(err) => {
                error!("ai-load-balancer: cannot read the plugin configuration: {err}");
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
        let worker_id = vm_worker_id(&mut rng);
        let background = BackgroundReads::new(&plugin);
        let prober = Prober::new(&plugin, worker_id);
        prune_removed_providers(&plugin);
        // In-flight slots need a heartbeat from every worker, once a second.
        let heartbeat = counts_in_flight(&plugin).then(|| Schedule::new(inflight::HEARTBEAT_MS, 0));
        let intervals = (background.intervals_ms())
            .chain(prober.interval_ms())
            .chain(heartbeat.as_ref().map(Schedule::interval_ms));
        let period = tick_period(intervals).unwrap_or(Duration::ZERO);
        set_tick(period);
        self.shared = Some(Rc::new(Shared {
            plugin: Rc::new(plugin),
            metrics: RefCell::new(Metrics::default()),
            rng: RefCell::new(rng),
            background: RefCell::new(background),
            prober: RefCell::new(prober),
            store_outages: RefCell::new(StoreOutages::default()),
            heartbeat: RefCell::new(heartbeat),
            worker_id,
            tick_period: period,
            waits: RefCell::new(Waits::new(period)),
            root_context_id: self.context_id,
            #[cfg(feature = "higress")]
            redis_in_flight: RefCell::new(RedisInFlight::default()),
        }));
        true
    }

    pub fn on_tick(&mut self) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let now_ms = super::now_ms();
        let Ok(tick_ms) = shared.waits.try_borrow().map(|waits| waits.tick_ms()) else {
            return;
        };
        super::background::on_tick(&shared, now_ms, tick_ms, self.context_id);
        if let Ok(mut prober) = shared.prober.try_borrow_mut() {
            prober.on_tick(&shared.plugin, now_ms, tick_ms, self.context_id);
        }
        let beat = shared
            .heartbeat
            .try_borrow_mut()
            .is_ok_and(|mut heartbeat| {
                heartbeat
                    .as_mut()
                    .is_some_and(|schedule| schedule.due(now_ms, tick_ms))
            });
        if beat {
            heartbeat(shared.worker_id, now_ms);
            #[cfg(feature = "higress")]
            reassert_redis_in_flight(&shared);
        }
        super::waits::on_tick(&shared);
    }
}

thread_local! {
    /// This VM's identity, kept across configuration updates (each brings a new root context
    /// to the same VM): a reloaded worker keeps its leases and its in-flight slot.
    static VM_WORKER_ID: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn vm_worker_id(rng: &mut Rng) -> u64 {
    VM_WORKER_ID.with(|id| {
        if id.get() == 0 {
            id.set(rng.next_u64().max(1));
        }
        id.get()
    })
}

/// Whether some configuration counts requests in flight (its workers beat on the tick).
fn counts_in_flight(plugin: &PluginConfig) -> bool {
    for config in plugin.all() {
        if matches!(config.loads, LoadSource::InFlight(_)) {
            return true;
        }
    }
    false
}

/// Refreshes this worker's in-flight slot so that its counts keep counting (a slot that stops
/// beating is a dead worker's, and is ignored).
fn heartbeat(worker_id: u64, now_ms: u64) {
    let key = inflight::slot_key(worker_id);
    let Ok((current, cas)) = abi::shared_data(&key) else {
        return;
    };
    let Some(mut slot) = current.and_then(|bytes| inflight::Slot::decode(&bytes).ok()) else {
        return; // no request counted yet
    };
    slot.heartbeat_ms = now_ms;
    if let Err(err) = abi::set_shared_data(&key, &slot.encode(), cas) {
        debug!("ai-load-balancer: in-flight heartbeat deferred: {err}");
    }
}

/// Stamps this worker alive in Redis and re-asserts its counts there, which repairs an increment
/// or decrement that was lost on the way.
#[cfg(feature = "higress")]
fn reassert_redis_in_flight(shared: &Shared) {
    use crate::inflight::replicas::{assert_command, beat_command};
    let Ok(book) = shared.redis_in_flight.try_borrow() else {
        return;
    };
    let mut beaten: Vec<(&str, &str)> = Vec::new();
    for (upstream, heartbeats, key, count) in &book.counts {
        if !beaten.contains(&(upstream.as_str(), heartbeats.as_str())) {
            beaten.push((upstream, heartbeats));
            let beat = beat_command(heartbeats, shared.worker_id);
            fire_and_forget(shared, upstream, &beat);
        }
        fire_and_forget(
            shared,
            upstream,
            &assert_command(key, shared.worker_id, *count),
        );
    }
}

/// A Redis call whose reply nobody waits for.
#[cfg(feature = "higress")]
pub fn fire_and_forget(shared: &Shared, upstream: &str, command: &[u8]) {
    let ignore = Box::new(|reply: Result<Vec<u8>, crate::store::StoreError>| {
        if let Err(err) = reply {
            debug!("ai-load-balancer: in-flight count not recorded in Redis: {err}");
        }
    });
    if let Err(why) = super::redis::call(upstream, command, shared.root_context_id, ignore) {
        debug!("ai-load-balancer: in-flight count not sent to Redis: {why}");
    }
}

pub fn set_tick(period: Duration) {
    if let Err(err) = abi::set_tick_period(period) {
        warn!("ai-load-balancer: cannot set the tick: {err}");
    }
}
