//! One VM (one Envoy worker thread): an instance of the filter in its own `wasmtime::Store`, its
//! root context, its requests, and the calls it has out to stores.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use wasmtime::{Instance, Module, Store, WasmParams, WasmResults};

use super::calls::{HttpCall, HttpReply};
use super::process::Process;
use super::redis::{RedisCall, RedisConnection};
use super::stream::{Action, Stream};

// Driving one request through the filter, as a gateway's filter manager does.
#[path = "request_stream.rs"]
mod request_stream;

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
}

impl VmState {
    pub fn stream_mut(&mut self) -> Option<&mut Stream> {
        self.streams.get_mut(&self.effective)
    }

    pub fn stream(&self) -> Option<&Stream> {
        self.streams.get(&self.effective)
    }
}

pub struct Vm {
    store: Store<VmState>,
    instance: Instance,
    next_context: u32,
    /// A worker that stopped (hung, or its thread died): it gets no more ticks.
    pub halted: bool,
}

/// The filter refused its configuration: `on_configure` returned false.
#[derive(Debug)]
pub struct Refused {
    pub logs: Vec<LogLine>,
}

impl Refused {
    /// The error the filter logged, which is what an operator sees.
    pub fn message(&self) -> String {
        self.logs
            .iter()
            .filter(|line| line.level >= 4)
            .map(|line| line.message.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Vm {
    pub(super) fn start(
        process: Rc<RefCell<Process>>,
        module: &Module,
        index: usize,
        plugin_config: &[u8],
    ) -> Result<Vm, Refused> {
        let state = VmState {
            process,
            index,
            plugin_config: plugin_config.to_vec(),
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
        };
        let mut store = Store::new(module.engine(), state);
        let linker = super::abi::linker(module, &mut store);
        let instance = linker
            .instantiate(&mut store, module)
            .unwrap_or_else(|err| panic!("instantiating the filter: {err:?}"));
        let mut vm = Vm {
            store,
            instance,
            next_context: ROOT_CONTEXT + 1,
            halted: false,
        };
        for start in ["_initialize", "_start"] {
            if vm.instance.get_func(&mut vm.store, start).is_some() {
                vm.call::<(), ()>(start, ());
                break;
            }
        }
        vm.call::<(i32, i32), ()>("proxy_on_context_create", (ROOT_CONTEXT as i32, 0));
        let vm_config = vm.store.data().vm_config.len() as i32;
        let started: i32 = vm.call("proxy_on_vm_start", (ROOT_CONTEXT as i32, vm_config));
        assert_eq!(started, 1, "proxy_on_vm_start failed: {:?}", vm.logs());
        let plugin_config = plugin_config.len() as i32;
        let configured: i32 = vm.call("proxy_on_configure", (ROOT_CONTEXT as i32, plugin_config));
        vm.settle();
        if configured == 0 {
            return Err(Refused {
                logs: vm.store.data().logs.clone(),
            });
        }
        Ok(vm)
    }

    /// Calls an export of the filter with `context` current; a trap fails the test loudly with
    /// the filter's last log lines.
    fn call_in<P: WasmParams, R: WasmResults>(&mut self, context: u32, name: &str, args: P) -> R {
        self.store.data_mut().effective = context;
        self.call(name, args)
    }

    fn call<P: WasmParams, R: WasmResults>(&mut self, name: &str, args: P) -> R {
        let func = self
            .instance
            .get_typed_func::<P, R>(&mut self.store, name)
            .unwrap_or_else(|err| panic!("the filter has no usable export {name}: {err}"));
        match func.call(&mut self.store, args) {
            Ok(result) => result,
            Err(err) => panic!(
                "the filter trapped in {name}: {err:?}\nlast log lines: {:#?}",
                self.store
                    .data()
                    .logs
                    .iter()
                    .rev()
                    .take(10)
                    .collect::<Vec<_>>()
            ),
        }
    }

    fn has_export(&mut self, name: &str) -> bool {
        self.instance.get_func(&mut self.store, name).is_some()
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
        let state = self.store.data_mut();
        state.plugin_config = config.as_bytes().to_vec();
        state.root_contexts.push(root);
        self.call_in::<(i32, i32), ()>(root, "proxy_on_context_create", (root as i32, 0));
        let configured: i32 = self.call_in(
            root,
            "proxy_on_configure",
            (root as i32, config.len() as i32),
        );
        self.settle();
        if configured == 0 {
            return Err(Refused {
                logs: self.logs()[logged_before..].to_vec(),
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

    // ---- calls out: Webdis (dispatched HTTP) and Redis (Higress) ---------------------------

    pub fn http_calls(&self) -> Vec<&HttpCall> {
        self.store.data().http_calls.values().collect()
    }

    /// Delivers a reply to a dispatched call, or a failure (`None`: the stream was reset, and
    /// Envoy calls back with no headers).
    pub fn answer_http_call(&mut self, token: u32, reply: Option<HttpReply>) {
        let call = self
            .store
            .data_mut()
            .http_calls
            .remove(&token)
            .unwrap_or_else(|| panic!("no pending HTTP call {token}"));
        let response = reply.map_or(
            CallResponse {
                headers: Vec::new(),
                body: Vec::new(),
                trailers: Vec::new(),
            },
            HttpReply::into_call_response,
        );
        let counts = (
            response.headers.len() as i32,
            response.body.len() as i32,
            response.trailers.len() as i32,
        );
        self.store.data_mut().call_response = Some(response);
        self.call_in::<(i32, i32, i32, i32, i32), ()>(
            call.context_id,
            "proxy_on_http_call_response",
            (
                call.context_id as i32,
                token as i32,
                counts.0,
                counts.1,
                counts.2,
            ),
        );
        self.store.data_mut().call_response = None;
        self.settle();
    }

    /// Answers every pending dispatched call from the real server behind its cluster, as Envoy
    /// would: a refused connection becomes Envoy's 503, a timeout its 504. Returns how many.
    pub fn forward_http_calls(&mut self) -> usize {
        let tokens: Vec<u32> = self.store.data().http_calls.keys().copied().collect();
        for &token in &tokens {
            let call = &self.store.data().http_calls[&token];
            let address = self
                .store
                .data()
                .process
                .borrow()
                .clusters
                .get(&call.cluster)
                .copied()
                .flatten();
            let reply = match address {
                Some(address) => super::calls::perform(address, call),
                None => panic!(
                    "cluster {:?} has no server; answer the call by hand",
                    call.cluster
                ),
            };
            self.answer_http_call(token, Some(reply));
        }
        tokens.len()
    }

    pub fn redis_calls(&self) -> Vec<&RedisCall> {
        self.store.data().redis_calls.values().collect()
    }

    /// Hands every Redis reply (or failure) the host holds to the filter, in call order.
    pub fn deliver_redis_replies(&mut self) -> usize {
        let tokens: Vec<u32> = self.store.data().redis_calls.keys().copied().collect();
        for &token in &tokens {
            self.deliver_redis_reply(token);
        }
        tokens.len()
    }

    /// Hands one Redis reply (or its failure) to the filter, as Higress does: to the root
    /// context's callback, the reply readable as buffer type 9 during the call.
    pub fn deliver_redis_reply(&mut self, token: u32) {
        let call = self
            .store
            .data_mut()
            .redis_calls
            .remove(&token)
            .unwrap_or_else(|| panic!("no pending Redis call {token}"));
        let (status, reply) = call.outcome.status_and_reply();
        let size = reply.len() as i32;
        self.store.data_mut().redis_reply = Some(reply);
        let root = self.root_context();
        self.call_in::<(i32, i32, i32, i32), ()>(
            root,
            "proxy_on_redis_call_response",
            (root as i32, token as i32, status as i32, size),
        );
        self.store.data_mut().redis_reply = None;
        self.settle();
    }

    /// One chat request, headers then the whole `body`, store calls answered: its stream id and
    /// the provider it was routed to (`None`: not routed).
    #[allow(dead_code)] // not every test binary uses it
    pub fn chat(&mut self, body: &[u8]) -> (u32, Option<String>) {
        let request = self.request(
            &[(":method", "POST"), (":path", "/v1/chat/completions")],
            &[],
        );
        self.send_headers(request, false);
        self.send_body(request, body, true);
        self.deliver_store_replies();
        let provider = self.stream(request).upstream_header("x-selected-provider");
        (request, provider.map(str::to_string))
    }

    /// Answers whatever store calls are pending, whichever kind they are.
    pub fn deliver_store_replies(&mut self) -> usize {
        let redis = if self.has_export("proxy_on_redis_call_response") {
            self.deliver_redis_replies()
        } else {
            0
        };
        redis + self.forward_http_calls()
    }

    // ---- time -----------------------------------------------------------------------------

    pub(super) fn next_tick(&self) -> Option<Duration> {
        if self.halted {
            return None;
        }
        self.store.data().next_tick
    }

    /// One tick now, on the current configuration's root context (`proxy_on_tick`), whether or
    /// not one is due; the next falls a period later. [`super::Host::advance`] ticks every VM
    /// as its ticks fall due; this ticks one VM alone, as when the others' timers lag.
    pub fn tick(&mut self) {
        let state = self.store.data_mut();
        let now = state.process.borrow().elapsed();
        state.next_tick = state.tick_period.map(|period| now + period);
        let root = state.root_context;
        self.call_in::<(i32,), ()>(root, "proxy_on_tick", (root as i32,));
        self.settle();
    }
}
