use super::*;

const VLLM: &str = include_str!("fixtures/vllm.txt");
const VLLM_V0: &str = include_str!("fixtures/vllm_v0.txt");
const SGLANG: &str = include_str!("fixtures/sglang.txt");

/// The vLLM fixture's prefix counters, summed over its two engines.
const VLLM_COUNTERS: PrefixCounters = PrefixCounters {
    hits: 120_000.0,
    queries: 300_000.0,
};

fn close(actual: Option<f64>, expected: f64) -> bool {
    actual.is_some_and(|actual| (actual - expected).abs() < 1e-9)
}

#[test]
fn vllm_page_sums_engines_and_reads_the_prefix_hit_ratio_from_counters() {
    let (load, counters) = engine_load(VLLM, None);
    let load = load.unwrap();
    assert_eq!(load.running, 5.0);
    assert_eq!(load.waiting, Some(1.0));
    assert_eq!(load.kv_usage, Some(0.6113));
    assert!(close(load.cache_ratio, 0.4), "{load:?}");
    assert_eq!(counters, VLLM_COUNTERS);
}

#[test]
fn the_fixtures_parse_without_a_malformed_line() {
    for page in [VLLM, VLLM_V0, SGLANG] {
        let mut reader = prometheus::samples(page);
        assert!(reader.by_ref().count() > 20);
        assert_eq!(reader.malformed(), 0);
    }
}

#[test]
fn prefix_hit_ratio_is_over_the_queries_since_the_previous_read() {
    let previous = PrefixCounters {
        hits: 100_000.0,
        queries: 200_000.0,
    };
    let (load, counters) = engine_load(VLLM, Some(&previous));
    // 20,000 hits in the last 100,000 queried tokens, although 40% since the start.
    assert!(close(load.unwrap().cache_ratio, 0.2));
    assert_eq!(counters, VLLM_COUNTERS);
}

#[test]
fn without_new_queries_the_ratio_is_the_cumulative_one() {
    let (load, _) = engine_load(VLLM, Some(&VLLM_COUNTERS));
    assert!(close(load.unwrap().cache_ratio, 0.4));
}

#[test]
fn counters_that_went_down_count_from_zero_after_an_engine_restart() {
    let before_restart = PrefixCounters {
        hits: 900_000.0,
        queries: 1_000_000.0,
    };
    let (load, counters) = engine_load(VLLM, Some(&before_restart));
    assert!(close(load.unwrap().cache_ratio, 0.4));
    assert_eq!(counters, VLLM_COUNTERS);

    // Queries grew past the old total, but hits went down: a restart all the same.
    let hits_went_down = PrefixCounters {
        hits: 150_000.0,
        queries: 250_000.0,
    };
    let (load, _) = engine_load(VLLM, Some(&hits_went_down));
    assert!(close(load.unwrap().cache_ratio, 0.4));
}

#[test]
fn older_vllm_page_reads_gpu_cache_usage_and_the_hit_rate_gauge() {
    let (load, counters) = engine_load(VLLM_V0, None);
    assert_eq!(
        load,
        Some(Load {
            running: 4.0,
            waiting: Some(2.0),
            cache_ratio: Some(0.2512),
            kv_usage: Some(0.3517),
        })
    );
    assert_eq!(counters, PrefixCounters::default());
}

#[test]
fn vllm_v1_before_the_rename_reads_the_gpu_prefix_counters() {
    let page = "vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 1.0\n\
                vllm:gpu_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.5\n\
                vllm:gpu_prefix_cache_queries_total{engine=\"0\",model_name=\"m\"} 400.0\n\
                vllm:gpu_prefix_cache_queries_created{engine=\"0\",model_name=\"m\"} 1.75e+09\n\
                vllm:gpu_prefix_cache_hits_total{engine=\"0\",model_name=\"m\"} 100.0\n\
                vllm:gpu_prefix_cache_hits_created{engine=\"0\",model_name=\"m\"} 1.75e+09\n";
    let (load, counters) = engine_load(page, None);
    let load = load.unwrap();
    assert_eq!(load.kv_usage, Some(0.5));
    assert_eq!(load.cache_ratio, Some(0.25));
    assert_eq!(
        counters,
        PrefixCounters {
            hits: 100.0,
            queries: 400.0
        }
    );
}

#[test]
fn new_vllm_names_win_over_the_deprecated_ones_shown_beside_them() {
    let page = "vllm:num_requests_running 1\n\
                vllm:kv_cache_usage_perc 0.2\n\
                vllm:gpu_cache_usage_perc 0.9\n\
                vllm:prefix_cache_queries_total 100\n\
                vllm:prefix_cache_hits_total 10\n\
                vllm:gpu_prefix_cache_queries_total 100\n\
                vllm:gpu_prefix_cache_hits_total 90\n";
    let load = engine_load(page, None).0.unwrap();
    assert_eq!(load.kv_usage, Some(0.2));
    assert_eq!(load.cache_ratio, Some(0.1));
}

#[test]
fn sglang_page_reads_running_queue_token_usage_and_hit_rate() {
    let (load, counters) = engine_load(SGLANG, None);
    assert_eq!(
        load,
        Some(Load {
            running: 7.0,
            waiting: Some(3.0),
            cache_ratio: Some(0.007507552643049313),
            kv_usage: Some(0.28),
        })
    );
    assert_eq!(counters, PrefixCounters::default());
}

#[test]
fn counts_sum_over_models_and_ratios_take_the_fullest() {
    let page = "sglang:num_running_reqs{model_name=\"a\"} 2\n\
                sglang:num_running_reqs{model_name=\"b\"} 3\n\
                sglang:num_queue_reqs{model_name=\"a\"} 1\n\
                sglang:num_queue_reqs{model_name=\"b\"} 4\n\
                sglang:token_usage{model_name=\"a\"} 0.7\n\
                sglang:token_usage{model_name=\"b\"} 0.3\n\
                sglang:cache_hit_rate{model_name=\"a\"} 0.1\n\
                sglang:cache_hit_rate{model_name=\"b\"} 0.6\n";
    assert_eq!(
        engine_load(page, None).0,
        Some(Load {
            running: 5.0,
            waiting: Some(5.0),
            cache_ratio: Some(0.6),
            kv_usage: Some(0.7),
        })
    );
}

#[test]
fn nan_infinite_negative_and_out_of_range_values_are_passed_over() {
    let page = "vllm:num_requests_running{engine=\"0\"} NaN\n\
                vllm:num_requests_running{engine=\"1\"} 2\n\
                vllm:num_requests_running{engine=\"2\"} -1\n\
                vllm:num_requests_waiting +Inf\n\
                vllm:kv_cache_usage_perc{engine=\"0\"} 1.5\n\
                vllm:kv_cache_usage_perc{engine=\"1\"} -Inf\n\
                vllm:gpu_prefix_cache_hit_rate -1\n";
    assert_eq!(engine_load(page, None).0, Some(Load::running(2.0)));
}

#[test]
fn a_page_without_a_running_figure_is_an_unknown_load() {
    assert_eq!(engine_load("", None), (None, PrefixCounters::default()));
    let no_running = "vllm:num_requests_waiting 3\n\
                      vllm:prefix_cache_queries_total 10\n\
                      vllm:prefix_cache_hits_total 5\n";
    let (load, counters) = engine_load(no_running, None);
    assert_eq!(load, None);
    // The counters still move on, so the next page's ratio covers only its own queries.
    assert_eq!(
        counters,
        PrefixCounters {
            hits: 5.0,
            queries: 10.0
        }
    );
    let only_nan = "vllm:num_requests_running NaN\n";
    assert_eq!(engine_load(only_nan, None).0, None);
    assert_eq!(engine_load("<html>Not Found</html>", None).0, None);
}

#[test]
fn created_timestamps_and_external_cache_counters_are_not_prefix_counters() {
    let page = "vllm:num_requests_running 1\n\
                vllm:prefix_cache_queries_created 1.7547651498312354e+09\n\
                vllm:prefix_cache_hits_created 1.7547651498312354e+09\n\
                vllm:external_prefix_cache_queries_total 100\n\
                vllm:external_prefix_cache_hits_total 100\n";
    let previous = PrefixCounters {
        hits: 1.0,
        queries: 2.0,
    };
    let (load, counters) = engine_load(page, Some(&previous));
    assert_eq!(load.unwrap().cache_ratio, None);
    // Nothing read: the last counters are kept for the next page.
    assert_eq!(counters, previous);
}

#[test]
fn an_engine_with_no_queried_tokens_yet_has_an_unknown_cache_ratio() {
    let idle = "vllm:num_requests_running 0\n\
                vllm:prefix_cache_queries_total 0\n\
                vllm:prefix_cache_hits_total 0\n";
    assert_eq!(engine_load(idle, None).0.unwrap().cache_ratio, None);
}
