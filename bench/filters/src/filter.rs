//! The proxy-wasm glue. Host calls go through `hostcalls` with their errors logged, never
//! through the trait helpers, which unwrap (a panic would kill the worker's VM).

use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType};

use crate::extra_calls;
use crate::{parse_config, rewrite_model, Mode};

const NAME: &str = "ai-lb-bench-filters";

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| Box::new(Root { mode: None, metrics: Rc::default() }));
}}

pub(crate) fn log(level: LogLevel, message: &str) {
    // Nowhere to report a failed log call.
    let _ = hostcalls::log(level, &format!("{NAME}: {message}"));
}

struct Root {
    mode: Option<Rc<Mode>>,
    /// `body_round_trip`'s counters and histograms, defined once per VM.
    metrics: Rc<extra_calls::Metrics>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        let bytes = match hostcalls::get_buffer(
            BufferType::PluginConfiguration,
            0,
            plugin_configuration_size,
        ) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(status) => {
                log(
                    LogLevel::Error,
                    &format!("cannot read the plugin configuration: {status:?}"),
                );
                return false;
            }
        };
        match parse_config(&bytes) {
            Ok(mode) => {
                log(LogLevel::Info, &format!("configured: {mode:?}"));
                if let Mode::StoreRoundTrip {
                    shared_data_key: Some(key),
                    ..
                } = &mode
                {
                    publish(key);
                }
                if let Mode::BodyRoundTrip { calls, .. } = &mode {
                    self.metrics = Rc::new(extra_calls::prepare(calls));
                }
                self.mode = Some(Rc::new(mode));
                true
            }
            Err(err) => {
                log(LogLevel::Error, &format!("invalid configuration: {err}"));
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Filter {
            mode: self.mode.clone(),
            metrics: Rc::clone(&self.metrics),
            awaiting_store: false,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// What the requests of `store_round_trip` with `shared_data_key` read: a value of the size the
/// real filter publishes for two providers' loads.
fn publish(key: &str) {
    let loads = br#"{"at":0,"loads":[30,10]}"#;
    if let Err(status) = hostcalls::set_shared_data(key, Some(loads), None) {
        log(
            LogLevel::Warn,
            &format!("writing shared data {key:?}: {status:?}"),
        );
    }
}

struct Filter {
    /// `None` without a valid configuration: every request passes through.
    mode: Option<Rc<Mode>>,
    metrics: Rc<extra_calls::Metrics>,
    /// `store_round_trip`: the Webdis call is out and the request is held.
    awaiting_store: bool,
}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if end_of_stream {
            return Action::Continue; // no body: nothing to balance or rewrite
        }
        match self.mode.as_deref() {
            Some(Mode::StoreRoundTrip {
                cluster,
                path,
                timeout_ms,
                ..
            }) => {
                let headers = vec![
                    (":method", "GET"),
                    (":path", path.as_str()),
                    (":authority", cluster.as_str()),
                ];
                let timeout = Duration::from_millis(*timeout_ms);
                match hostcalls::dispatch_http_call(cluster, headers, None, Vec::new(), timeout) {
                    Ok(_) => {
                        self.awaiting_store = true;
                        Action::Pause
                    }
                    Err(status) => {
                        log(
                            LogLevel::Warn,
                            &format!("call to cluster {cluster:?} refused: {status:?}"),
                        );
                        Action::Continue
                    }
                }
            }
            // The body's length may change (serde_rewrite) and buffer_only mirrors it, so both
            // send the body upstream chunked. The headers go on now, as the real filter's do
            // under Envoy's default (allow_on_headers_stop_iteration off).
            Some(Mode::SerdeRewrite { .. } | Mode::BufferOnly) => {
                remove_content_length();
                Action::Continue
            }
            // Decided at the headers, as the real filter does when it chooses on them: the body
            // then streams, each chunk copied as it passes.
            Some(Mode::BodyRoundTrip {
                at_headers: true,
                route_to,
                calls,
            }) => {
                route_to_next(route_to);
                remove_content_length();
                extra_calls::make(calls, &self.metrics);
                Action::Continue
            }
            // Held until the body is whole, as the real filter holds them.
            Some(Mode::BodyRoundTrip { .. }) => Action::Pause,
            Some(Mode::Noop) | None => Action::Continue,
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        match self.mode.as_deref() {
            // With allow_on_headers_stop_iteration the body arrives while the headers are held;
            // Continue here would release them before the store answered.
            Some(Mode::StoreRoundTrip { .. }) if self.awaiting_store => Action::Pause,
            Some(Mode::SerdeRewrite { .. } | Mode::BufferOnly) if !end_of_stream => Action::Pause,
            Some(Mode::SerdeRewrite { new_model }) => {
                rewrite_body(body_size, new_model);
                Action::Continue
            }
            Some(Mode::BodyRoundTrip {
                at_headers: true, ..
            }) => {
                if body_size > 0 {
                    copy_body_back(body_size); // this chunk, as it passes
                }
                Action::Continue
            }
            Some(Mode::BodyRoundTrip { .. }) if !end_of_stream => Action::Pause,
            Some(Mode::BodyRoundTrip {
                route_to, calls, ..
            }) => {
                copy_body_back(body_size);
                route_to_next(route_to);
                extra_calls::make(calls, &self.metrics);
                Action::Continue
            }
            _ => Action::Continue,
        }
    }

    /// `body_round_trip`'s response-side calls; the response passes unchanged, never held.
    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if let Some(Mode::BodyRoundTrip { calls, .. }) = self.mode.as_deref() {
            extra_calls::at_response_headers(calls, &self.metrics, end_of_stream);
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if let Some(Mode::BodyRoundTrip { calls, .. }) = self.mode.as_deref() {
            extra_calls::at_response_body(calls, &self.metrics, body_size, end_of_stream);
        }
        Action::Continue
    }
}

fn remove_content_length() {
    if let Err(status) = hostcalls::remove_map_value(MapType::HttpRequestHeaders, "content-length")
    {
        log(
            LogLevel::Warn,
            &format!("removing content-length: {status:?}"),
        );
    }
}

/// Replaces the whole buffered body with its rewrite; leaves it untouched when it is not a JSON
/// object or cannot be read.
fn rewrite_body(body_size: usize, new_model: &str) {
    let body = match hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size) {
        Ok(body) => body.unwrap_or_default(),
        Err(status) => {
            log(LogLevel::Warn, &format!("reading the body: {status:?}"));
            return;
        }
    };
    let Some(rewritten) = rewrite_model(&body, new_model) else {
        return;
    };
    if let Err(status) =
        hostcalls::set_buffer(BufferType::HttpRequestBody, 0, body_size, &rewritten)
    {
        log(LogLevel::Warn, &format!("replacing the body: {status:?}"));
    }
}

thread_local! {
    /// `route_to`'s turn, per VM.
    static NEXT_ROUTE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Sets `x-selected-provider` to the next of `names` and re-matches the route (nothing to do
/// without names).
fn route_to_next(names: &[String]) {
    if names.is_empty() {
        return;
    }
    let turn = NEXT_ROUTE.with(|next| next.replace(next.get().wrapping_add(1)));
    let name = &names[turn % names.len()];
    if let Err(status) = hostcalls::set_map_value(
        MapType::HttpRequestHeaders,
        "x-selected-provider",
        Some(name),
    ) {
        log(
            LogLevel::Warn,
            &format!("setting x-selected-provider: {status:?}"),
        );
    }
    // Envoy re-matches the route on this; the error (a host without it) does not matter.
    let _ = hostcalls::call_foreign_function("clear_route_cache", Some(&[]));
}

/// The body in the buffer (the whole of it, or the chunk passing) into the VM and back,
/// unchanged.
fn copy_body_back(body_size: usize) {
    let body = match hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size) {
        Ok(body) => body.unwrap_or_default(),
        Err(status) => {
            log(LogLevel::Warn, &format!("reading the body: {status:?}"));
            return;
        }
    };
    if let Err(status) = hostcalls::set_buffer(BufferType::HttpRequestBody, 0, body_size, &body) {
        log(LogLevel::Warn, &format!("replacing the body: {status:?}"));
    }
}

impl Context for Filter {
    /// Any outcome (reply, error, timeout) ends the wait the same way: this mode measures the
    /// round trip, not what the store says.
    fn on_http_call_response(
        &mut self,
        _token: u32,
        _headers: usize,
        _body: usize,
        _trailers: usize,
    ) {
        if !self.awaiting_store {
            return;
        }
        self.awaiting_store = false;
        if let Some(Mode::StoreRoundTrip {
            shared_data_key: Some(key),
            ..
        }) = self.mode.as_deref()
        {
            if let Err(status) = hostcalls::get_shared_data(key) {
                log(
                    LogLevel::Warn,
                    &format!("reading shared data {key:?}: {status:?}"),
                );
            }
        }
        if let Err(status) = hostcalls::set_map_value(
            MapType::HttpRequestHeaders,
            "x-selected-provider",
            Some("minmax"),
        ) {
            log(
                LogLevel::Warn,
                &format!("setting x-selected-provider: {status:?}"),
            );
        }
        // Envoy re-matches the route on this; the error (a host without it) does not matter.
        let _ = hostcalls::call_foreign_function("clear_route_cache", Some(&[]));
        if let Err(status) = hostcalls::resume_http_request() {
            log(LogLevel::Warn, &format!("resuming the request: {status:?}"));
        }
    }
}
