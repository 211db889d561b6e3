//! The module's exports: the host calls these, and each is routed to its root context or HTTP
//! context. A callback for a context the module does not know (or one already busy, were the
//! host to re-enter) gets the answer that lets traffic go on; nothing here can panic.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::Action;
use crate::glue::filter::Filter;
use crate::glue::root::Root;

#[derive(Default)]
struct Registry {
    roots: BTreeMap<u32, Rc<RefCell<Root>>>,
    filters: BTreeMap<u32, Rc<RefCell<Filter>>>,
    /// The context each pending HTTP call's reply goes to, by the call's token.
    calls: BTreeMap<u32, u32>,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

fn root(context_id: u32) -> Option<Rc<RefCell<Root>>> {
    REGISTRY.with(|registry| registry.try_borrow().ok()?.roots.get(&context_id).cloned())
}

fn filter(context_id: u32) -> Option<Rc<RefCell<Filter>>> {
    REGISTRY.with(|registry| {
        registry
            .try_borrow()
            .ok()?
            .filters
            .get(&context_id)
            .cloned()
    })
}

fn with_registry(change: impl FnOnce(&mut Registry)) {
    REGISTRY.with(|registry| {
        if let Ok(mut registry) = registry.try_borrow_mut() {
            change(&mut registry);
        }
    });
}

/// Runs `step` on a context; `fallback` when it is unknown or busy.
fn run<C, T>(context: Option<Rc<RefCell<C>>>, fallback: T, step: impl FnOnce(&mut C) -> T) -> T {
    match context.as_ref().map(|context| context.try_borrow_mut()) {
        Some(Ok(mut context)) => step(&mut context),
        _ => fallback,
    }
}

fn on_filter<T>(context_id: u32, fallback: T, step: impl FnOnce(&mut Filter) -> T) -> T {
    run(filter(context_id), fallback, step)
}

fn on_root<T>(context_id: u32, fallback: T, step: impl FnOnce(&mut Root) -> T) -> T {
    run(root(context_id), fallback, step)
}

/// Routes the reply of HTTP call `token` to the context that sent it.
pub fn register_call(token: u32, context_id: u32) {
    with_registry(|registry| {
        registry.calls.insert(token, context_id);
    });
}

extern "C" {
    #[cfg(target_os = "wasi")]
    fn __wasm_call_ctors();
}

/// The reactor's entry point: static constructors, then the logger.
#[no_mangle]
pub extern "C" fn _initialize() {
    #[cfg(target_os = "wasi")]
    // SAFETY: the linker-provided constructor runner, called once, first, as reactors must.
    unsafe {
        __wasm_call_ctors();
    }
    super::install_logger();
}

/// Tells the host which ABI the module speaks (and, for Higress, that its Redis calls apply).
#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_root_id: u32, _vm_configuration_size: usize) -> u32 {
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(context_id: u32, root_id: u32) {
    if root_id == 0 {
        let root = Rc::new(RefCell::new(Root::new(context_id)));
        with_registry(|registry| {
            registry.roots.insert(context_id, root);
        });
        return;
    }
    // A stream under an unknown root passes through (`Filter::new` with no shared state).
    let shared = on_root(root_id, None, |root| root.shared());
    let filter = Rc::new(RefCell::new(Filter::new(context_id, shared)));
    with_registry(|registry| {
        registry.filters.insert(context_id, filter);
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(root_id: u32, configuration_size: usize) -> u32 {
    u32::from(on_root(root_id, false, |root| {
        root.on_configure(configuration_size)
    }))
}

#[no_mangle]
pub extern "C" fn proxy_on_tick(root_id: u32) {
    on_root(root_id, (), Root::on_tick);
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(context_id: u32, _headers: usize, end: u32) -> u32 {
    on_filter(context_id, Action::Continue, |filter| {
        filter.on_request_headers(end != 0)
    }) as u32
}

#[no_mangle]
pub extern "C" fn proxy_on_request_body(context_id: u32, body_size: usize, end: u32) -> u32 {
    on_filter(context_id, Action::Continue, |filter| {
        filter.on_request_body(body_size, end != 0)
    }) as u32
}

#[no_mangle]
pub extern "C" fn proxy_on_request_trailers(context_id: u32, _trailers: usize) -> u32 {
    on_filter(context_id, Action::Continue, Filter::on_request_trailers) as u32
}

#[no_mangle]
pub extern "C" fn proxy_on_response_headers(context_id: u32, _headers: usize, end: u32) -> u32 {
    on_filter(context_id, Action::Continue, |filter| {
        filter.on_response_headers(end != 0)
    }) as u32
}

#[no_mangle]
pub extern "C" fn proxy_on_response_body(context_id: u32, body_size: usize, end: u32) -> u32 {
    on_filter(context_id, Action::Continue, |filter| {
        filter.on_response_body(body_size, end != 0)
    }) as u32
}

#[no_mangle]
pub extern "C" fn proxy_on_response_trailers(context_id: u32, _trailers: usize) -> u32 {
    on_filter(context_id, Action::Continue, Filter::on_response_trailers) as u32
}

#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(
    _context_id: u32,
    token: u32,
    headers: usize,
    body_size: usize,
    _trailers: usize,
) {
    let mut owner = None;
    with_registry(|registry| owner = registry.calls.remove(&token));
    let Some(owner) = owner else {
        return; // a call whose context ended, or one the module never made
    };
    // The reply's headers and body are read, and the request touched, as its own context.
    if let Err(err) = super::set_effective_context(owner) {
        log::debug!("ai-load-balancer: reply of call {token} for a gone context: {err}");
        return;
    }
    if filter(owner).is_some() {
        on_filter(owner, (), |filter| {
            filter.on_http_call_response(headers, body_size)
        });
    } else {
        on_root(owner, (), |root| {
            root.on_http_call_response(token, headers, body_size)
        });
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_done(context_id: u32) -> u32 {
    on_filter(context_id, (), Filter::on_done);
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_log(_context_id: u32) {}

#[no_mangle]
pub extern "C" fn proxy_on_delete(context_id: u32) {
    with_registry(|registry| {
        registry.filters.remove(&context_id);
        registry.roots.remove(&context_id);
        // Replies to calls of a deleted context have nowhere to go.
        registry.calls.retain(|_, owner| *owner != context_id);
    });
}
