//! A proxy-wasm host for tests, built on `wasmtime`: it runs the built filter (`dist/*.wasm`) as
//! Envoy or Higress would, and puts in the test's hands what a real gateway cannot steer: the
//! order of body and store reply, several VMs sharing one process, the clock and its ticks.
//! See `tests/README.md` for how to write a test with it.
//!
//! ```ignore
//! let redis = RedisServer::start();
//! redis.set("ai_metric:minimax_1", "90");
//! let mut host = Host::new(Build::Higress).cluster("outbound|6379||redis-svc", Some(redis.address));
//! let vm = host.start_vm(CONFIG).expect("configured");
//! let vm = host.vm(vm);
//! let request = vm.request(&[(":method", "POST"), (":path", "/v1/chat/completions")], &[]);
//! assert_eq!(vm.send_headers(request, false), Action::Pause);
//! vm.send_body(request, br#"{"model":"auto"}"#, true);
//! vm.deliver_store_replies();
//! assert_eq!(vm.stream(request).upstream_header("x-selected-provider"), Some("qianwen"));
//! ```
#![allow(
    dead_code,
    unused_imports,
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_used
)]

mod abi;
mod calls;
mod faults;
mod header_maps;
mod ledger;
mod memory;
mod module;
mod outbound;
mod process;
mod redis;
mod servers;
mod stream;
mod vm;
mod wasi;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use wasmtime::Module;

pub use calls::{HttpCall, HttpReply};
pub use faults::{Answer, BufferType, Errno, Fault, MapType, Status, Times};
pub use ledger::{Ledger, Tally};
pub use module::{filter as filter_module, from_wat, module_path, Build};
pub use process::{BodyDelivery, Flavor};
pub use redis::{Outcome, RedisCall, STATUS_NETWORK_ERROR, STATUS_TIMEOUT};
pub use servers::{RedisServer, Webdis};
pub use stream::{Action, HeadersState, LocalResponse, Stream, TrailersState, Upstream};
pub use vm::{LogLine, Refused, Trap, Vm};

use process::Process;

/// The cluster the seed's `redis: {service_name: redis-svc, service_port: 6379}` names on Higress.
pub const HIGRESS_REDIS_CLUSTER: &str = "outbound|6379||redis-svc";

/// A host for `build` that reads `redis` the way that build does: Higress's Redis calls to
/// [`HIGRESS_REDIS_CLUSTER`], or (Envoy) a Webdis started here as cluster `webdis`, which the
/// caller keeps alive. [`redis_section`] is the plugin configuration that matches.
pub fn reading(build: Build, redis: &RedisServer) -> (Host, Option<Webdis>) {
    match build {
        Build::Higress => {
            let host = Host::new(build).cluster(HIGRESS_REDIS_CLUSTER, Some(redis.address));
            (host, None)
        }
        Build::Envoy => {
            let webdis = Webdis::start(redis);
            let host = Host::new(build).cluster("webdis", Some(webdis.address));
            (host, Some(webdis))
        }
    }
}

/// The plugin configuration's `redis` section for a host made by [`reading`].
pub fn redis_section(build: Build) -> serde_json::Value {
    match build {
        Build::Higress => serde_json::json!({"service_name": "redis-svc", "service_port": 6379}),
        Build::Envoy => serde_json::json!({"cluster": "webdis", "protocol": "webdis"}),
    }
}

/// Runs each scenario `fn name(build: Build)` as two tests, `higress::name` and `envoy::name`;
/// attributes before a name (`#[ignore = "why"]`) go on both.
#[allow(unused_macros)] // not every test binary uses it
macro_rules! both_builds {
    ($($(#[$attribute:meta])* $scenario:ident),* $(,)?) => {
        mod higress {
            $(#[test] $(#[$attribute])* fn $scenario() {
                super::$scenario($crate::host::Build::Higress)
            })*
        }
        mod envoy {
            $(#[test] $(#[$attribute])* fn $scenario() {
                super::$scenario($crate::host::Build::Envoy)
            })*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use both_builds;

/// One gateway process: its VMs (workers) share the clock, shared data, metrics and the
/// clusters the test declared.
pub struct Host {
    process: Rc<RefCell<Process>>,
    module: Module,
    vms: Vec<Vm>,
}

impl Host {
    /// The filter's `build`, hosted as the gateway it is built for (Envoy, or Higress).
    pub fn new(build: Build) -> Self {
        let flavor = match build {
            Build::Envoy => Flavor::Envoy,
            Build::Higress => Flavor::Higress,
        };
        Self::with_module(module::filter(build), flavor)
    }

    /// Any module (a WAT test module, say) hosted as `flavor`.
    pub fn with_module(module: Module, flavor: Flavor) -> Self {
        Self {
            process: Rc::new(RefCell::new(Process::new(flavor))),
            module,
            vms: Vec::new(),
        }
    }

    pub fn body_delivery(self, delivery: BodyDelivery) -> Self {
        self.process.borrow_mut().body_delivery = delivery;
        self
    }

    /// The log level the host reports to the filter (0 trace … 5 critical; Envoy's default is 2).
    pub fn log_level(self, level: i32) -> Self {
        self.process.borrow_mut().log_level = level;
        self
    }

    /// Each tick falls `by` short of its period after the one before, as Envoy's do at times:
    /// it re-arms the timer after the tick from the event loop's cached time, earlier than the
    /// clock the filter read during the tick.
    pub fn ticks_early(self, by: Duration) -> Self {
        self.process.borrow_mut().ticks_early = by;
        self
    }

    /// A cluster the gateway knows, and the real server behind it (`None`: the test answers
    /// calls to it by hand). Calls to any other cluster are refused, as Envoy refuses them.
    pub fn cluster(self, name: &str, address: Option<SocketAddr>) -> Self {
        self.process
            .borrow_mut()
            .clusters
            .insert(name.to_string(), address);
        self
    }

    /// Starts one more VM with `config` as its plugin configuration and returns its index;
    /// `Err` carries the filter's logs when it refuses the configuration.
    pub fn start_vm(&mut self, config: &str) -> Result<usize, Refused> {
        let index = self.vms.len();
        let vm = Vm::start(self.process.clone(), &self.module, index, config.as_bytes())?;
        self.vms.push(vm);
        Ok(index)
    }

    pub fn vm(&mut self, index: usize) -> &mut Vm {
        &mut self.vms[index]
    }

    /// Moves the clock on, firing each VM's ticks in time order as they fall due.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now() + by;
        loop {
            let due = self
                .vms
                .iter()
                .enumerate()
                .filter_map(|(index, vm)| vm.next_tick().map(|at| (at, index)))
                .filter(|(at, _)| *at <= target)
                .min();
            let Some((at, index)) = due else { break };
            self.process.borrow_mut().set_elapsed(at);
            self.vms[index].tick();
        }
        self.process.borrow_mut().set_elapsed(target);
    }

    /// Time since the host started, on its own clock.
    pub fn now(&self) -> Duration {
        self.process.borrow().elapsed()
    }

    /// The wall clock the filter reads, in milliseconds since the Unix epoch (what it writes
    /// into leases and health records).
    pub fn wall_clock_ms(&self) -> u64 {
        self.process.borrow().realtime_ns() / 1_000_000
    }

    /// A counter's or gauge's value, 0 when the filter never defined it.
    pub fn metric(&self, name: &str) -> u64 {
        self.process
            .borrow()
            .metrics
            .by_name(name)
            .map_or(0, |metric| metric.value)
    }

    /// A histogram's samples in the order recorded (none when the filter never defined it).
    pub fn samples(&self, name: &str) -> Vec<u64> {
        self.process
            .borrow()
            .metrics
            .by_name(name)
            .map_or(Vec::new(), |metric| metric.samples.clone())
    }

    /// Every metric the filter defined, with its value.
    pub fn metrics(&self) -> Vec<(String, u64)> {
        self.process
            .borrow()
            .metrics
            .all()
            .map(|metric| (metric.name.clone(), metric.value))
            .collect()
    }

    pub fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.process.borrow().shared_data.get(key)
    }

    /// Makes the next `writes` compare-and-swap writes to `key` (by any VM) fail with
    /// `CasMismatch`, as another worker's write in between would; 0 ends the conflicts.
    pub fn conflict_on(&self, key: &str, writes: u32) {
        self.process
            .borrow_mut()
            .shared_data
            .conflict_on(key, writes);
    }

    /// Makes every call to the host function `call` (any VM) answer `answer` instead of doing
    /// its work, until [`Host::clear_faults`]: `host.fail_call("proxy_get_property",
    /// Status::InternalFailure)`. [`Host::inject`] takes a narrower [`Fault`] (once, N times,
    /// one header map or buffer type).
    pub fn fail_call(&self, call: &str, answer: impl Into<Answer>) {
        self.inject(Fault::new(call, answer));
    }

    pub fn inject(&self, fault: Fault) {
        self.process.borrow_mut().faults.arm(fault);
    }

    /// Disarms every injected fault (the call counts stay).
    pub fn clear_faults(&self) {
        self.process.borrow_mut().faults.clear();
    }

    /// How many times the filter called the host function `call`, all VMs together.
    pub fn calls(&self, call: &str) -> u32 {
        self.process.borrow().ledger.calls(call)
    }

    /// Every host call made so far and the bytes each copied across the ABI; take one before
    /// and one after, and [`Ledger::since`] gives what happened in between.
    pub fn ledger(&self) -> Ledger {
        self.process.borrow().ledger.clone()
    }

    /// How many of those calls an injected fault answered.
    pub fn injected(&self, call: &str) -> u32 {
        self.process.borrow().faults.answered(call)
    }

    /// The host functions the module imports, as `module.name` (`env.proxy_log`, …).
    pub fn imports(&self) -> Vec<String> {
        self.module
            .imports()
            .map(|import| format!("{}.{}", import.module(), import.name()))
            .collect()
    }

    /// Conflicts [`Host::conflict_on`] set on `key` that no write has met yet.
    pub fn conflicts_left(&self, key: &str) -> u32 {
        self.process.borrow().shared_data.conflicts_left(key)
    }
}
