//! `log` records go to the host's log; a host that refuses one loses that line, nothing more.

use std::sync::atomic::{AtomicBool, Ordering};

struct HostLogger;

static LOGGER: HostLogger = HostLogger;
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Installs the logger once, at trace level until `follow_host_level`. It makes no host call:
/// Envoy refuses every host call while the module initialises ("restricted_callback").
pub fn install() {
    if !INSTALLED.swap(true, Ordering::Relaxed) {
        // Fails only if another logger is set, and there is none.
        let _ = log::set_logger(&LOGGER);
        // A panic aborts the VM (panic = "abort"); say why first.
        std::panic::set_hook(Box::new(|info| {
            let _ = super::log(CRITICAL, &info.to_string());
        }));
    }
    log::set_max_level(log::LevelFilter::Trace);
}

/// Shows only the records the host would print: the rest cost nothing.
pub fn follow_host_level() {
    let filter = match super::log_level() {
        Ok(0) | Err(_) => log::LevelFilter::Trace,
        Ok(1) => log::LevelFilter::Debug,
        Ok(2) => log::LevelFilter::Info,
        Ok(3) => log::LevelFilter::Warn,
        Ok(4) => log::LevelFilter::Error,
        Ok(_) => log::LevelFilter::Off,
    };
    log::set_max_level(filter);
}

const CRITICAL: u32 = 5;

impl log::Log for HostLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Trace => 0,
            log::Level::Debug => 1,
            log::Level::Info => 2,
            log::Level::Warn => 3,
            log::Level::Error => 4,
        };
        let _ = super::log(level, &record.args().to_string());
    }

    fn flush(&self) {}
}
