//! Our own thin layer over the proxy-wasm 0.2.1 ABI, in place of the proxy-wasm SDK, whose
//! host-call wrappers `panic!` on any status they do not list (and a panic aborts the VM and
//! with it every later request on the worker), whose logger unwraps the log call, and whose
//! dispatcher `expect`s on unknown call tokens. Here every host call returns a `HostError`
//! naming the call and the status, and the callers decide what a failure means; the exports
//! (`exports.rs`) route each host callback to its context and never panic either.

mod calls;
mod exports;
mod imports;
mod logger;
mod memory;

use std::fmt;

pub use calls::*;
pub use exports::register_call;
pub use logger::{follow_host_level, install as install_logger};

/// A status the host answered (the ABI's `WasmResult`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    NotFound,
    BadArgument,
    SerializationFailure,
    ParseFailure,
    Empty,
    CasMismatch,
    InternalFailure,
    Unimplemented,
    /// A value outside the ABI's list.
    Other(u32),
}

impl Status {
    pub fn from_raw(raw: u32) -> Self {
        match raw {
            0 => Status::Ok,
            1 => Status::NotFound,
            2 => Status::BadArgument,
            3 => Status::SerializationFailure,
            4 => Status::ParseFailure,
            7 => Status::Empty,
            8 => Status::CasMismatch,
            10 => Status::InternalFailure,
            12 => Status::Unimplemented,
            other => Status::Other(other),
        }
    }
}

/// A host call that did not answer `Ok`: which call, and what it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostError {
    pub call: &'static str,
    pub status: Status,
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} answered {:?}", self.call, self.status)
    }
}

/// `Ok(())` for `Ok`, the call's error otherwise.
fn check(call: &'static str, raw: u32) -> Result<(), HostError> {
    match Status::from_raw(raw) {
        Status::Ok => Ok(()),
        status => Err(HostError { call, status }),
    }
}

/// The header maps the filter reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderMap {
    Request = 0,
    Response = 2,
    HttpCallResponse = 6,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferType {
    RequestBody = 0,
    ResponseBody = 1,
    HttpCallResponseBody = 4,
    PluginConfiguration = 7,
    /// Higress: the reply of a Redis call.
    #[cfg(feature = "higress")]
    RedisCallResponse = 9,
}

/// The kinds of metric the filter defines (the ABI's numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter = 0,
    Histogram = 2,
}

/// What a stream callback tells the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue = 0,
    Pause = 1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamType {
    Request = 0,
    Response = 1,
}
