//! Higress's `_rules_`: per-route, per-domain, per-service and per-route-prefix configuration,
//! matched against the request's `route_name`, `cluster_name` and `:authority`.

use serde_json::{Map, Value};

use crate::config::ConfigError;

/// What the host tells us about a request, for rule matching.
#[derive(Debug, Default, Clone, Copy)]
pub struct RequestIdentity<'a> {
    pub route_name: Option<&'a str>,
    pub cluster_name: Option<&'a str>,
    pub authority: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleMatch {
    Route(Vec<String>),
    RoutePrefix(Vec<String>),
    Domain(Vec<String>),
    Service(Vec<String>),
}

impl RuleMatch {
    pub const MATCH_KEYS: &'static [&'static str] = &[
        "_match_route_",
        "_match_route_prefix_",
        "_match_domain_",
        "_match_service_",
    ];

    pub fn is_match_key(key: &str) -> bool {
        Self::MATCH_KEYS.contains(&key)
    }

    /// A rule carries exactly one `_match_*_` key whose value is a non-empty list of names.
    pub fn parse(rule: &Map<String, Value>, path: &str) -> Result<Self, ConfigError> {
        let mut present: Vec<&str> = Vec::new();
        for key in Self::MATCH_KEYS {
            if rule.contains_key(*key) {
                present.push(key);
            }
        }
        let key = match present.as_slice() {
            [key] => *key,
            [] => {
                return Err(ConfigError::at(
                    path,
                    format!("needs one of {}", Self::MATCH_KEYS.join(", ")),
                ))
            }
            _ => {
                return Err(ConfigError::at(
                    path,
                    format!("has {}; a rule takes exactly one", present.join(" and ")),
                ))
            }
        };
        let key_path = format!("{path}.{key}");
        let names = rule
            .get(key)
            .and_then(Value::as_array)
            .ok_or_else(|| ConfigError::at(&key_path, "must be a list of names".into()))?;
        if names.is_empty() {
            return Err(ConfigError::at(&key_path, "must not be empty".into()));
        }
        let mut list = Vec::with_capacity(names.len());
        for (index, name) in names.iter().enumerate() {
            match name.as_str() {
                Some(text) if !text.trim().is_empty() => list.push(text.trim().to_string()),
                _ => {
                    return Err(ConfigError::at(
                        &format!("{key_path}[{index}]"),
                        "must be a non-empty string".into(),
                    ))
                }
            }
        }
        Ok(match key {
            "_match_route_" => RuleMatch::Route(list),
            "_match_route_prefix_" => RuleMatch::RoutePrefix(list),
            "_match_domain_" => {
                for domain in &mut list {
                    domain.make_ascii_lowercase();
                }
                RuleMatch::Domain(list)
            }
            _ => RuleMatch::Service(list),
        })
    }

    pub fn matches(&self, request: &RequestIdentity<'_>) -> bool {
        match self {
            RuleMatch::Route(names) => request
                .route_name
                .is_some_and(|route| names.iter().any(|name| name == route)),
            RuleMatch::RoutePrefix(prefixes) => request.route_name.is_some_and(|route| {
                prefixes
                    .iter()
                    .any(|prefix| route.starts_with(prefix.as_str()))
            }),
            RuleMatch::Domain(patterns) => request.authority.is_some_and(|authority| {
                let host = host_of(authority);
                patterns
                    .iter()
                    .any(|pattern| domain_matches(pattern, &host))
            }),
            RuleMatch::Service(services) => request.cluster_name.is_some_and(|cluster| {
                services
                    .iter()
                    .any(|service| service_matches(service, cluster))
            }),
        }
    }
}

/// `:authority` without its port, lowercase (IPv6 literals keep their brackets).
fn host_of(authority: &str) -> String {
    let host = if authority.starts_with('[') {
        authority
            .find(']')
            .map_or(authority, |end| &authority[..=end])
    } else {
        authority.split(':').next().unwrap_or(authority)
    };
    host.to_ascii_lowercase()
}

/// Exact host, or `*.example.com` for any subdomain of example.com.
fn domain_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .strip_suffix(suffix)
            .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1),
        None => pattern == host,
    }
}

/// Higress cluster names look like `outbound|8080||svc.ns.svc.cluster.local`; a rule names the
/// service as `svc.ns.svc.cluster.local` or `svc.ns.svc.cluster.local:8080`.
fn service_matches(service: &str, cluster: &str) -> bool {
    let mut parts = cluster.split('|');
    let (Some(_), Some(port), Some(_), Some(host), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return service == cluster;
    };
    match service.rsplit_once(':') {
        Some((name, want_port)) if want_port.bytes().all(|b| b.is_ascii_digit()) => {
            name == host && want_port == port
        }
        _ => service == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(route: &'a str, cluster: &'a str, authority: &'a str) -> RequestIdentity<'a> {
        RequestIdentity {
            route_name: Some(route),
            cluster_name: Some(cluster),
            authority: Some(authority),
        }
    }

    fn rule(json: &str) -> Result<RuleMatch, ConfigError> {
        let value: Value = serde_json::from_str(json).unwrap();
        RuleMatch::parse(value.as_object().unwrap(), "_rules_[0]")
    }

    #[test]
    fn route_matches_exact_name_only() {
        let matcher = rule(r#"{"_match_route_":["chat","embed"]}"#).unwrap();
        assert!(matcher.matches(&request("chat", "c", "a")));
        assert!(matcher.matches(&request("embed", "c", "a")));
        assert!(!matcher.matches(&request("chat-v2", "c", "a")));
        assert!(!matcher.matches(&RequestIdentity::default()));
    }

    #[test]
    fn route_prefix_matches_start_of_name() {
        let matcher = rule(r#"{"_match_route_prefix_":["ai-"]}"#).unwrap();
        assert!(matcher.matches(&request("ai-chat", "c", "a")));
        assert!(!matcher.matches(&request("chat-ai-", "c", "a")));
    }

    #[test]
    fn domain_matches_host_without_port_and_wildcards() {
        let matcher = rule(r#"{"_match_domain_":["API.example.com","*.llm.dev"]}"#).unwrap();
        assert!(matcher.matches(&request("r", "c", "api.example.com:8080")));
        assert!(matcher.matches(&request("r", "c", "eu.llm.dev")));
        assert!(!matcher.matches(&request("r", "c", "llm.dev")));
        assert!(!matcher.matches(&request("r", "c", "evilllm.dev")));
        assert!(!matcher.matches(&request("r", "c", "example.com")));
    }

    #[test]
    fn service_matches_higress_cluster_names_with_optional_port() {
        let cluster = "outbound|8080||qwen.ai.svc.cluster.local";
        let by_name = rule(r#"{"_match_service_":["qwen.ai.svc.cluster.local"]}"#).unwrap();
        let by_port = rule(r#"{"_match_service_":["qwen.ai.svc.cluster.local:8080"]}"#).unwrap();
        let wrong_port = rule(r#"{"_match_service_":["qwen.ai.svc.cluster.local:80"]}"#).unwrap();
        assert!(by_name.matches(&request("r", cluster, "a")));
        assert!(by_port.matches(&request("r", cluster, "a")));
        assert!(!wrong_port.matches(&request("r", cluster, "a")));
        let plain = rule(r#"{"_match_service_":["my-cluster"]}"#).unwrap();
        assert!(plain.matches(&request("r", "my-cluster", "a")));
    }

    #[test]
    fn a_rule_needs_exactly_one_non_empty_matcher() {
        assert_eq!(
            rule(r#"{"providers":[]}"#).unwrap_err().to_string(),
            "_rules_[0]: needs one of _match_route_, _match_route_prefix_, _match_domain_, _match_service_"
        );
        assert_eq!(
            rule(r#"{"_match_route_":["a"],"_match_domain_":["b"]}"#)
                .unwrap_err()
                .to_string(),
            "_rules_[0]: has _match_route_ and _match_domain_; a rule takes exactly one"
        );
        assert_eq!(
            rule(r#"{"_match_route_":[]}"#).unwrap_err().to_string(),
            "_rules_[0]._match_route_: must not be empty"
        );
        assert_eq!(
            rule(r#"{"_match_route_":"chat"}"#).unwrap_err().to_string(),
            "_rules_[0]._match_route_: must be a list of names"
        );
        assert_eq!(
            rule(r#"{"_match_route_":["ok",""]}"#)
                .unwrap_err()
                .to_string(),
            "_rules_[0]._match_route_[1]: must be a non-empty string"
        );
    }
}
