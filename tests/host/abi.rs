//! The proxy-wasm 0.2.1 host functions (module `env`), Higress's Redis calls, and a loud trap for
//! any other import, naming it.

use std::time::Duration;

use wasmtime::{bail, Caller, Linker, Module, Result, Store};

use super::memory::{decode_pairs, hand_over, read, read_string, write_u32, write_u64};
use super::process::{Flavor, MetricKind, SetOutcome};
use super::stream::LocalResponse;
use super::vm::{Deferred, LogLine, VmState};

pub const OK: i32 = 0;
pub const NOT_FOUND: i32 = 1;
pub const BAD_ARGUMENT: i32 = 2;
pub const CAS_MISMATCH: i32 = 8;
pub const UNIMPLEMENTED: i32 = 12;

type Ctx<'a> = Caller<'a, VmState>;

pub fn linker(module: &Module, store: &mut Store<VmState>) -> Linker<VmState> {
    let mut linker = Linker::new(module.engine());
    define(&mut linker).unwrap_or_else(|err| panic!("defining host functions: {err:?}"));
    super::wasi::define(&mut linker).unwrap_or_else(|err| panic!("defining WASI: {err:?}"));
    for import in module.imports() {
        let (namespace, name) = (import.module().to_string(), import.name().to_string());
        if linker.get_by_import(&mut *store, &import).is_some() {
            continue;
        }
        let Some(ty) = import.ty().func().cloned() else {
            panic!("the filter imports {namespace}.{name}, which is not a function");
        };
        let what = format!("{namespace}.{name}");
        linker
            .func_new(&namespace, &name, ty, move |_, _, _| {
                bail!("the test host does not implement {what}, which the filter called")
            })
            .unwrap_or_else(|err| panic!("stubbing {import:?}: {err:?}"));
    }
    super::faults::intercept(&mut linker, module, store)
        .unwrap_or_else(|err| panic!("putting the imports behind fault injection: {err:?}"));
    linker
}

fn define(linker: &mut Linker<VmState>) -> Result<()> {
    define_logging_and_time(linker)?;
    define_buffers(linker)?;
    super::header_maps::define(linker)?;
    define_properties(linker)?;
    define_shared_data(linker)?;
    define_stream_control(linker)?;
    super::outbound::define_http_calls(linker)?;
    define_metrics(linker)?;
    super::outbound::define_redis(linker)?;
    Ok(())
}

fn define_logging_and_time(linker: &mut Linker<VmState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_log",
        |mut c: Ctx, level: i32, ptr: i32, len: i32| {
            let message = String::from_utf8_lossy(&read(&mut c, ptr, len)?).into_owned();
            // Printed so that a failing test shows the filter's logs (the harness captures them).
            eprintln!("[vm{} level {level}] {message}", c.data().index);
            c.data_mut().logs.push(LogLine { level, message });
            Ok(OK)
        },
    )?;
    linker.func_wrap("env", "proxy_get_log_level", |mut c: Ctx, out: i32| {
        let level = c.data().process.borrow().log_level;
        write_u32(&mut c, out, level as u32)?;
        Ok(OK)
    })?;
    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut c: Ctx, out: i32| {
            let now = c.data().process.borrow().realtime_ns();
            write_u64(&mut c, out, now)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut c: Ctx, period: i32| {
            let state = c.data_mut();
            let now = state.process.borrow().elapsed();
            let period = Duration::from_millis(period as u32 as u64);
            state.tick_period = (!period.is_zero()).then_some(period);
            state.next_tick = state.tick_period.map(|period| now + period);
            Ok(OK)
        },
    )?;
    linker.func_wrap("env", "proxy_done", |_: Ctx| Ok(OK))?;
    Ok(())
}

fn buffer(state: &VmState, kind: i32) -> Option<Vec<u8>> {
    match kind {
        0 => state.stream().map(|stream| stream.body_buffer.clone()),
        1 => state
            .stream()
            .map(|stream| stream.response_body_buffer.clone()),
        4 => state
            .call_response
            .as_ref()
            .map(|response| response.body.clone()),
        6 => Some(state.vm_config.clone()),
        7 => Some(state.plugin_config.clone()),
        // Higress: the Redis reply, during proxy_on_redis_call_response only.
        9 if state.process.borrow().flavor == Flavor::Higress => state.redis_reply.clone(),
        _ => None,
    }
}

fn define_buffers(linker: &mut Linker<VmState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: Ctx, kind: i32, start: i32, max: i32, out_ptr: i32, out_len: i32| {
            let Some(bytes) = buffer(c.data(), kind) else {
                return Ok(NOT_FOUND);
            };
            let start = (start as u32 as usize).min(bytes.len());
            let end = start.saturating_add(max as u32 as usize).min(bytes.len());
            hand_over(&mut c, &bytes[start..end], out_ptr, out_len)?;
            Ok(OK)
        },
    )?;
    // Envoy's semantics: start 0 drains `length` bytes and prepends the data; a start at or
    // past the end appends; anything else is refused.
    linker.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut c: Ctx, kind: i32, start: i32, length: i32, ptr: i32, len: i32| {
            let data = read(&mut c, ptr, len)?;
            let Some(stream) = c.data_mut().stream_mut() else {
                return Ok(NOT_FOUND);
            };
            let target = match kind {
                0 if !stream.body_writable() => return Ok(NOT_FOUND),
                0 => &mut stream.body_buffer,
                1 => &mut stream.response_body_buffer,
                _ => return Ok(BAD_ARGUMENT),
            };
            let (start, length) = (start as u32 as usize, length as u32 as usize);
            if start == 0 {
                target.drain(..length.min(target.len()));
                target.splice(0..0, data);
            } else if start >= target.len() {
                target.extend_from_slice(&data);
            } else {
                return Ok(BAD_ARGUMENT);
            }
            Ok(OK)
        },
    )?;
    Ok(())
}

/// A property path arrives as NUL-separated parts; the host names it with dots
/// (`source.address`).
fn property_name(raw: &[u8]) -> String {
    raw.split(|byte| *byte == 0)
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect::<Vec<_>>()
        .join(".")
}

fn define_properties(linker: &mut Linker<VmState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_property",
        |mut c: Ctx, path_ptr: i32, path_len: i32, out_ptr: i32, out_len: i32| {
            let name = property_name(&read(&mut c, path_ptr, path_len)?);
            let state = c.data();
            let value = state
                .stream()
                .and_then(|stream| stream.properties.get(&name))
                .or_else(|| state.root_properties.get(&name))
                .cloned();
            match value {
                Some(value) => {
                    hand_over(&mut c, &value, out_ptr, out_len)?;
                    Ok(OK)
                }
                None => Ok(NOT_FOUND),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_property",
        |mut c: Ctx, path_ptr: i32, path_len: i32, value_ptr: i32, value_len: i32| {
            let name = property_name(&read(&mut c, path_ptr, path_len)?);
            let value = read(&mut c, value_ptr, value_len)?;
            let state = c.data_mut();
            match state.streams.get_mut(&state.effective) {
                Some(stream) => stream.properties.insert(name, value),
                None => state.root_properties.insert(name, value),
            };
            Ok(OK)
        },
    )?;
    Ok(())
}

fn define_shared_data(linker: &mut Linker<VmState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut c: Ctx, key_ptr: i32, key_len: i32, out_ptr: i32, out_len: i32, cas_ptr: i32| {
            let key = read_string(&mut c, key_ptr, key_len)?;
            let Some((value, cas)) = c.data().process.borrow().shared_data.get(&key) else {
                return Ok(NOT_FOUND);
            };
            hand_over(&mut c, &value, out_ptr, out_len)?;
            write_u32(&mut c, cas_ptr, cas)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut c: Ctx, key_ptr: i32, key_len: i32, value_ptr: i32, value_len: i32, cas: i32| {
            let key = read_string(&mut c, key_ptr, key_len)?;
            let value = read(&mut c, value_ptr, value_len)?;
            let outcome = c
                .data()
                .process
                .borrow_mut()
                .shared_data
                .set(&key, &value, cas as u32);
            Ok(match outcome {
                SetOutcome::Stored => OK,
                SetOutcome::CasMismatch => CAS_MISMATCH,
            })
        },
    )?;
    Ok(())
}

fn define_stream_control(linker: &mut Linker<VmState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_set_effective_context",
        |mut c: Ctx, context: i32| {
            let state = c.data_mut();
            let context = context as u32;
            let alive = state.root_contexts.contains(&context)
                || state
                    .streams
                    .get(&context)
                    .is_some_and(|stream| !stream.done);
            if !alive {
                return Ok(BAD_ARGUMENT);
            }
            state.effective = context;
            Ok(OK)
        },
    )?;
    // Envoy's `Context::continueStream`: the resume itself runs after the VM call, but the
    // request's maps (headers, trailers) are gone for the filter at once, after a request or a
    // response continue alike (see `header_maps.rs`). Downstream answers OK, upstream
    // Unimplemented, an unknown type BadArgument; a context with no stream (the root) OK.
    linker.func_wrap("env", "proxy_continue_stream", |mut c: Ctx, kind: i32| {
        let state = c.data_mut();
        match kind {
            0 | 1 => {}
            2 => return Ok(OK),
            3 => return Ok(UNIMPLEMENTED),
            _ => return Ok(BAD_ARGUMENT),
        }
        let Some(stream) = state.streams.get_mut(&state.effective) else {
            return Ok(OK);
        };
        stream.request_headers_in_filter = false;
        stream.request_trailers_dropped = true;
        let deferred = match kind {
            0 => Deferred::ContinueRequest(stream.id),
            _ => Deferred::ContinueResponse(stream.id),
        };
        state.deferred.push_back(deferred);
        Ok(OK)
    })?;
    linker.func_wrap(
        "env",
        "proxy_close_stream",
        |mut c: Ctx, _kind: i32| match c.data_mut().stream_mut() {
            Some(stream) => {
                stream.closed = true;
                Ok(OK)
            }
            None => Ok(NOT_FOUND),
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: Ctx,
         status: i32,
         details_ptr: i32,
         details_len: i32,
         body_ptr: i32,
         body_len: i32,
         headers_ptr: i32,
         headers_len: i32,
         _grpc_status: i32| {
            let details = read_string(&mut c, details_ptr, details_len)?;
            let body = read(&mut c, body_ptr, body_len)?;
            let headers = decode_pairs(&read(&mut c, headers_ptr, headers_len)?)?;
            let Some(stream) = c.data_mut().stream_mut() else {
                return Ok(NOT_FOUND);
            };
            stream.local_response = Some(LocalResponse {
                status: status as u32,
                details,
                body,
                headers,
            });
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |mut c: Ctx,
         name_ptr: i32,
         name_len: i32,
         _args_ptr: i32,
         _args_len: i32,
         out_ptr: i32,
         out_len: i32| {
            let name = read_string(&mut c, name_ptr, name_len)?;
            let envoy = c.data().process.borrow().flavor == Flavor::Envoy;
            if name != "clear_route_cache" || !envoy {
                return Ok(NOT_FOUND);
            }
            let Some(stream) = c.data_mut().stream_mut() else {
                return Ok(BAD_ARGUMENT);
            };
            stream.route_cache_clears += 1;
            stream.foreign_calls.push(name);
            hand_over(&mut c, &[], out_ptr, out_len)?;
            Ok(OK)
        },
    )?;
    Ok(())
}

fn define_metrics(linker: &mut Linker<VmState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_define_metric",
        |mut c: Ctx, kind: i32, name_ptr: i32, name_len: i32, id_ptr: i32| {
            let name = read_string(&mut c, name_ptr, name_len)?;
            let Some(kind) = MetricKind::from_abi(kind) else {
                return Ok(BAD_ARGUMENT);
            };
            let id = c.data().process.borrow_mut().metrics.define(kind, &name);
            write_u32(&mut c, id_ptr, id)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_increment_metric",
        |c: Ctx, id: i32, offset: i64| {
            let mut process = c.data().process.borrow_mut();
            let Some(metric) = process.metrics.get_mut(id as u32) else {
                return Ok(NOT_FOUND);
            };
            if metric.kind == MetricKind::Histogram {
                return Ok(BAD_ARGUMENT);
            }
            metric.value = metric.value.saturating_add_signed(offset);
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_record_metric",
        |c: Ctx, id: i32, value: i64| {
            let mut process = c.data().process.borrow_mut();
            let Some(metric) = process.metrics.get_mut(id as u32) else {
                return Ok(NOT_FOUND);
            };
            match metric.kind {
                MetricKind::Histogram => metric.samples.push(value as u64),
                _ => metric.value = value as u64,
            }
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_metric",
        |mut c: Ctx, id: i32, out: i32| {
            let value = c
                .data()
                .process
                .borrow_mut()
                .metrics
                .get_mut(id as u32)
                .map(|m| m.value);
            let Some(value) = value else {
                return Ok(NOT_FOUND);
            };
            write_u64(&mut c, out, value)?;
            Ok(OK)
        },
    )?;
    Ok(())
}
