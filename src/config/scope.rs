//! Which requests are balanced at all (`paths`, `route_names`). Out of the box only inference
//! API paths are: a filter installed on a whole listener must not rewrite, route or put a
//! provider's key on a request meant for another service.

/// The API paths balanced by default: OpenAI-style inference endpoints, Anthropic's messages,
/// rerank (Cohere, vLLM, Jina). Gateways such as Higress ai-proxy treat the same suffixes as LLM
/// APIs; each carries a JSON body with a top-level `model`.
pub const DEFAULT_PATHS: &[&str] = &[
    "/chat/completions",
    "/completions",
    "/embeddings",
    "/responses",
    "/v1/messages",
    "/rerank",
    "/moderations",
    "/images/generations",
    "/audio/speech",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPattern {
    /// `*`: every path.
    Any,
    /// `/prefix/*`: paths starting with `/prefix/`.
    Prefix(String),
    /// `/chat/completions`: paths ending with it.
    Suffix(String),
}

impl PathPattern {
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(Self::Any);
        }
        if !text.starts_with('/') {
            return Err(format!(
                "{text:?} must start with / (a path suffix, or /prefix/* ), or be *"
            ));
        }
        if text.contains(['?', '#']) || text.chars().any(char::is_whitespace) {
            return Err(format!(
                "{text:?}: a path without query, fragment or spaces"
            ));
        }
        match text.strip_suffix('*') {
            Some(prefix) if prefix.contains('*') => {
                Err(format!("{text:?}: * may only end a pattern"))
            }
            Some(prefix) => Ok(Self::Prefix(prefix.to_string())),
            None if text.contains('*') => Err(format!("{text:?}: * may only end a pattern")),
            None => Ok(Self::Suffix(text.to_string())),
        }
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Self::Suffix(suffix) => path.ends_with(suffix.as_str()),
        }
    }
}

/// The requests a configuration balances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub paths: Vec<PathPattern>,
    /// `None`: every route.
    pub route_names: Option<Vec<String>>,
}

impl Default for Scope {
    fn default() -> Self {
        let mut paths = Vec::with_capacity(DEFAULT_PATHS.len());
        for path in DEFAULT_PATHS {
            paths.push(PathPattern::Suffix((*path).to_string()));
        }
        Self {
            paths,
            route_names: None,
        }
    }
}

impl Scope {
    /// Whether the request's path (its query ignored) is balanced.
    pub fn covers_path(&self, path: &str) -> bool {
        // By byte, not by char: a char pattern decodes UTF-8 char by char, on every request.
        let end = path.bytes().position(|byte| matches!(byte, b'?' | b'#'));
        let path = end.and_then(|end| path.get(..end)).unwrap_or(path);
        self.paths.iter().any(|pattern| pattern.matches(path))
    }

    /// Whether the route is balanced; a host that names no route is not, when names are set.
    pub fn covers_route(&self, route_name: Option<&str>) -> bool {
        match &self.route_names {
            None => true,
            Some(names) => route_name.is_some_and(|route| names.iter().any(|n| n == route)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::config::{document, validate};

    fn scope(config: Value) -> Result<Scope, String> {
        let doc: document::Balancer =
            serde_path_to_error::deserialize(config).map_err(|err| err.to_string())?;
        validate::scope(&doc, "").map_err(|err| err.to_string())
    }

    #[test]
    fn by_default_only_inference_paths_are_balanced() {
        let scope = scope(json!({})).unwrap();
        for path in [
            "/v1/chat/completions",
            "/masgod/v1/chat/completions",
            "/openai/deployments/gpt4/chat/completions?api-version=2024-06-01",
            "/v1/completions",
            "/v1/embeddings",
            "/v1/responses",
            "/v1/messages",
            "/v1/rerank",
            "/v1/images/generations",
            "/v1/audio/speech",
            "/v1/moderations",
        ] {
            assert!(scope.covers_path(path), "{path} should be balanced");
        }
        for path in [
            "/internal/jobs",
            "/",
            "/v1/models",
            "/v1/chat/completions/extra",
            "/api/messages",
            "/v1/files",
            "/internal/jobs?next=/v1/chat/completions",
            "/x#/v1/embeddings",
        ] {
            assert!(!scope.covers_path(path), "{path} should not be balanced");
        }
        assert!(scope.covers_route(None));
    }

    #[test]
    fn operators_set_paths_as_suffixes_prefixes_or_everything() {
        let scope = scope(json!({"paths": ["/llm/*", "/generate"]})).unwrap();
        assert!(scope.covers_path("/llm/anything"));
        assert!(scope.covers_path("/engine/generate?x=1"));
        assert!(!scope.covers_path("/v1/chat/completions"));
        assert!(!scope.covers_path("/llmx/anything"));
        let everything = scope_of_all();
        assert!(everything.covers_path("/internal/jobs"));
    }

    fn scope_of_all() -> Scope {
        scope(json!({"paths": ["*"]})).unwrap()
    }

    #[test]
    fn route_names_limit_the_routes() {
        let scope = scope(json!({"route_names": ["r1", "r2"]})).unwrap();
        assert!(scope.covers_route(Some("r2")));
        assert!(!scope.covers_route(Some("r3")));
        assert!(
            !scope.covers_route(None),
            "no route name known: not balanced"
        );
    }

    #[test]
    fn bad_scopes_are_refused_naming_the_field() {
        for (config, expected) in [
            (json!({"paths": []}), "paths: must not be empty"),
            (
                json!({"paths": "/v1"}),
                "paths: invalid type: string \"/v1\", expected a sequence",
            ),
            (
                json!({"paths": ["v1/chat"]}),
                "paths[0]: \"v1/chat\" must start with /",
            ),
            (
                json!({"paths": ["/a", "/b*c"]}),
                "paths[1]: \"/b*c\": * may only end",
            ),
            (
                json!({"paths": ["/a?x=1"]}),
                "paths[0]: \"/a?x=1\": a path without query",
            ),
            (
                json!({"paths": [""]}),
                "paths[0]: must be a non-empty string",
            ),
            (
                json!({"route_names": [1]}),
                "route_names[0]: invalid type: integer `1`, expected a string",
            ),
            (json!({"route_names": []}), "route_names: must not be empty"),
        ] {
            let error = scope(config.clone()).unwrap_err();
            assert!(error.contains(expected), "{config}: {error}");
        }
    }
}
