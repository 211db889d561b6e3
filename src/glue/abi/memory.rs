//! Memory the host writes into: it asks the module for a buffer (`proxy_on_memory_allocate`),
//! fills it and hands back its address; the module then owns it.

/// The host's allocation for `size` bytes, owned by the module from here on.
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    // Left uninitialised: the host writes every byte before it hands the address back.
    let buffer = Box::<[u8]>::new_uninit_slice(size);
    Box::into_raw(buffer).cast::<u8>()
}

/// Takes back a buffer the host filled (`data`, `size` as it answered them).
pub fn take_host_bytes(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() || size == 0 {
        return Vec::new();
    }
    // SAFETY: the host returns a pointer it got from `proxy_on_memory_allocate` for exactly
    // `size` bytes (a boxed slice of that length), and gives up its use.
    unsafe { Vec::from_raw_parts(data, size, size) }
}
