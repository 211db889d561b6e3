//! One VM (one Envoy worker thread): an instance of the filter in its own `wasmtime::Store`, its
//! root context, its requests, and the calls it has out to stores.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use wasmtime::{Instance, Module, Store, WasmParams, WasmResults};

use super::calls::HttpCall;
use super::process::Process;
use super::redis::{RedisCall, RedisConnection};
use super::stream::{Action, LocalResponse, Stream};

// Driving one request through the filter, as a gateway's filter manager does.
#[path = "request_stream.rs"]
mod request_stream;
// The calls the filter makes to stores and providers, and their replies.
#[path = "calls_out.rs"]
mod calls_out;

/// The root context a VM starts with; a reload ([`Vm::reconfigure`]) adds others.
pub const ROOT_CONTEXT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// proxy-wasm level: 0 trace, 1 debug, 2 info, 3 warn, 4 error, 5 critical.
    pub level: i32,
    pub message: String,
}

/// Work the filter asked for inside a callback; Envoy defers it until the VM call returns.
#[derive(Debug)]
pub enum Deferred {
    ContinueRequest(u32),
    ContinueResponse(u32),
}

/// A reply being delivered: what the filter may read during `proxy_on_http_call_response`.
pub struct CallResponse {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
}

/// Everything one VM's host functions read and write.
pub struct VmState {
    pub process: Rc<RefCell<Process>>,
    pub index: usize,
    pub plugin_config: Vec<u8>,
    pub vm_config: Vec<u8>,
    pub root_properties: HashMap<String, Vec<u8>>,
    pub effective: u32,
    /// The root context new streams, ticks and Redis replies go to: the latest configuration.
    pub root_context: u32,
    /// Every root context created in this VM, older configurations' included.
    pub root_contexts: Vec<u32>,
    pub streams: BTreeMap<u32, Stream>,
    pub logs: Vec<LogLine>,
    pub stdio: Vec<u8>,
    pub tick_period: Option<Duration>,
    pub next_tick: Option<Duration>,
    pub http_calls: BTreeMap<u32, HttpCall>,
    pub call_response: Option<CallResponse>,
    pub redis: HashMap<String, RedisConnection>,
    pub redis_calls: BTreeMap<u32, RedisCall>,
    pub redis_reply: Option<Vec<u8>>,
    pub deferred: VecDeque<Deferred>,
    pub random: u64,
    /// `proxy_on_log` is running: Envoy's access-log phase (see `header_maps.rs`).
    pub access_log_phase: bool,
    /// The module's start function is running: Envoy refuses every proxy-wasm host call then
    /// (its "restricted_callback"), and the VM fails to load.
    pub initializing: bool,
    /// The filter's instance, once made (its memory and allocator, for host functions called
    /// through the fault wrapper).
    pub instance: Option<Instance>,
    /// The host import running now (set by the fault wrapper): what `memory`'s copies are
    /// booked to in the process's ledger.
    pub current_import: Option<String>,
}

impl VmState {
    pub fn stream_mut(&mut self) -> Option<&mut Stream> {
        self.streams.get_mut(&self.effective)
    }

    pub fn stream(&self) -> Option<&Stream> {
        self.streams.get(&self.effective)
    }
}

/// Fuel each VM starts with: more than any test runs, so fuel only counts.
const FUEL: u64 = u64::MAX / 2;

pub struct Vm {
    store: Store<VmState>,
    instance: Instance,
    next_context: u32,
    /// A worker that stopped (hung, or its thread died): it gets no more ticks.
    pub halted: bool,
    /// The VM trapped (a panic in the filter aborts, which traps): Envoy marks it failed.
    trap: Option<Trap>,
    /// The test looked at the trap ([`Vm::trap`]); else dropping the VM fails the test.
    trap_seen: Cell<bool>,
}

/// A trap in the filter, which killed its VM.
#[derive(Debug, Clone)]
pub struct Trap {
    /// The export the host was calling (`proxy_on_request_headers`, …).
    pub export: String,
    /// wasmtime's report: the trap and the wasm backtrace.
    pub message: String,
    /// The filter's last log lines (a panic's message among them), newest first.
    pub last_logs: Vec<LogLine>,
}

impl std::fmt::Display for Trap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the filter trapped in {}: {}\nlast log lines: {:#?}",
            self.export, self.message, self.last_logs
        )
    }
}

/// The filter refused its configuration (`on_configure` returned false), or trapped while
/// starting.
#[derive(Debug)]
pub struct Refused {
    pub logs: Vec<LogLine>,
    pub trap: Option<Trap>,
}

impl Refused {
    /// The error the filter logged, which is what an operator sees (and the trap, if any).
    pub fn message(&self) -> String {
        let mut lines: Vec<String> = self
            .logs
            .iter()
            .filter(|line| line.level >= 4)
            .map(|line| line.message.clone())
            .collect();
        lines.extend(self.trap.iter().map(Trap::to_string));
        lines.join("\n")
    }
}

/// The configuration as the module gets it: tests write YAML, and the module reads JSON, as
/// Istio and Higress hand it (they turn the operator's YAML into JSON). JSON, and text that is
/// not YAML either, go as written, so the module's own refusals stay testable.
fn as_a_control_plane_hands_it(config: &[u8]) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(config) else {
        return config.to_vec();
    };
    if text.trim_start().starts_with('{') {
        return config.to_vec();
    }
    match ai_load_balancer::config::yaml::parse(text) {
        Ok(serde_json::Value::Null) => Vec::new(),
        Ok(document) => document.to_string().into_bytes(),
        Err(_) => config.to_vec(),
    }
}

impl Vm {
    pub(super) fn start(
        process: Rc<RefCell<Process>>,
        module: &Module,
        index: usize,
        plugin_config: &[u8],
    ) -> Result<Vm, Refused> {
        let plugin_config = as_a_control_plane_hands_it(plugin_config);
        let state = VmState {
            process,
            index,
            plugin_config: plugin_config.clone(),
            vm_config: Vec::new(),
            root_properties: HashMap::from([
                ("plugin_root_id".to_string(), b"ai-load-balancer".to_vec()),
                ("plugin_name".to_string(), b"ai-load-balancer".to_vec()),
                ("plugin_vm_id".to_string(), b"".to_vec()),
            ]),
            effective: ROOT_CONTEXT,
            root_context: ROOT_CONTEXT,
            root_contexts: vec![ROOT_CONTEXT],
            streams: BTreeMap::new(),
            logs: Vec::new(),
            stdio: Vec::new(),
            tick_period: None,
            next_tick: None,
            http_calls: BTreeMap::new(),
            call_response: None,
            redis: HashMap::new(),
            redis_calls: BTreeMap::new(),
            redis_reply: None,
            deferred: VecDeque::new(),
            random: 0x2545_f491_4f6c_dd1d ^ (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            access_log_phase: false,
            initializing: false,
            instance: None,
            current_import: None,
        };
        let mut store = Store::new(module.engine(), state);
        store
            .set_fuel(FUEL)
            .unwrap_or_else(|err| panic!("setting fuel: {err:?}"));
        let linker = super::abi::linker(module, &mut store);
        let instance = linker
            .instantiate(&mut store, module)
            .unwrap_or_else(|err| panic!("instantiating the filter: {err:?}"));
        store.data_mut().instance = Some(instance);
        let mut vm = Vm {
            store,
            instance,
            next_context: ROOT_CONTEXT + 1,
            halted: false,
            trap: None,
            trap_seen: Cell::new(false),
        };
        for start in ["_initialize", "_start"] {
            if vm.instance.get_func(&mut vm.store, start).is_some() {
                vm.store.data_mut().initializing = true;
                vm.call::<(), ()>(start, ());
                vm.store.data_mut().initializing = false;
                break;
            }
        }
        vm.call::<(i32, i32), ()>("proxy_on_context_create", (ROOT_CONTEXT as i32, 0));
        let vm_config = vm.store.data().vm_config.len() as i32;
        let started: Option<i32> = vm.call("proxy_on_vm_start", (ROOT_CONTEXT as i32, vm_config));
        if vm.trap.is_none() {
            assert_eq!(
                started,
                Some(1),
                "proxy_on_vm_start failed: {:?}",
                vm.logs()
            );
        }
        let plugin_config = plugin_config.len() as i32;
        let configured: Option<i32> =
            vm.call("proxy_on_configure", (ROOT_CONTEXT as i32, plugin_config));
        vm.settle();
        if configured.unwrap_or(0) == 0 {
            return Err(Refused {
                logs: vm.store.data().logs.clone(),
                trap: vm.trap().cloned(),
            });
        }
        Ok(vm)
    }

    /// Calls an export of the filter with `context` current (`None`: the VM is dead, or died
    /// in this call).
    fn call_in<P: WasmParams, R: WasmResults>(
        &mut self,
        context: u32,
        name: &str,
        args: P,
    ) -> Option<R> {
        self.store.data_mut().effective = context;
        self.call(name, args)
    }

    /// A stream's HTTP callback (`proxy_on_request_headers`, …) and what it answered. On a
    /// failed VM, or one that traps now, Envoy (fail closed, its default) fails the stream: a
    /// local 503 (`wasm_fail_stream`), and the filter chain stops there.
    fn callback<P: WasmParams>(&mut self, id: u32, name: &str, args: P) -> Action {
        let answer: Option<i32> = self.call_in(id, name, args);
        match answer {
            Some(answer) => Action::from_abi(answer),
            None => {
                let stream = self.stream_mut(id);
                if stream.local_response.is_none() {
                    stream.local_response = Some(LocalResponse {
                        status: 503,
                        details: "wasm_fail_stream".to_string(),
                        body: Vec::new(),
                        headers: Vec::new(),
                    });
                }
                Action::Pause
            }
        }
    }

    /// Calls an export; a trap marks the VM failed (as Envoy does) and is printed with the
    /// filter's last log lines. A failed VM is not called again. An import the host lacks
    /// fails the test at once: that is the host's gap, not the filter's.
    fn call<P: WasmParams, R: WasmResults>(&mut self, name: &str, args: P) -> Option<R> {
        if self.trap.is_some() {
            return None;
        }
        let func = self
            .instance
            .get_typed_func::<P, R>(&mut self.store, name)
            .unwrap_or_else(|err| panic!("the filter has no usable export {name}: {err}"));
        match func.call(&mut self.store, args) {
            Ok(result) => Some(result),
            Err(err) => {
                let message = format!("{err:?}");
                let last_logs: Vec<LogLine> = self
                    .store
                    .data()
                    .logs
                    .iter()
                    .rev()
                    .take(10)
                    .cloned()
                    .collect();
                let trap = Trap {
                    export: name.to_string(),
                    message,
                    last_logs,
                };
                if trap.message.contains("the test host does not implement") {
                    panic!("{trap}");
                }
                eprintln!("[vm{}] VM failed: {trap}", self.store.data().index);
                self.trap = Some(trap);
                None
            }
        }
    }

    /// The trap that killed this VM, if it trapped; looking is what lets the test end quietly
    /// with a dead VM.
    pub fn trap(&self) -> Option<&Trap> {
        self.trap_seen.set(true);
        self.trap.as_ref()
    }

    /// Fails the test if the VM trapped, naming the trap and the filter's last log lines.
    pub fn assert_survived(&self) {
        if let Some(trap) = self.trap() {
            panic!("the VM did not survive: {trap}");
        }
    }

    fn has_export(&mut self, name: &str) -> bool {
        self.instance.get_func(&mut self.store, name).is_some()
    }

    /// Wasm instructions the filter has run in this VM so far (wasmtime's fuel: one unit per
    /// instruction, nearly; the same count on every machine).
    pub fn instructions(&self) -> u64 {
        FUEL - self.store.get_fuel().unwrap_or(FUEL)
    }

    pub fn state(&self) -> &VmState {
        self.store.data()
    }

    pub fn logs(&self) -> &[LogLine] {
        &self.store.data().logs
    }

    /// Whether the filter logged a line containing `text` at `level` or above.
    pub fn logged(&self, level: i32, text: &str) -> bool {
        self.logs()
            .iter()
            .any(|line| line.level >= level && line.message.contains(text))
    }

    /// The root context of the VM's current configuration.
    pub fn root_context(&self) -> u32 {
        self.store.data().root_context
    }

    /// A configuration update, as Envoy applies one to a running VM: a new root context in the
    /// same VM (`proxy_on_context_create` with no parent, then `proxy_on_configure` with
    /// `config`). Streams opened from now on, ticks and Redis replies go to it; streams opened
    /// before stay with their root context and finish there. Returns the new root context;
    /// `Err` (with the lines the filter logged) when the filter refuses the configuration, and
    /// then the VM keeps its current one, as Envoy does.
    pub fn reconfigure(&mut self, config: &str) -> Result<u32, Refused> {
        let root = self.next_context;
        self.next_context += 1;
        let logged_before = self.logs().len();
        let config = as_a_control_plane_hands_it(config.as_bytes());
        let state = self.store.data_mut();
        state.plugin_config = config.clone();
        state.root_contexts.push(root);
        self.call_in::<(i32, i32), ()>(root, "proxy_on_context_create", (root as i32, 0));
        let configured: Option<i32> = self.call_in(
            root,
            "proxy_on_configure",
            (root as i32, config.len() as i32),
        );
        self.settle();
        if configured.unwrap_or(0) == 0 {
            return Err(Refused {
                logs: self.logs()[logged_before..].to_vec(),
                trap: self.trap().cloned(),
            });
        }
        self.store.data_mut().root_context = root;
        Ok(root)
    }

    /// Runs what the filter deferred (resumes), which may call back into the filter.
    fn settle(&mut self) {
        while let Some(deferred) = self.store.data_mut().deferred.pop_front() {
            match deferred {
                Deferred::ContinueRequest(id) => self.resume_request(id),
                Deferred::ContinueResponse(id) => {
                    let stream = self.stream_mut(id);
                    let body = std::mem::take(&mut stream.response_body_buffer);
                    stream.downstream_body.extend_from_slice(&body);
                }
            }
        }
    }

    // ---- time -----------------------------------------------------------------------------

    pub(super) fn next_tick(&self) -> Option<Duration> {
        // Envoy ticks no failed VM (`ContextBase::onTick` checks `isFailed`).
        if self.halted || self.trap.is_some() {
            return None;
        }
        self.store.data().next_tick
    }

    /// One tick now, on the current configuration's root context (`proxy_on_tick`), whether or
    /// not one is due; the next falls a period later. [`super::Host::advance`] ticks every VM
    /// as its ticks fall due; this ticks one VM alone, as when the others' timers lag.
    pub fn tick(&mut self) {
        let state = self.store.data_mut();
        let (now, early) = {
            let process = state.process.borrow();
            (process.elapsed(), process.ticks_early)
        };
        state.next_tick = state
            .tick_period
            .map(|period| now + period.saturating_sub(early).max(Duration::from_millis(1)));
        let root = state.root_context;
        self.call_in::<(i32,), ()>(root, "proxy_on_tick", (root as i32,));
        self.settle();
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let Some(trap) = &self.trap {
            if !self.trap_seen.get() && !std::thread::panicking() {
                panic!(
                    "VM {} died and the test never looked: {trap}",
                    self.store.data().index
                );
            }
        }
    }
}
