//! Requests the tick comes back to: those to resume from a later turn of the host's event loop
//! (trailers behind a body the filter held), and those held for a body the host may never
//! deliver (`BODY_WAIT_MS`). While any is waiting the tick runs faster, then goes back to the
//! period the periodic work wants.

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::time::Duration;

use log::{debug, warn};

use super::abi::{self, StreamType};
use super::root::{set_tick, Shared};
use crate::background::schedule::tick_while_waiting;
use crate::flow::{RequestFlow, BODY_WAIT_MS, NOT_RESUMED};

pub struct Waits {
    resumes: Vec<u32>,
    bodies: Vec<BodyWait>,
    /// The warning about a host that holds bodies back was logged (once per worker).
    warned: bool,
    /// The tick period set now. Setting it restarts Envoy's timer, so it is set only when it
    /// changes: requests arriving faster than the tick must not keep postponing it.
    tick: Duration,
}

impl Waits {
    /// `tick`: the period the root context has set.
    pub fn new(tick: Duration) -> Self {
        Self {
            resumes: Vec::new(),
            bodies: Vec::new(),
            warned: false,
            tick,
        }
    }

    /// The tick period set now, in milliseconds.
    pub fn tick_ms(&self) -> u64 {
        u64::try_from(self.tick.as_millis()).unwrap_or(u64::MAX)
    }
}

struct BodyWait {
    context_id: u32,
    due_ms: u64,
    flow: Weak<RefCell<RequestFlow>>,
}

/// Resumes the request `context_id` from the next tick.
pub fn resume_on_next_tick(shared: &Shared, context_id: u32) {
    if let Ok(mut waits) = shared.waits.try_borrow_mut() {
        waits.resumes.push(context_id);
    }
    retune_tick(shared);
}

/// Looks again at the request `context_id`, held for its body, `BODY_WAIT_MS` from now.
pub fn watch_body(shared: &Shared, context_id: u32, flow: &Rc<RefCell<RequestFlow>>) {
    if let Ok(mut waits) = shared.waits.try_borrow_mut() {
        waits.bodies.push(BodyWait {
            context_id,
            due_ms: super::now_ms().saturating_add(BODY_WAIT_MS),
            flow: Rc::downgrade(flow),
        });
    }
    retune_tick(shared);
}

/// A request that ended is neither resumed nor looked at again.
pub fn forget(shared: &Shared, context_id: u32) {
    if let Ok(mut waits) = shared.waits.try_borrow_mut() {
        waits.resumes.retain(|id| *id != context_id);
        waits.bodies.retain(|wait| wait.context_id != context_id);
    }
}

pub fn on_tick(shared: &Rc<Shared>) {
    let now_ms = super::now_ms();
    let (resumes, expired) = match shared.waits.try_borrow_mut() {
        Ok(mut waits) => {
            let resumes = std::mem::take(&mut waits.resumes);
            let (expired, waiting) = std::mem::take(&mut waits.bodies)
                .into_iter()
                .partition(|wait| wait.due_ms <= now_ms);
            waits.bodies = waiting;
            (resumes, expired)
        }
        Err(_) => return,
    };
    let had_work = !resumes.is_empty() || !expired.is_empty();
    for context_id in resumes {
        resume(context_id);
    }
    for wait in expired {
        release_unbalanced(shared, wait);
    }
    if had_work {
        if let Err(err) = abi::set_effective_context(shared.root_context_id) {
            debug!("ai-load-balancer: root context not current again: {err}");
        }
        retune_tick(shared);
    }
}

fn resume(context_id: u32) {
    match abi::set_effective_context(context_id) {
        Ok(()) => {
            if let Err(err) = abi::continue_stream(StreamType::Request) {
                warn!("ai-load-balancer: resuming the request: {err}");
                // Answered rather than left held until its stream's timeout.
                let headers = [("content-type", "application/json")];
                if let Err(err) = abi::send_local_response(503, &headers, NOT_RESUMED) {
                    warn!("ai-load-balancer: answering the request: {err}");
                }
            }
        }
        Err(err) => debug!("ai-load-balancer: request {context_id} gone: {err}"),
    }
}

/// A request still held for a body that never came goes on unbalanced.
fn release_unbalanced(shared: &Rc<Shared>, wait: BodyWait) {
    let Some(flow) = wait.flow.upgrade() else {
        return;
    };
    if let Err(err) = abi::set_effective_context(wait.context_id) {
        debug!("ai-load-balancer: request {} gone: {err}", wait.context_id);
        return;
    }
    let released =
        super::filter::run_step(shared, &flow, wait.context_id, false, |flow, host, _| {
            flow.on_body_wait_over(host)
        });
    let first = released
        && shared
            .waits
            .try_borrow_mut()
            .is_ok_and(|mut waits| !std::mem::replace(&mut waits.warned, true));
    if first {
        warn!(
            "ai-load-balancer: a request waited {BODY_WAIT_MS} ms for a body the gateway does \
             not hand to held headers, and went on unbalanced; models and retry need it: set \
             allow_on_headers_stop_iteration: true on the Envoy wasm filter (Istio: the \
             EnvoyFilter, not a WasmPlugin). Counted in ai_lb.requests.body_not_delivered"
        );
    }
}

/// The tick the waiting requests and the periodic work need now.
fn retune_tick(shared: &Shared) {
    let Ok(mut waits) = shared.waits.try_borrow_mut() else {
        return;
    };
    let period = tick_while_waiting(
        shared.tick_period,
        !waits.resumes.is_empty(),
        !waits.bodies.is_empty(),
    );
    if period != waits.tick {
        waits.tick = period;
        drop(waits);
        set_tick(period);
    }
}
