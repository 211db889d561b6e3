//! Provider loads with more than one figure, from the sources that give them: an inference
//! engine's own Prometheus `/metrics` page (vLLM, SGLang), an HTTP JSON metrics endpoint that
//! answers for every provider at once, and a Redis hash per provider read in one EVAL. Each ends
//! as a [`Load`] per provider; nothing here talks to the host.

mod hash;
mod json;
pub mod prometheus;

pub use hash::{hash_eval_args, parse_hash_loads, DEFAULT_HASH_FIELDS, HASH_SCRIPT};
pub use json::parse_json_loads;

use crate::load::Load;

/// An engine's cumulative prefix-cache counters, summed over its label sets, as last read.
/// Keep the one `engine_load` returns and hand it back with the next page: the cache ratio is
/// then the hit rate since that read, not since the engine started.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PrefixCounters {
    /// Prompt tokens served from the prefix cache.
    pub hits: f64,
    /// Prompt tokens looked up in the prefix cache.
    pub queries: f64,
}

/// One provider's load from its engine's `/metrics` page, and the prefix counters to pass to
/// the next call. `None` when the page has no running-requests figure: the load is unknown.
///
/// Per signal, vLLM's and SGLang's names are read alike. Counts are summed over label sets
/// (several `model_name`s or data-parallel `engine`s serve the same provider); ratios take the
/// highest label set, the one that fills up first. NaN, infinite and negative values are
/// passed over, and so are ratios above 1.
pub fn engine_load(
    text: &str,
    previous: Option<&PrefixCounters>,
) -> (Option<Load>, PrefixCounters) {
    let mut page = Page::default();
    for sample in prometheus::samples(text) {
        page.add(sample.name, sample.value);
    }
    let counters = page.prefix_counters();
    let cache_ratio = match counters {
        // Counters measure tokens and follow the engine's whole life; prefer them to a gauge.
        Some(current) => prefix_hit_ratio(current, previous).or(page.cache_hit_rate),
        None => page.cache_hit_rate,
    };
    let load = page.running.map(|running| Load {
        running,
        waiting: page.waiting,
        cache_ratio,
        kv_usage: page.kv_usage.or(page.gpu_cache_usage),
    });
    let next = counters.or(previous.copied()).unwrap_or_default();
    (load, next)
}

/// The signals found on one page. Where vLLM renamed a metric and, for a while, shows both
/// names, the old name is kept apart and used only when the new one is absent: summing both
/// would count every request twice.
#[derive(Debug, Default)]
struct Page {
    running: Option<f64>,
    waiting: Option<f64>,
    kv_usage: Option<f64>,
    /// vLLM before 0.10: `gpu_cache_usage_perc`.
    gpu_cache_usage: Option<f64>,
    /// SGLang's `cache_hit_rate`, vLLM V0's `gpu_prefix_cache_hit_rate`: a gauge, used when
    /// the page has no counters.
    cache_hit_rate: Option<f64>,
    prefix: Counters,
    /// vLLM V1 before 0.10: `gpu_prefix_cache_hits` / `gpu_prefix_cache_queries`.
    gpu_prefix: Counters,
}

#[derive(Debug, Default)]
struct Counters {
    hits: Option<f64>,
    queries: Option<f64>,
}

impl Page {
    fn add(&mut self, name: &str, value: f64) {
        // Exact names only: a counter's `_created` companion (its start time, ~1.7e9) and the
        // KV connector's `external_prefix_cache_*` are other series that merely look alike.
        match name {
            "vllm:num_requests_running" | "sglang:num_running_reqs" => {
                sum(&mut self.running, count(value))
            }
            "vllm:num_requests_waiting" | "sglang:num_queue_reqs" => {
                sum(&mut self.waiting, count(value))
            }
            "vllm:kv_cache_usage_perc" | "sglang:token_usage" => {
                max(&mut self.kv_usage, ratio(value))
            }
            "vllm:gpu_cache_usage_perc" => max(&mut self.gpu_cache_usage, ratio(value)),
            "vllm:gpu_prefix_cache_hit_rate" | "sglang:cache_hit_rate" => {
                max(&mut self.cache_hit_rate, ratio(value))
            }
            "vllm:prefix_cache_hits_total" | "vllm:prefix_cache_hits" => {
                sum(&mut self.prefix.hits, count(value))
            }
            "vllm:prefix_cache_queries_total" | "vllm:prefix_cache_queries" => {
                sum(&mut self.prefix.queries, count(value))
            }
            "vllm:gpu_prefix_cache_hits_total" | "vllm:gpu_prefix_cache_hits" => {
                sum(&mut self.gpu_prefix.hits, count(value))
            }
            "vllm:gpu_prefix_cache_queries_total" | "vllm:gpu_prefix_cache_queries" => {
                sum(&mut self.gpu_prefix.queries, count(value))
            }
            _ => {}
        }
    }

    fn prefix_counters(&self) -> Option<PrefixCounters> {
        let pair = |counters: &Counters| {
            Some(PrefixCounters {
                hits: counters.hits?,
                queries: counters.queries?,
            })
        };
        pair(&self.prefix).or_else(|| pair(&self.gpu_prefix))
    }
}

/// Hits over queries since `previous` when queries grew since then; otherwise since the
/// engine started, which is also what "since a restart" is once a counter has gone down.
fn prefix_hit_ratio(current: PrefixCounters, previous: Option<&PrefixCounters>) -> Option<f64> {
    let (hits, queries) = match previous {
        Some(previous) if current.queries > previous.queries && current.hits >= previous.hits => (
            current.hits - previous.hits,
            current.queries - previous.queries,
        ),
        _ => (current.hits, current.queries),
    };
    // Hits above queries can only be the two counters read a moment apart: call it all hits.
    (queries > 0.0).then(|| (hits / queries).min(1.0))
}

fn sum(total: &mut Option<f64>, value: Option<f64>) {
    if let Some(value) = value {
        *total = Some(total.unwrap_or(0.0) + value);
    }
}

fn max(highest: &mut Option<f64>, value: Option<f64>) {
    if let Some(value) = value {
        *highest = Some(highest.map_or(value, |highest| highest.max(value)));
    }
}

/// A count of requests or tokens: finite and not negative, else unknown.
fn count(value: f64) -> Option<f64> {
    (value.is_finite() && value >= 0.0).then_some(value)
}

/// A share: from 0 to 1, else unknown.
fn ratio(value: f64) -> Option<f64> {
    (0.0..=1.0).contains(&value).then_some(value)
}

#[cfg(test)]
mod tests;
