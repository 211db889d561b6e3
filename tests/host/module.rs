//! The filter's built modules, compiled once per test binary. A missing or stale `dist/*.wasm`
//! is rebuilt with `make build` first, so a test never runs yesterday's filter. `AI_LB_DIST`
//! names another directory of built modules to run instead, as they are (an older build, to
//! show that a test fails on it).

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use wasmtime::{Config, Engine, Module, Strategy};

/// Which module to load: they differ only in Higress's Redis calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// `dist/ai-load-balancer-envoy.wasm`: proxy-wasm 0.2.1 and WASI only.
    Envoy,
    /// `dist/ai-load-balancer.wasm`: adds `proxy_redis_init` / `proxy_redis_call`.
    Higress,
}

impl Build {
    pub fn file_name(self) -> &'static str {
        match self {
            Build::Envoy => "ai-load-balancer-envoy.wasm",
            Build::Higress => "ai-load-balancer.wasm",
        }
    }
}

fn project() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        // Winch, wasmtime's baseline compiler, compiles the filter in under a second even in a
        // debug build of the tests (Cranelift takes ~9 s); it implements the same semantics.
        if cfg!(target_arch = "x86_64") {
            config.strategy(Strategy::Winch);
        }
        // Fuel counts the wasm instructions the filter runs (tests/host_call_budget.rs): a
        // measure of its own work that is the same on every machine.
        config.consume_fuel(true);
        Engine::new(&config).unwrap_or_else(|err| panic!("creating the wasmtime engine: {err:?}"))
    })
}

/// The filter module of `build`, compiled once per test binary.
pub fn filter(build: Build) -> Module {
    static MODULES: OnceLock<[OnceLock<Module>; 2]> = OnceLock::new();
    let slots = MODULES.get_or_init(Default::default);
    let slot = &slots[build as usize];
    slot.get_or_init(|| {
        let path = module_path(build);
        Module::from_file(engine(), &path)
            .unwrap_or_else(|err| panic!("compiling {}: {err:?}", path.display()))
    })
    .clone()
}

/// Where the module of `build` is (`AI_LB_DIST`, or `dist/` rebuilt first when stale).
pub fn module_path(build: Build) -> PathBuf {
    let dist = match std::env::var_os("AI_LB_DIST") {
        Some(dist) => PathBuf::from(dist),
        None => {
            ensure_fresh_build();
            project().join("dist")
        }
    };
    dist.join(build.file_name())
}

/// A module written in the WebAssembly text format (tests of the host itself).
pub fn from_wat(text: &str) -> Module {
    Module::new(engine(), text).unwrap_or_else(|err| panic!("compiling WAT: {err:?}"))
}

/// Rebuilds `dist/` when a module is missing or older than the sources, once per test binary.
fn ensure_fresh_build() {
    static CHECKED: Mutex<bool> = Mutex::new(false);
    let mut checked = CHECKED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if *checked {
        return;
    }
    let root = project();
    let sources = newest(&[
        root.join("src"),
        root.join("Cargo.toml"),
        root.join("Cargo.lock"),
    ]);
    let stale = [Build::Envoy, Build::Higress].iter().any(|build| {
        let built = std::fs::metadata(root.join("dist").join(build.file_name()))
            .and_then(|meta| meta.modified())
            .ok();
        built.is_none_or(|built| built < sources)
    });
    if stale {
        eprintln!("dist/*.wasm is missing or older than src/: running `make build`");
        let output = Command::new("make")
            .arg("build")
            .current_dir(&root)
            .output()
            .unwrap_or_else(|err| panic!("cannot run `make build` ({err}); run it by hand"));
        assert!(
            output.status.success(),
            "`make build` failed; fix the build and run it by hand:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    *checked = true;
}

fn newest(paths: &[PathBuf]) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut pending: Vec<PathBuf> = paths.to_vec();
    while let Some(path) = pending.pop() {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                pending.extend(entries.flatten().map(|entry| entry.path()));
            }
        } else if let Ok(modified) = meta.modified() {
            newest = newest.max(modified);
        }
    }
    newest
}
