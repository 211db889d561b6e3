//! The host functions for what leaves the VM: dispatched HTTP calls (`proxy_http_call`),
//! recorded for the test to answer, and Higress's Redis calls, sent to the real server.

use std::time::Duration;

use wasmtime::{Caller, Linker, Result};

use super::abi::{BAD_ARGUMENT, OK};
use super::calls::HttpCall;
use super::memory::{decode_pairs, read, read_string, write_u32};
use super::redis::RedisConnection;
use super::vm::VmState;

type Ctx<'a> = Caller<'a, VmState>;

pub fn define_http_calls(linker: &mut Linker<VmState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_http_call",
        |mut c: Ctx,
         upstream_ptr: i32,
         upstream_len: i32,
         headers_ptr: i32,
         headers_len: i32,
         body_ptr: i32,
         body_len: i32,
         _trailers_ptr: i32,
         _trailers_len: i32,
         timeout_ms: i32,
         token_ptr: i32| {
            let cluster = read_string(&mut c, upstream_ptr, upstream_len)?;
            let headers = decode_pairs(&read(&mut c, headers_ptr, headers_len)?)?;
            let body = read(&mut c, body_ptr, body_len)?;
            // Envoy refuses a call to a cluster it does not know, at once.
            if !c.data().process.borrow().clusters.contains_key(&cluster) {
                return Ok(BAD_ARGUMENT);
            }
            let token = c.data().process.borrow_mut().token();
            let context_id = c.data().effective;
            c.data_mut().http_calls.insert(
                token,
                HttpCall {
                    token,
                    context_id,
                    cluster,
                    headers,
                    body,
                    timeout: Duration::from_millis(timeout_ms as u32 as u64),
                },
            );
            write_u32(&mut c, token_ptr, token)?;
            Ok(OK)
        },
    )?;
    Ok(())
}

/// Higress's Redis calls (module `env`), answered by the real server the test mapped the
/// cluster to.
pub fn define_redis(linker: &mut Linker<VmState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_redis_init",
        |mut c: Ctx,
         upstream_ptr: i32,
         upstream_len: i32,
         user_ptr: i32,
         user_len: i32,
         password_ptr: i32,
         password_len: i32,
         timeout_ms: i32| {
            let upstream = read_string(&mut c, upstream_ptr, upstream_len)?;
            let username = read_string(&mut c, user_ptr, user_len)?;
            let password = read_string(&mut c, password_ptr, password_len)?;
            let (cluster, database) = split_upstream(&upstream)?;
            let address = c
                .data()
                .process
                .borrow()
                .clusters
                .get(cluster)
                .copied()
                .flatten();
            let Some(address) = address else {
                return Ok(BAD_ARGUMENT);
            };
            let timeout = Duration::from_millis(timeout_ms as u32 as u64);
            let connection = RedisConnection::new(address, username, password, database, timeout);
            c.data_mut().redis.insert(upstream, connection);
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_redis_call",
        |mut c: Ctx,
         upstream_ptr: i32,
         upstream_len: i32,
         query_ptr: i32,
         query_len: i32,
         token_ptr: i32| {
            let upstream = read_string(&mut c, upstream_ptr, upstream_len)?;
            let query = read(&mut c, query_ptr, query_len)?;
            let Some(connection) = c.data_mut().redis.get_mut(&upstream) else {
                return Ok(BAD_ARGUMENT);
            };
            let outcome = connection.call(&query);
            let token = c.data().process.borrow_mut().token();
            let context_id = c.data().effective;
            c.data_mut().redis_calls.insert(
                token,
                super::redis::RedisCall {
                    token,
                    context_id,
                    upstream,
                    query,
                    outcome,
                },
            );
            write_u32(&mut c, token_ptr, token)?;
            Ok(OK)
        },
    )?;
    Ok(())
}

/// `outbound|6379||redis.static?db=2&buffer_flush_timeout=0` → the cluster and the database.
fn split_upstream(upstream: &str) -> Result<(&str, u32)> {
    let Some((cluster, query)) = upstream.split_once('?') else {
        return Ok((upstream, 0));
    };
    let mut database = 0;
    for pair in query.split('&') {
        if let Some(value) = pair.strip_prefix("db=") {
            database = value
                .parse()
                .map_err(|_| wasmtime::format_err!("bad db in Redis upstream {upstream:?}"))?;
        }
    }
    Ok((cluster, database))
}
