//! Each host call the filter makes, as a function that returns `Err(HostError)` for any status
//! but `Ok` (never a panic), and reads what the host wrote without trusting its shape.

use std::ptr::null_mut;
use std::time::Duration;

use super::imports::*;
use super::memory::take_host_bytes;
use super::{check, BufferType, HeaderMap, HostError, MetricKind, Status, StreamType};
use crate::header_map::{decode_pairs, encode_pairs};

/// A pointer/size pair the host fills in.
struct Returned {
    data: *mut u8,
    size: usize,
}

impl Returned {
    fn new() -> Self {
        Self {
            data: null_mut(),
            size: 0,
        }
    }

    fn take(self) -> Vec<u8> {
        take_host_bytes(self.data, self.size)
    }
}

/// A lookup: `Ok(None)` where the host says there is nothing (`NotFound`).
fn found(call: &'static str, raw: u32, returned: Returned) -> Result<Option<Vec<u8>>, HostError> {
    match Status::from_raw(raw) {
        Status::Ok => Ok(Some(returned.take())),
        Status::NotFound => Ok(None),
        status => Err(HostError { call, status }),
    }
}

pub fn log(level: u32, message: &str) -> Result<(), HostError> {
    // SAFETY (every call below): pointers are to live buffers of the stated sizes, or out
    // parameters on this stack frame; the host writes nothing else.
    let raw = unsafe { proxy_log(level, message.as_ptr(), message.len()) };
    check("proxy_log", raw)
}

pub fn log_level() -> Result<u32, HostError> {
    let mut level = 0;
    let raw = unsafe { proxy_get_log_level(&mut level) };
    check("proxy_get_log_level", raw).map(|()| level)
}

pub fn now_ns() -> Result<u64, HostError> {
    let mut now = 0;
    let raw = unsafe { proxy_get_current_time_nanoseconds(&mut now) };
    check("proxy_get_current_time_nanoseconds", raw).map(|()| now)
}

pub fn set_tick_period(period: Duration) -> Result<(), HostError> {
    let millis = u32::try_from(period.as_millis()).unwrap_or(u32::MAX);
    let raw = unsafe { proxy_set_tick_period_milliseconds(millis) };
    check("proxy_set_tick_period_milliseconds", raw)
}

/// Up to `max_size` bytes of a buffer from `start` (`Ok(None)`: no such buffer).
pub fn buffer(
    kind: BufferType,
    start: usize,
    max_size: usize,
) -> Result<Option<Vec<u8>>, HostError> {
    let mut returned = Returned::new();
    let raw = unsafe {
        proxy_get_buffer_bytes(
            kind as u32,
            start,
            max_size,
            &mut returned.data,
            &mut returned.size,
        )
    };
    found("proxy_get_buffer_bytes", raw, returned)
}

/// Replaces `size` bytes of a buffer from `start` with `value`.
pub fn set_buffer(
    kind: BufferType,
    start: usize,
    size: usize,
    value: &[u8],
) -> Result<(), HostError> {
    let raw =
        unsafe { proxy_set_buffer_bytes(kind as u32, start, size, value.as_ptr(), value.len()) };
    check("proxy_set_buffer_bytes", raw)
}

pub fn header(map: HeaderMap, name: &str) -> Result<Option<Vec<u8>>, HostError> {
    let mut returned = Returned::new();
    let raw = unsafe {
        proxy_get_header_map_value(
            map as u32,
            name.as_ptr(),
            name.len(),
            &mut returned.data,
            &mut returned.size,
        )
    };
    found("proxy_get_header_map_value", raw, returned)
}

pub fn headers(map: HeaderMap) -> Result<Vec<(String, Vec<u8>)>, HostError> {
    let mut returned = Returned::new();
    let raw =
        unsafe { proxy_get_header_map_pairs(map as u32, &mut returned.data, &mut returned.size) };
    check("proxy_get_header_map_pairs", raw)?;
    decode_pairs(&returned.take()).ok_or(HostError {
        call: "proxy_get_header_map_pairs",
        status: Status::SerializationFailure,
    })
}

pub fn set_header(map: HeaderMap, name: &str, value: &str) -> Result<(), HostError> {
    let raw = unsafe {
        proxy_replace_header_map_value(
            map as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    };
    check("proxy_replace_header_map_value", raw)
}

pub fn remove_header(map: HeaderMap, name: &str) -> Result<(), HostError> {
    let raw = unsafe { proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()) };
    check("proxy_remove_header_map_value", raw)
}

/// A host property by its path (`["source", "address"]`).
pub fn property(path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
    // Segments joined by NUL bytes.
    let mut encoded = Vec::new();
    for (index, segment) in path.iter().enumerate() {
        if index > 0 {
            encoded.push(0);
        }
        encoded.extend_from_slice(segment.as_bytes());
    }
    let mut returned = Returned::new();
    let raw = unsafe {
        proxy_get_property(
            encoded.as_ptr(),
            encoded.len(),
            &mut returned.data,
            &mut returned.size,
        )
    };
    found("proxy_get_property", raw, returned)
}

/// A shared-data value (`None`: not there) and its compare-and-swap token.
pub fn shared_data(key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
    let mut returned = Returned::new();
    let mut cas = 0;
    let raw = unsafe {
        proxy_get_shared_data(
            key.as_ptr(),
            key.len(),
            &mut returned.data,
            &mut returned.size,
            &mut cas,
        )
    };
    found("proxy_get_shared_data", raw, returned).map(|value| (value, cas))
}

/// Writes a shared-data value if its token is still `cas` (0: unconditionally).
pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
    let raw =
        unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) };
    check("proxy_set_shared_data", raw)
}

pub fn continue_stream(stream: StreamType) -> Result<(), HostError> {
    let raw = unsafe { proxy_continue_stream(stream as u32) };
    check("proxy_continue_stream", raw)
}

pub fn send_local_response(
    status: u32,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(), HostError> {
    let headers = encode_pairs(headers);
    let details = "ai-load-balancer";
    let raw = unsafe {
        proxy_send_local_response(
            status,
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    };
    check("proxy_send_local_response", raw)
}

/// Sends an HTTP call to `cluster`; its reply comes to the context `owner` (`register_call`).
pub fn http_call(
    cluster: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeout: Duration,
    owner: u32,
) -> Result<u32, HostError> {
    let headers = encode_pairs(headers);
    let trailers = encode_pairs(&[]);
    let body = body.unwrap_or_default();
    let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    let mut token = 0;
    let raw = unsafe {
        proxy_http_call(
            cluster.as_ptr(),
            cluster.len(),
            headers.as_ptr(),
            headers.len(),
            body.as_ptr(),
            body.len(),
            trailers.as_ptr(),
            trailers.len(),
            timeout_ms,
            &mut token,
        )
    };
    check("proxy_http_call", raw)?;
    super::register_call(token, owner);
    Ok(token)
}

/// Calls a host's foreign function; what it answers is not needed.
pub fn call_foreign_function(name: &str, argument: &[u8]) -> Result<(), HostError> {
    let mut returned = Returned::new();
    let raw = unsafe {
        proxy_call_foreign_function(
            name.as_ptr(),
            name.len(),
            argument.as_ptr(),
            argument.len(),
            &mut returned.data,
            &mut returned.size,
        )
    };
    // Free whatever the host wrote back, even on failure.
    drop(returned.take());
    check("proxy_call_foreign_function", raw)
}

pub fn set_effective_context(context_id: u32) -> Result<(), HostError> {
    let raw = unsafe { proxy_set_effective_context(context_id) };
    check("proxy_set_effective_context", raw)
}

/// Defines a metric of `kind`; returns its id.
pub fn define_metric(kind: MetricKind, name: &str) -> Result<u32, HostError> {
    let mut id = 0;
    let raw = unsafe { proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) };
    check("proxy_define_metric", raw).map(|()| id)
}

/// Records a histogram sample.
pub fn record_metric(id: u32, value: u64) -> Result<(), HostError> {
    let raw = unsafe { proxy_record_metric(id, value) };
    check("proxy_record_metric", raw)
}

pub fn increment_metric(id: u32, by: i64) -> Result<(), HostError> {
    let raw = unsafe { proxy_increment_metric(id, by) };
    check("proxy_increment_metric", raw)
}
