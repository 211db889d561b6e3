//! Reading and writing the guest's linear memory, and handing it bytes the way proxy-wasm hosts
//! do: memory from the module's own allocator (`proxy_on_memory_allocate`), owned by the module.

use wasmtime::{bail, format_err, Caller, Extern, Memory, Result};

use super::vm::VmState;

/// An export of the calling module. A host function reached through the fault wrapper
/// (`faults.rs`) is called from the host, not from wasm, so its caller has no instance: the
/// VM's own instance answers then.
fn export(caller: &mut Caller<'_, VmState>, name: &str) -> Option<Extern> {
    if let Some(found) = caller.get_export(name) {
        return Some(found);
    }
    let instance = caller.data().instance?;
    instance.get_export(&mut *caller, name)
}

fn memory(caller: &mut Caller<'_, VmState>) -> Result<Memory> {
    export(caller, "memory")
        .and_then(Extern::into_memory)
        .ok_or_else(|| format_err!("the module exports no memory"))
}

/// Books a copy across the ABI to the import running now (none: the host's own access, from a
/// test, which is not the filter's cost).
fn book(caller: &Caller<'_, VmState>, bytes: usize, into_vm: bool) {
    let Some(import) = caller.data().current_import.as_deref() else {
        return;
    };
    let mut process = caller.data().process.borrow_mut();
    if into_vm {
        process.ledger.copied_in(import, bytes);
    } else {
        process.ledger.copied_out(import, bytes);
    }
}

pub fn read(caller: &mut Caller<'_, VmState>, ptr: i32, len: i32) -> Result<Vec<u8>> {
    let memory = memory(caller)?;
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    let data = memory.data(&*caller);
    let bytes = match data.get(start..start.saturating_add(len)) {
        Some(bytes) => bytes.to_vec(),
        None => bail!(
            "guest range {start}+{len} is outside memory ({} bytes)",
            data.len()
        ),
    };
    book(caller, bytes.len(), false);
    Ok(bytes)
}

pub fn read_string(caller: &mut Caller<'_, VmState>, ptr: i32, len: i32) -> Result<String> {
    String::from_utf8(read(caller, ptr, len)?)
        .map_err(|err| format_err!("guest string is not UTF-8: {err}"))
}

/// Writes a payload (a value, a buffer, random bytes) into the VM, booked in the ledger.
pub fn write(caller: &mut Caller<'_, VmState>, ptr: i32, bytes: &[u8]) -> Result<()> {
    book(caller, bytes.len(), true);
    write_unbooked(caller, ptr, bytes)
}

/// An out-parameter (address, length, CAS, clock value): not payload, not booked.
fn write_unbooked(caller: &mut Caller<'_, VmState>, ptr: i32, bytes: &[u8]) -> Result<()> {
    let memory = memory(caller)?;
    memory
        .write(&mut *caller, ptr as u32 as usize, bytes)
        .map_err(|err| format_err!("writing {} bytes at {ptr}: {err}", bytes.len()))
}

pub fn write_u32(caller: &mut Caller<'_, VmState>, ptr: i32, value: u32) -> Result<()> {
    write_unbooked(caller, ptr, &value.to_le_bytes())
}

pub fn write_u64(caller: &mut Caller<'_, VmState>, ptr: i32, value: u64) -> Result<()> {
    write_unbooked(caller, ptr, &value.to_le_bytes())
}

/// Copies `bytes` into memory from the module's allocator and stores its address and length at
/// `return_ptr` and `return_len`, as `proxy_get_buffer_bytes` and friends do.
pub fn hand_over(
    caller: &mut Caller<'_, VmState>,
    bytes: &[u8],
    return_ptr: i32,
    return_len: i32,
) -> Result<()> {
    let address = if bytes.is_empty() {
        0
    } else {
        let allocate = export(caller, "proxy_on_memory_allocate")
            .and_then(Extern::into_func)
            .ok_or_else(|| format_err!("the module exports no proxy_on_memory_allocate"))?
            .typed::<i32, i32>(&*caller)?;
        let address = allocate.call(&mut *caller, bytes.len() as i32)?;
        if address == 0 {
            bail!("proxy_on_memory_allocate({}) returned null", bytes.len());
        }
        write(caller, address, bytes)?;
        address
    };
    write_u32(caller, return_ptr, address as u32)?;
    write_u32(caller, return_len, bytes.len() as u32)
}

/// proxy-wasm's header map encoding: count, then each key and value length, then each key and
/// value followed by a NUL.
pub fn encode_pairs(pairs: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (key, value) in pairs {
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    }
    for (key, value) in pairs {
        out.extend_from_slice(key.as_bytes());
        out.push(0);
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    out
}

pub fn decode_pairs(bytes: &[u8]) -> Result<Vec<(String, String)>> {
    let word = |at: usize| -> Result<usize> {
        let raw = bytes
            .get(at..at + 4)
            .ok_or_else(|| format_err!("header map truncated at byte {at}"))?;
        Ok(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize)
    };
    let count = if bytes.is_empty() { 0 } else { word(0)? };
    let mut sizes = Vec::with_capacity(count);
    for index in 0..count {
        sizes.push((word(4 + index * 8)?, word(8 + index * 8)?));
    }
    let mut at = 4 + count * 8;
    let mut take = |len: usize| -> Result<String> {
        let text = bytes
            .get(at..at + len)
            .ok_or_else(|| format_err!("header map truncated at byte {at}"))?;
        let text = String::from_utf8(text.to_vec())?;
        at += len + 1; // the NUL after each string
        Ok(text)
    };
    sizes
        .into_iter()
        .map(|(key, value)| Ok((take(key)?, take(value)?)))
        .collect()
}
