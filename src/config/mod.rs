//! The plugin's configuration: parsed once per `on_configure`, validated with errors that name
//! the field, then shared read-only by every request.

mod balancer;
pub mod document;
mod error_path;
#[cfg(test)]
mod health_tests;
#[cfg(test)]
mod pool_tests;
mod pools;
mod resilience;
#[cfg(test)]
mod routing_tests;
#[cfg(not(target_arch = "wasm32"))]
pub mod schema;
mod scope;
mod source;
mod sources;
#[cfg(test)]
mod tests;
mod validate;
#[cfg(not(target_arch = "wasm32"))]
pub mod yaml;

use std::fmt;

use serde_json::{Map, Value};

pub use balancer::{BalancerConfig, MetricsTarget, Provider};
pub use pools::{Pool, PoolBackend, Pools, UnknownModel};
pub use resilience::{
    HealthPolicy, Probe, ProbeSchedule, RetryPolicy, StatusEndpoint, StatusSet, Upstream,
};
pub use scope::{PathPattern, Scope, DEFAULT_PATHS};
pub use sources::{
    DownPolicy, EngineScrape, InFlightScope, LoadSource, Protocol, Refresh, ReplicaCounters,
    ReplyFormat, StoreConfig, StoreRead,
};

use crate::rules::{RequestIdentity, RuleMatch};
use document::kind;
pub use validate::MAX_LIST_ITEMS;

/// Which module is running: the configuration may ask for what only one of them can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// `ai-load-balancer-envoy.wasm`: proxy-wasm 0.2.1 and WASI only.
    Envoy,
    /// `ai-load-balancer.wasm`: adds Higress's Redis host calls.
    Higress,
}

impl Build {
    pub const fn current() -> Self {
        if cfg!(feature = "higress") {
            Build::Higress
        } else {
            Build::Envoy
        }
    }
}

/// Where in the configuration, and what is wrong there. Boxed: every `Result` of the parsers
/// carries it, and a one-pointer error keeps each of their many `?` small in the module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(Box<Located>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Located {
    path: String,
    reason: String,
}

impl ConfigError {
    pub fn at(path: &str, reason: String) -> Self {
        let path = if path.is_empty() {
            "configuration"
        } else {
            path
        };
        Self(Box::new(Located {
            path: path.to_string(),
            reason,
        }))
    }

    pub fn root(reason: String) -> Self {
        Self::at("", reason)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.path, self.0.reason)
    }
}

impl std::error::Error for ConfigError {}

/// One `_rules_` entry: requests it matches use its configuration.
#[derive(Debug, Clone)]
pub struct Rule {
    pub matcher: RuleMatch,
    pub config: BalancerConfig,
}

/// Which configuration applies to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigRef {
    Global,
    Rule(usize),
}

#[derive(Debug, Clone)]
pub struct PluginConfig {
    pub global: Option<BalancerConfig>,
    pub rules: Vec<Rule>,
    /// Every routing/rewrite header name any configuration uses: a client never gets to send
    /// one of them, whichever configuration applies.
    pub control_headers: Vec<String>,
}

const RULES_KEY: &str = "_rules_";

impl PluginConfig {
    pub fn parse(bytes: &[u8], build: Build) -> Result<Self, ConfigError> {
        let document = source::parse_document(bytes)?;
        let top = document.as_object().ok_or_else(|| {
            ConfigError::root(format!("must be a mapping, got {}", kind(&document)))
        })?;
        let mut defaults = top.clone();
        let rules_value = defaults.remove(RULES_KEY);
        let global = read_document(Value::Object(defaults.clone()), "")?;
        let rules = match &rules_value {
            None | Some(Value::Null) => Vec::new(),
            Some(value) => parse_rules(value, &defaults, build)?,
        };
        let global = if defaults.contains_key("providers") || rules.is_empty() {
            Some(validate::balancer(&global, "", build)?)
        } else {
            // Without providers the global part only supplies defaults to the rules.
            None
        };
        let mut control_headers: Vec<String> = Vec::new();
        for config in global.iter().chain(rules.iter().map(|rule| &rule.config)) {
            for name in [
                &config.selected_provider_header,
                &config.rewrite_model_header,
            ] {
                if !control_headers.contains(name) {
                    control_headers.push(name.clone());
                }
            }
        }
        Ok(Self {
            global,
            rules,
            control_headers,
        })
    }

    /// The first rule matching the request, else the global configuration, else none (the
    /// request passes through untouched).
    pub fn applicable(&self, request: &RequestIdentity<'_>) -> Option<ConfigRef> {
        self.rules
            .iter()
            .position(|rule| rule.matcher.matches(request))
            .map(ConfigRef::Rule)
            .or(self.global.as_ref().map(|_| ConfigRef::Global))
    }

    pub fn get(&self, which: ConfigRef) -> Option<&BalancerConfig> {
        match which {
            ConfigRef::Global => self.global.as_ref(),
            ConfigRef::Rule(index) => self.rules.get(index).map(|rule| &rule.config),
        }
    }

    /// Every distinct configuration, for work done once per configuration (store set-up).
    /// Gathered in a Vec: one iterator type for every caller keeps the module small (a chain
    /// of the two is instantiated again for each caller's closure).
    pub fn all(&self) -> std::vec::IntoIter<&BalancerConfig> {
        let mut all = Vec::with_capacity(1 + self.rules.len());
        if let Some(global) = &self.global {
            all.push(global);
        }
        for rule in &self.rules {
            all.push(&rule.config);
        }
        all.into_iter()
    }
}

/// YAML, natively: turned into JSON as a control plane does before handing it to the module
/// (the tests and tools write configurations in YAML; the module reads JSON only).
#[cfg(not(target_arch = "wasm32"))]
impl PluginConfig {
    pub fn from_yaml(text: &str, build: Build) -> Result<Self, ConfigError> {
        let document =
            yaml::parse(text).map_err(|err| ConfigError::root(format!("invalid YAML: {err}")))?;
        match document {
            Value::Null => Self::parse(b"{}", build),
            document => Self::parse(document.to_string().as_bytes(), build),
        }
    }
}

/// A configuration as written, read by serde: a type or unknown field is refused with its path
/// (under `at`, a rule's place; error_path.rs). Its mappings are read in sorted order
/// everywhere, so that of several faults the same one is named natively, where serde_json
/// keeps the written order (schemars' `preserve_order`), as in the module, where it sorts.
fn read_document(mut value: Value, at: &str) -> Result<document::Balancer, ConfigError> {
    value.sort_all_objects();
    let text = value.to_string();
    serde_json::from_str(&text).map_err(|err| {
        let (inner, mut message) = error_path::error_path(&text, &err);
        if message == "expected value" {
            // serde_json's words for a name (an enum's) given another type: say which.
            let found = value.pointer(&error_path::error_pointer(&text, &err));
            message = format!(
                "must be a name, got {}",
                found.map_or("nothing", document::kind)
            );
        }
        let path = match (at.is_empty(), inner.is_empty()) {
            (_, true) => at.to_string(),
            (true, false) => inner,
            (false, false) if inner.starts_with('[') => format!("{at}{inner}"),
            (false, false) => format!("{at}.{inner}"),
        };
        ConfigError::at(&path, message)
    })
}

fn parse_rules(
    value: &Value,
    defaults: &Map<String, Value>,
    build: Build,
) -> Result<Vec<Rule>, ConfigError> {
    let items = value.as_array().ok_or_else(|| {
        ConfigError::at(RULES_KEY, format!("must be a list, got {}", kind(value)))
    })?;
    validate::check_list_length(items.len(), RULES_KEY)?;
    let mut rules = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let path = format!("{RULES_KEY}[{index}]");
        let entries = item.as_object().ok_or_else(|| {
            ConfigError::at(&path, format!("must be a mapping, got {}", kind(item)))
        })?;
        let matcher = RuleMatch::parse(entries, &path)?;
        // A rule inherits the global fields it does not set (Higress's override semantics).
        let mut merged = defaults.clone();
        for (key, value) in entries {
            if !RuleMatch::is_match_key(key) {
                merged.insert(key.clone(), value.clone());
            }
        }
        let config =
            validate::balancer(&read_document(Value::Object(merged), &path)?, &path, build)?;
        rules.push(Rule { matcher, config });
    }
    Ok(rules)
}
