//! Host statuses on demand: a test tells the host to answer a chosen status to a chosen host
//! call (once, N times, or always; optionally only for one header map or buffer type), and
//! reads back which imports the filter called and how many injected answers it got.
//!
//! Every import of the module goes through [`intercept`], WASI's included, so a fault can be
//! set on any of them; an injected answer replaces the call (nothing is read or written, as
//! when a real host refuses).

use std::collections::BTreeMap;

use wasmtime::{Linker, Module, Result, Store, Val};

use super::vm::VmState;

/// `proxy_status_t` (proxy-wasm ABI 0.2.1), the non-OK values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    NotFound = 1,
    BadArgument = 2,
    SerializationFailure = 3,
    ParseFailure = 4,
    InvalidMemoryAccess = 6,
    Empty = 7,
    CasMismatch = 8,
    InternalFailure = 10,
    Unimplemented = 12,
}

/// `wasi_errno_t` values the ABI lists for the WASI calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Errno {
    Badf = 8,
    Fault = 21,
    Inval = 28,
    Notsup = 58,
}

/// What an injected answer returns: a proxy-wasm status or a WASI errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Status(Status),
    Errno(Errno),
}

impl Answer {
    fn code(self) -> i32 {
        match self {
            Answer::Status(status) => status as i32,
            Answer::Errno(errno) => errno as i32,
        }
    }
}

impl From<Status> for Answer {
    fn from(status: Status) -> Self {
        Answer::Status(status)
    }
}

impl From<Errno> for Answer {
    fn from(errno: Errno) -> Self {
        Answer::Errno(errno)
    }
}

/// `proxy_map_type_t`: the first argument of the header map calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    RequestHeaders = 0,
    RequestTrailers = 1,
    ResponseHeaders = 2,
    ResponseTrailers = 3,
    HttpCallResponseHeaders = 6,
    HttpCallResponseTrailers = 7,
}

/// `proxy_buffer_type_t` (and Higress's Redis reply, 9): the first argument of the buffer calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferType {
    RequestBody = 0,
    ResponseBody = 1,
    HttpCallResponseBody = 4,
    VmConfiguration = 6,
    PluginConfiguration = 7,
    RedisCallResponse = 9,
}

/// How many calls a fault answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Times {
    Once,
    N(u32),
    Always,
}

/// One injected answer: `call` (e.g. `proxy_get_header_map_value`) answers `answer` instead of
/// doing its work, `times` times, only where its first argument is `first_argument` if given.
#[derive(Debug, Clone)]
pub struct Fault {
    pub call: String,
    pub answer: Answer,
    pub times: Times,
    pub first_argument: Option<i32>,
}

impl Fault {
    /// Every call to `call` answers `answer` (narrow it with `once`, `times`, `on_map`, …).
    pub fn new(call: &str, answer: impl Into<Answer>) -> Self {
        Self {
            call: call.to_string(),
            answer: answer.into(),
            times: Times::Always,
            first_argument: None,
        }
    }

    pub fn once(self) -> Self {
        self.times(1)
    }

    pub fn times(mut self, n: u32) -> Self {
        self.times = Times::N(n);
        self
    }

    /// Only calls on this header map (the header map calls' first argument).
    pub fn on_map(mut self, map: MapType) -> Self {
        self.first_argument = Some(map as i32);
        self
    }

    /// Only calls on this buffer (the buffer calls' first argument).
    pub fn on_buffer(mut self, buffer: BufferType) -> Self {
        self.first_argument = Some(buffer as i32);
        self
    }
}

struct Armed {
    fault: Fault,
    /// Calls it may still answer (`None`: always).
    left: Option<u32>,
}

/// The faults armed, and per import the injected answers given (all VMs together); the calls
/// made are the process's `Ledger`'s.
#[derive(Default)]
pub struct Faults {
    armed: Vec<Armed>,
    answered: BTreeMap<String, u32>,
}

impl Faults {
    pub fn arm(&mut self, fault: Fault) {
        let left = match fault.times {
            Times::Once => Some(1),
            Times::N(n) => Some(n),
            Times::Always => None,
        };
        self.armed.push(Armed { fault, left });
    }

    /// Disarms every fault; the counts stay.
    pub fn clear(&mut self) {
        self.armed.clear();
    }

    pub fn answered(&self, call: &str) -> u32 {
        self.answered.get(call).copied().unwrap_or(0)
    }

    /// The injected code, if a fault answers this call.
    fn on_call(&mut self, call: &str, first_argument: Option<i32>) -> Option<i32> {
        let armed = self.armed.iter_mut().find(|armed| {
            armed.fault.call == call
                && armed.left != Some(0)
                && (armed.fault.first_argument.is_none()
                    || armed.fault.first_argument == first_argument)
        })?;
        if let Some(left) = &mut armed.left {
            *left -= 1;
        }
        *self.answered.entry(call.to_string()).or_default() += 1;
        Some(armed.fault.answer.code())
    }
}

/// Puts every import of `module` behind the ledger and the fault check: the call is counted,
/// then the linker's own definition runs (its copies across the ABI booked to this import)
/// unless a fault answers first.
pub fn intercept(
    linker: &mut Linker<VmState>,
    module: &Module,
    store: &mut Store<VmState>,
) -> Result<()> {
    linker.allow_shadowing(true);
    for import in module.imports() {
        let Some(ty) = import.ty().func().cloned() else {
            continue;
        };
        let Some(original) = linker
            .get_by_import(&mut *store, &import)
            .and_then(|definition| definition.into_func())
        else {
            continue;
        };
        let returns_a_code = ty.results().len() == 1;
        let call = import.name().to_string();
        linker.func_new(
            import.module(),
            import.name(),
            ty,
            move |mut caller, params, results| {
                if caller.data().initializing && call.starts_with("proxy_") {
                    // Envoy: "Function: _initialize failed: Uncaught Error: restricted_callback".
                    return Err(wasmtime::Error::msg(format!(
                        "restricted_callback: {call} while the module initialises"
                    )));
                }
                let first_argument = params.first().and_then(Val::i32);
                let injected = {
                    let mut process = caller.data().process.borrow_mut();
                    process.ledger.call(&call);
                    process.faults.on_call(&call, first_argument)
                };
                match injected {
                    Some(code) if returns_a_code => {
                        results[0] = Val::I32(code);
                        Ok(())
                    }
                    _ => {
                        // Nested: hand_over calls the module's allocator, which may call in.
                        let outer = caller.data_mut().current_import.replace(call.clone());
                        let done = original.call(&mut caller, params, results);
                        caller.data_mut().current_import = outer;
                        done
                    }
                }
            },
        )?;
    }
    linker.allow_shadowing(false);
    Ok(())
}
