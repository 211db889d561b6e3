//! The header map calls (`proxy_*_header_map_*`), as strict as Envoy 1.40 about when a map
//! exists for the filter.
//!
//! Envoy's wasm context holds a pointer per map (envoyproxy/envoy
//! `source/extensions/common/wasm/context.cc`, read at commit b40935ac; Higress's fork,
//! johnlanni/envoy at 16275c9, is the same here):
//! - `request_headers_` is set by `decodeHeaders` and cleared when `proxy_on_request_headers`
//!   returns Continue, or at once (not after the callback) when the filter calls
//!   `proxy_continue_stream`, for the request *or the response* (`continueStream` clears the
//!   request headers, body, trailers and metadata after either case). A body callback that
//!   continues does not clear it.
//! - `request_trailers_` likewise: set by `decodeTrailers`, cleared on Continue and by
//!   `continueStream`.
//! - `response_headers_` is set by `encodeHeaders` and cleared when `proxy_on_response_headers`
//!   returns Continue (`continueStream` leaves it).
//! - In `proxy_on_log` (the access-log phase) reads see the stream's final request and
//!   response headers; request trailers are not there.
//!
//! When the map is gone (`getMap` / `getConstMap` answer null):
//! - `get_header_map_value`: `BadArgument` ("requested map type is not currently available"),
//!   `NotFound` in the access-log phase;
//! - `get_header_map_pairs`: `Ok` with no pairs (`headerMapToPairs(nullptr)` is empty);
//! - `set_header_map_pairs`, `add_`, `replace_`, `remove_header_map_value`: `BadArgument`;
//! - a map type past the last one (7): `BadArgument` for every call (proxy-wasm-cpp-host
//!   `src/exports.cc`).

use wasmtime::{Caller, Linker, Result};

use super::abi::{BAD_ARGUMENT, NOT_FOUND, OK};
use super::memory::{decode_pairs, encode_pairs, hand_over, read, read_string};
use super::process::Flavor;
use super::stream::{HeadersState, Stream};
use super::vm::VmState;

type Ctx<'a> = Caller<'a, VmState>;
type Pairs = Vec<(String, String)>;

/// The last `proxy_map_type_t` (`HTTP_CALL_RESPONSE_TRAILERS`).
const LAST_MAP_TYPE: i32 = 7;

/// A map as the filter may read it now: `None` when Envoy would have no map.
fn readable(state: &VmState, kind: i32) -> Option<&Pairs> {
    let stream = state.stream();
    if state.access_log_phase {
        return match kind {
            0 => stream.map(|stream| &stream.request_headers),
            2 => stream
                .filter(|stream| stream.response_received)
                .map(|stream| &stream.response_headers),
            _ => None,
        };
    }
    match kind {
        0 => stream
            .filter(|stream| stream.request_headers_in_filter)
            .map(|stream| &stream.request_headers),
        1 => stream
            .filter(|stream| stream.request_trailers_in_filter())
            .map(|stream| &stream.request_trailers),
        2 => stream
            .filter(|stream| stream.response_headers_in_filter)
            .map(|stream| &stream.response_headers),
        6 => state
            .call_response
            .as_ref()
            .map(|response| &response.headers),
        7 => state
            .call_response
            .as_ref()
            .map(|response| &response.trailers),
        _ => None,
    }
}

/// A map the filter may change now: request headers, request trailers and response headers
/// while they are in its hands.
fn writable(stream: &mut Stream, kind: i32) -> Option<&mut Pairs> {
    match kind {
        0 if stream.request_headers_in_filter => Some(&mut stream.request_headers),
        1 if stream.request_trailers_in_filter() => Some(&mut stream.request_trailers),
        2 if stream.response_headers_in_filter => Some(&mut stream.response_headers),
        _ => None,
    }
}

/// Applies `change` to a writable map and counts a route re-match where the gateway would do
/// one for a request-header change (Higress, unless the plugin turned it off). `BadArgument`
/// when Envoy has no such map now.
fn change_map(c: &mut Ctx, kind: i32, change: impl FnOnce(&mut Pairs)) -> i32 {
    let flavor = c.data().process.borrow().flavor;
    let Some(stream) = c.data_mut().stream_mut() else {
        return BAD_ARGUMENT;
    };
    let Some(map) = writable(stream, kind) else {
        return BAD_ARGUMENT;
    };
    change(map);
    if kind == 0 {
        let rematch_off = stream
            .properties
            .get("clear_route_cache")
            .map(Vec::as_slice)
            == Some(b"off".as_slice());
        if flavor == Flavor::Higress
            && !rematch_off
            && stream.headers_state != HeadersState::Released
        {
            stream.route_cache_clears += 1;
        }
    }
    OK
}

fn lowercase_pairs(pairs: Pairs) -> Pairs {
    pairs
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value))
        .collect()
}

pub fn define(linker: &mut Linker<VmState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut c: Ctx, kind: i32, out_ptr: i32, out_len: i32| {
            if !(0..=LAST_MAP_TYPE).contains(&kind) {
                return Ok(BAD_ARGUMENT);
            }
            let pairs = readable(c.data(), kind).map_or_else(Vec::new, |pairs| encode_pairs(pairs));
            hand_over(&mut c, &pairs, out_ptr, out_len)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut c: Ctx, kind: i32, ptr: i32, len: i32| {
            let pairs = lowercase_pairs(decode_pairs(&read(&mut c, ptr, len)?)?);
            Ok(change_map(&mut c, kind, |map| *map = pairs))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: Ctx, kind: i32, key_ptr: i32, key_len: i32, out_ptr: i32, out_len: i32| {
            let key = read_string(&mut c, key_ptr, key_len)?.to_ascii_lowercase();
            if !(0..=LAST_MAP_TYPE).contains(&kind) {
                return Ok(BAD_ARGUMENT);
            }
            let state = c.data();
            let value = readable(state, kind)
                .map(|map| Stream::header_index(map, &key).map(|index| map[index].1.clone()));
            match value {
                None if state.access_log_phase => Ok(NOT_FOUND),
                None => Ok(BAD_ARGUMENT),
                Some(None) => Ok(NOT_FOUND),
                Some(Some(value)) => {
                    hand_over(&mut c, value.as_bytes(), out_ptr, out_len)?;
                    Ok(OK)
                }
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |mut c: Ctx, kind: i32, key_ptr: i32, key_len: i32, value_ptr: i32, value_len: i32| {
            let key = read_string(&mut c, key_ptr, key_len)?.to_ascii_lowercase();
            let value = read_string(&mut c, value_ptr, value_len)?;
            Ok(change_map(&mut c, kind, |map| {
                map.retain(|(name, _)| *name != key);
                map.push((key, value));
            }))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_add_header_map_value",
        |mut c: Ctx, kind: i32, key_ptr: i32, key_len: i32, value_ptr: i32, value_len: i32| {
            let key = read_string(&mut c, key_ptr, key_len)?.to_ascii_lowercase();
            let value = read_string(&mut c, value_ptr, value_len)?;
            Ok(change_map(&mut c, kind, |map| map.push((key, value))))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut c: Ctx, kind: i32, key_ptr: i32, key_len: i32| {
            let key = read_string(&mut c, key_ptr, key_len)?.to_ascii_lowercase();
            Ok(change_map(&mut c, kind, |map| {
                map.retain(|(name, _)| *name != key)
            }))
        },
    )?;
    Ok(())
}
