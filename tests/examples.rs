#![allow(clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly
//! Every shipped configuration loads, so none can rot: `examples/envoy/*` on the Envoy build,
//! `examples/higress/*` and `higress/console.yaml` on the Higress build, the plugin
//! configuration inside `envoy/envoy.yaml`, and the configurations inside the deploy manifests
//! (Higress WasmPlugins, the Istio EnvoyFilter and WasmPlugins), read as each gateway hands them
//! to the filter. The Istio routes must match the provider names those configurations write.

#[path = "shipped/mod.rs"]
mod shipped;

use ai_load_balancer::config::{yaml, Build, PluginConfig};
use serde_json::Value;

use shipped::{envoy_yaml_configurations, files, plugin_configurations, root};

fn check(dir: &str, build: Build) {
    let files = files(&root().join(dir));
    assert!(!files.is_empty(), "no examples in {dir}");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable example");
        let plugin = PluginConfig::from_yaml(&text, build)
            .unwrap_or_else(|err| panic!("{}: {err}", file.display()));
        assert!(
            plugin.all().count() > 0,
            "{}: configures nothing",
            file.display()
        );
    }
}

#[test]
fn envoy_examples_load_on_the_envoy_build() {
    check("examples/envoy", Build::Envoy);
}

#[test]
fn higress_examples_load_on_the_higress_build() {
    check("examples/higress", Build::Higress);
    let console =
        std::fs::read_to_string(root().join("higress/console.yaml")).expect("higress/console.yaml");
    // What the console's YAML editor stores and hands over: JSON.
    PluginConfig::from_yaml(&console, Build::Higress)
        .unwrap_or_else(|err| panic!("higress/console.yaml: {err}"));
}

#[test]
fn envoy_yaml_carries_a_valid_plugin_configuration() {
    let found = envoy_yaml_configurations();
    assert_eq!(found.len(), 1, "one wasm filter configuration");
    // Envoy hands the StringValue to the module as written: it must be JSON.
    PluginConfig::parse(found[0].as_bytes(), Build::Envoy)
        .unwrap_or_else(|err| panic!("envoy/envoy.yaml plugin configuration: {err}"));
}

/// The YAML documents of a manifest (`---` separated), each read by the filter's own reader.
fn manifests(path: &str) -> Vec<Value> {
    let text =
        std::fs::read_to_string(root().join(path)).unwrap_or_else(|err| panic!("{path}: {err}"));
    let mut documents = Vec::new();
    let mut current = String::new();
    for line in text.lines().chain(std::iter::once("---")) {
        if line.trim_end() == "---" {
            let document = yaml::parse(&current).unwrap_or_else(|err| panic!("{path}: {err}"));
            if !document.is_null() {
                documents.push(document);
            }
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    documents
}

fn files_named(dir: &str, prefix: &str) -> Vec<String> {
    let found: Vec<String> = files(&root().join(dir))
        .into_iter()
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.to_string();
            (name.starts_with(prefix) && name.ends_with(".yaml")).then(|| format!("{dir}/{name}"))
        })
        .collect();
    assert!(!found.is_empty(), "no {prefix}*.yaml in {dir}");
    found
}

/// What Higress hands the plugin for a WasmPlugin: `defaultConfig`'s fields at the top and one
/// `_rules_` entry per enabled `matchRules` item, its match list renamed to the `_match_*_` key.
fn higress_plugin_configuration(spec: &Value, path: &str) -> Value {
    let mut document = spec["defaultConfig"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut rules = Vec::new();
    for (index, rule) in spec["matchRules"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if rule["configDisable"] == Value::Bool(true) {
            continue;
        }
        let mut entry = rule["config"]
            .as_object()
            .cloned()
            .unwrap_or_else(|| panic!("{path}: matchRules[{index}] has no config"));
        let matches: Vec<(&str, &Value)> = [
            ("ingress", "_match_route_"),
            ("domain", "_match_domain_"),
            ("service", "_match_service_"),
        ]
        .into_iter()
        .filter_map(|(field, key)| rule.get(field).map(|names| (key, names)))
        .collect();
        assert_eq!(
            matches.len(),
            1,
            "{path}: matchRules[{index}] needs one of ingress, domain, service"
        );
        entry.insert(matches[0].0.to_string(), matches[0].1.clone());
        rules.push(Value::Object(entry));
    }
    if !rules.is_empty() {
        document.insert("_rules_".to_string(), Value::Array(rules));
    }
    Value::Object(document)
}

fn parse_json(value: &Value, build: Build, what: &str) -> PluginConfig {
    let bytes = serde_json::to_vec(value).expect("serializable");
    PluginConfig::parse(&bytes, build).unwrap_or_else(|err| panic!("{what}: {err}"))
}

#[test]
fn higress_wasmplugins_configure_every_route_they_name() {
    let deploy =
        std::fs::read_to_string(root().join("higress/deploy.sh")).expect("higress/deploy.sh");
    for path in files_named("higress", "wasmplugin") {
        let documents = manifests(&path);
        assert_eq!(documents.len(), 1, "{path}: one WasmPlugin");
        let plugin = &documents[0];
        assert_eq!(
            plugin["apiVersion"], "extensions.higress.io/v1alpha1",
            "{path}"
        );
        assert_eq!(plugin["kind"], "WasmPlugin", "{path}");
        let spec = &plugin["spec"];
        // Before the router, after authentication (see the comment in higress/wasmplugin.yaml).
        assert_eq!(spec["phase"], "UNSPECIFIED_PHASE", "{path}");
        assert!(
            spec["priority"]
                .as_i64()
                .is_some_and(|p| p > 200 && p < 450),
            "{path}: priority"
        );
        let url = spec["url"].as_str().expect("url");
        if let Some(file) = url.strip_prefix("file://") {
            // The file `make deploy` writes.
            let (dir, name) = file.rsplit_once('/').expect("a file path");
            assert!(
                deploy.contains(dir) && name == "ai-load-balancer.wasm",
                "{path}: {url}"
            );
        } else {
            assert!(url.starts_with("oci://"), "{path}: {url}");
        }
        let config = parse_json(
            &higress_plugin_configuration(spec, &path),
            Build::Higress,
            &path,
        );
        let enabled = spec["matchRules"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|rule| rule["configDisable"] != Value::Bool(true))
            .count();
        assert_eq!(
            config.rules.len(),
            enabled,
            "{path}: one rule per matchRules item"
        );
        let seed = &config.rules[0].config;
        let names: Vec<&str> = seed.providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["minmax", "qianwen"],
            "{path}: the seed's providers first"
        );
    }
}

/// The Istio plugin configurations: the EnvoyFilter's StringValue (as text) and each
/// WasmPlugin's pluginConfig (as the JSON Istio makes of it), with their file names.
fn istio_configurations() -> Vec<(String, PluginConfig)> {
    let mut found = Vec::new();
    let path = "envoy/istio/envoyfilter.yaml";
    let documents = manifests(path);
    let patches = documents[0]["spec"]["configPatches"]
        .as_array()
        .expect("configPatches");
    let router = patches
        .iter()
        .find(|patch| patch["applyTo"] == "HTTP_FILTER")
        .expect("an HTTP_FILTER patch");
    assert_eq!(router["patch"]["operation"], "INSERT_BEFORE", "{path}");
    let sub_filter = &router["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"];
    assert_eq!(sub_filter, "envoy.filters.http.router", "{path}");
    let mut texts = Vec::new();
    plugin_configurations(&router["patch"]["value"], &mut texts);
    assert_eq!(texts.len(), 1, "{path}: one plugin configuration");
    // Istio hands the StringValue to the module as written: it must be JSON.
    let config = PluginConfig::parse(texts[0].as_bytes(), Build::Envoy)
        .unwrap_or_else(|err| panic!("{path}: {err}"));
    found.push((path.to_string(), config));
    for path in files_named("envoy/istio", "wasmplugin") {
        let documents = manifests(&path);
        assert_eq!(
            documents[0]["apiVersion"], "extensions.istio.io/v1alpha1",
            "{path}"
        );
        let plugin_config = &documents[0]["spec"]["pluginConfig"];
        // No body reaches the filter while it holds the headers (a WasmPlugin cannot set
        // allow_on_headers_stop_iteration): what needs the body first would hang.
        for needs_body in ["models", "retry"] {
            assert!(
                plugin_config.get(needs_body).is_none(),
                "{path}: {needs_body}"
            );
        }
        found.push((path.clone(), parse_json(plugin_config, Build::Envoy, &path)));
    }
    found
}

#[test]
fn istio_routes_match_the_providers_the_filter_selects() {
    let path = "envoy/istio/routes.yaml";
    let documents = manifests(path);
    let service = documents
        .iter()
        .find(|document| document["kind"] == "VirtualService")
        .expect("a VirtualService");
    // Provider name -> the service its route sends to, as Istio names the cluster.
    let mut routes: Vec<(String, String)> = Vec::new();
    for route in service["spec"]["http"].as_array().expect("http routes") {
        for matched in route["match"].as_array().expect("match") {
            if let Some(value) = matched["headers"]["x-selected-provider"]["exact"].as_str() {
                let destination = &route["route"][0]["destination"];
                let cluster = format!(
                    "outbound|{}||{}",
                    destination["port"]["number"],
                    destination["host"].as_str().expect("host")
                );
                routes.push((value.to_string(), cluster));
            }
        }
    }
    routes.sort();
    assert!(
        !routes.is_empty(),
        "{path}: no route matches x-selected-provider"
    );
    for (file, config) in istio_configurations() {
        let global = config.global.as_ref().expect("a global configuration");
        assert_eq!(
            global.selected_provider_header, "x-selected-provider",
            "{file}"
        );
        let mut providers: Vec<(String, String)> = global
            .providers
            .iter()
            .map(|provider| {
                let upstream = provider.upstream.as_ref().expect("a cluster for probes");
                (provider.name.clone(), upstream.cluster.clone())
            })
            .collect();
        providers.sort();
        assert_eq!(
            providers, routes,
            "{file}: providers and their clusters against {path}"
        );
    }
}
