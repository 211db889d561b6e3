//! The WASI (preview 1) calls a Rust `wasm32-wasip1` module imports: time from the host's clock,
//! randomness from a per-VM seeded generator (runs are reproducible), stdout and stderr captured.

use wasmtime::{bail, Caller, Linker, Result};

use super::memory::{read, write, write_u32, write_u64};
use super::vm::{LogLine, VmState};

const MODULE: &str = "wasi_snapshot_preview1";
const SUCCESS: i32 = 0;
const BADF: i32 = 8;
const INVAL: i32 = 28;

type Ctx<'a> = Caller<'a, VmState>;

pub fn define(linker: &mut Linker<VmState>) -> Result<()> {
    // No arguments and no environment.
    for (name, _) in [("args_sizes_get", ()), ("environ_sizes_get", ())] {
        linker.func_wrap(MODULE, name, |mut c: Ctx, count: i32, size: i32| {
            write_u32(&mut c, count, 0)?;
            write_u32(&mut c, size, 0)?;
            Ok(SUCCESS)
        })?;
    }
    for name in ["args_get", "environ_get"] {
        linker.func_wrap(MODULE, name, |_: Ctx, _: i32, _: i32| Ok(SUCCESS))?;
    }
    linker.func_wrap(
        MODULE,
        "clock_time_get",
        |mut c: Ctx, id: i32, _precision: i64, out: i32| {
            let process = c.data().process.borrow();
            let now = match id {
                0 => process.realtime_ns(),
                1..=3 => process.monotonic_ns(),
                _ => return Ok(INVAL),
            };
            drop(process);
            write_u64(&mut c, out, now)?;
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(MODULE, "clock_res_get", |mut c: Ctx, _id: i32, out: i32| {
        write_u64(&mut c, out, 1)?;
        Ok(SUCCESS)
    })?;
    linker.func_wrap(MODULE, "random_get", |mut c: Ctx, ptr: i32, len: i32| {
        let mut bytes = vec![0u8; len as u32 as usize];
        for byte in &mut bytes {
            *byte = next_random(c.data_mut()) as u8;
        }
        write(&mut c, ptr, &bytes)?;
        Ok(SUCCESS)
    })?;
    linker.func_wrap(
        MODULE,
        "fd_write",
        |mut c: Ctx, fd: i32, iovs: i32, iovs_len: i32, written: i32| {
            if fd != 1 && fd != 2 {
                return Ok(BADF);
            }
            let mut total = 0u32;
            for index in 0..iovs_len {
                let entry = read(&mut c, iovs + index * 8, 8)?;
                let ptr = i32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]);
                let len = i32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]);
                let bytes = read(&mut c, ptr, len)?;
                total += bytes.len() as u32;
                c.data_mut().stdio.extend_from_slice(&bytes);
            }
            write_u32(&mut c, written, total)?;
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(MODULE, "proc_exit", |mut c: Ctx, code: i32| -> Result<()> {
        let output = String::from_utf8_lossy(&c.data().stdio).into_owned();
        c.data_mut().logs.push(LogLine {
            level: 5,
            message: format!("proc_exit({code})"),
        });
        bail!("the filter called proc_exit({code}); its output: {output}")
    })?;
    linker.func_wrap(MODULE, "sched_yield", |_: Ctx| Ok(SUCCESS))?;
    // No files: every descriptor but stdio is unknown, and there are no preopened directories.
    linker.func_wrap(MODULE, "fd_close", |_: Ctx, _: i32| Ok(BADF))?;
    linker.func_wrap(MODULE, "fd_prestat_get", |_: Ctx, _: i32, _: i32| Ok(BADF))?;
    linker.func_wrap(
        MODULE,
        "fd_prestat_dir_name",
        |_: Ctx, _: i32, _: i32, _: i32| Ok(BADF),
    )?;
    linker.func_wrap(MODULE, "fd_fdstat_get", |_: Ctx, _: i32, _: i32| Ok(BADF))?;
    linker.func_wrap(
        MODULE,
        "fd_seek",
        |_: Ctx, _: i32, _: i64, _: i32, _: i32| Ok(BADF),
    )?;
    Ok(())
}

/// wyrand: small, fast, and good enough for the filter's tie-breaking.
fn next_random(state: &mut VmState) -> u64 {
    state.random = state.random.wrapping_add(0xa076_1d64_78bd_642f);
    let product = u128::from(state.random) * u128::from(state.random ^ 0xe703_7ed1_a0b4_28db);
    ((product >> 64) ^ product) as u64
}
