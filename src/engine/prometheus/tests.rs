use super::*;

fn all(text: &str) -> (Vec<Sample<'_>>, usize) {
    let mut reader = samples(text);
    let found = reader.by_ref().collect();
    (found, reader.malformed())
}

fn one(line: &str) -> Sample<'_> {
    let (found, malformed) = all(line);
    assert_eq!((found.len(), malformed), (1, 0), "{line:?}");
    found[0]
}

#[test]
fn reads_name_labels_and_value_skipping_comments_and_blank_lines() {
    let page = "# HELP vllm:num_requests_running Number of requests in model execution batches.\n\
                # TYPE vllm:num_requests_running gauge\n\
                \n\
                vllm:num_requests_running{engine=\"0\",model_name=\"llama\"} 3.0\n\
                process_open_fds 17\n\
                # EOF\n";
    let (found, malformed) = all(page);
    assert_eq!(malformed, 0);
    assert_eq!(
        found,
        vec![
            Sample {
                name: "vllm:num_requests_running",
                labels: "engine=\"0\",model_name=\"llama\"",
                value: 3.0,
            },
            Sample {
                name: "process_open_fds",
                labels: "",
                value: 17.0,
            },
        ]
    );
    assert_eq!(found[0].label("model_name").as_deref(), Some("llama"));
    assert_eq!(found[0].label("engine").as_deref(), Some("0"));
    assert_eq!(found[0].label("missing"), None);
}

#[test]
fn crlf_line_ends_and_surrounding_blanks_are_tolerated() {
    let (found, malformed) =
        all("# TYPE a gauge\r\n  a{x=\"1\"}\t2 \r\n\r\nb 3\r\n\tc { x = \"1\" , } 4\r\n");
    assert_eq!(malformed, 0);
    let values: Vec<_> = found.iter().map(|s| (s.name, s.value)).collect();
    assert_eq!(values, vec![("a", 2.0), ("b", 3.0), ("c", 4.0)]);
    assert_eq!(found[2].label("x").as_deref(), Some("1"));
}

#[test]
fn special_values_and_exponents_are_numbers() {
    assert!(one("m NaN").value.is_nan());
    assert_eq!(one("m +Inf").value, f64::INFINITY);
    assert_eq!(one("m -Inf").value, f64::NEG_INFINITY);
    assert_eq!(
        one("m 1.7769301736864316e+09").value,
        1_776_930_173.686_431_6
    );
    assert_eq!(one("m 2.5E-3").value, 0.0025);
    assert_eq!(one("m -0.5").value, -0.5);
    assert_eq!(one("m 42").value, 42.0);
}

#[test]
fn timestamps_are_optional_and_ignored() {
    assert_eq!(one("m{a=\"b\"} 7 1395066363000").value, 7.0);
    assert_eq!(one("m 7 -1395066363000").value, 7.0);
    // OpenMetrics: seconds with a fraction, and an exemplar after the value.
    assert_eq!(one("m 7 1520879607.789").value, 7.0);
    assert_eq!(
        one("m_bucket{le=\"0.5\"} 7 # {trace_id=\"x\"} 0.4").value,
        7.0
    );
}

#[test]
fn quoted_label_values_keep_escapes_commas_and_braces_inside() {
    let sample = one(
        r#"vllm:lora_requests_info{max_lora="2",running_lora_adapters="sql,chat",path="C:\\models\\{x}",quote="say \"hi\"",lines="a\nb"} 1.0"#,
    );
    assert_eq!(sample.value, 1.0);
    assert_eq!(
        sample.label("running_lora_adapters").as_deref(),
        Some("sql,chat")
    );
    assert_eq!(sample.label("path").as_deref(), Some(r"C:\models\{x}"));
    assert_eq!(sample.label("quote").as_deref(), Some(r#"say "hi""#));
    assert_eq!(sample.label("lines").as_deref(), Some("a\nb"));
    let names: Vec<_> = sample.label_pairs().map(|(name, _)| name).collect();
    assert_eq!(
        names,
        [
            "max_lora",
            "running_lora_adapters",
            "path",
            "quote",
            "lines"
        ]
    );
}

#[test]
fn label_values_without_escapes_are_borrowed_from_the_page() {
    let sample = one("m{model_name=\"Qwen/Qwen3-8B\",empty=\"\"} 1");
    assert!(matches!(
        sample.label("model_name"),
        Some(Cow::Borrowed("Qwen/Qwen3-8B"))
    ));
    assert_eq!(sample.label("empty").as_deref(), Some(""));
}

#[test]
fn unknown_escapes_are_kept_as_written() {
    assert_eq!(unescape(r"a\tb\"), r"a\tb\");
    assert_eq!(unescape(r"\\n"), r"\n");
}

#[test]
fn malformed_lines_are_skipped_and_counted() {
    let page = "good 1\n\
                9starts_with_digit 1\n\
                no_value\n\
                no_value_after_labels{a=\"b\"}\n\
                bad-name 1\n\
                value_not_a_number abc\n\
                unclosed{a=\"b\" 1\n\
                unquoted{a=b} 1\n\
                unterminated{a=\"b} 1\n\
                missing_comma{a=\"1\" b=\"2\"} 1\n\
                empty_pair{,} 1\n\
                bad_timestamp 1 soon\n\
                too_many_fields 1 2 3\n\
                {\"quoted.name\"} 1\n\
                also_good{a=\"}\"} 2\n";
    let (found, malformed) = all(page);
    let names: Vec<_> = found.iter().map(|s| s.name).collect();
    assert_eq!(names, ["good", "also_good"]);
    assert_eq!(malformed, 13);
}

#[test]
fn a_page_without_samples_yields_nothing() {
    assert_eq!(all(""), (vec![], 0));
    assert_eq!(all("\n\r\n# only a comment\n"), (vec![], 0));
}

#[test]
fn names_may_hold_colons_and_utf8_label_values_are_kept() {
    let sample = one("sglang:cache_hit_rate{model_name=\"模型\"} 0.5");
    assert_eq!(sample.name, "sglang:cache_hit_rate");
    assert_eq!(sample.label("model_name").as_deref(), Some("模型"));
}
