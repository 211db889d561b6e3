#![allow(clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly
//! The operator docs stay true to the code: docs/metrics.md lists every counter the filter
//! emits (and only those, with their Prometheus names), README's Stats table lists every one,
//! and docs/troubleshooting.md quotes every warning, error and info line in src/ at its level,
//! and quotes no line the filter does not print.
//!
//! Log lines are read from the source text: each `error!`/`warn!`/`info!`/`debug!` macro's
//! format string, split into its fixed parts around the `{…}` placeholders. The docs quote a
//! line as a list item ``- `[<level>] <message>` `` with `<…>` placeholders, split the same way.

use std::path::PathBuf;

use ai_load_balancer::flow::{Stat, Timing};

#[path = "docs/log_lines.rs"]
mod log_lines;

use log_lines::{
    documented_log_lines, format_pieces, quoted_pieces, source_files, source_log_lines,
    string_literal, LogLine, Piece,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn counter_names() -> Vec<String> {
    Stat::all_for_docs().iter().map(Stat::name).collect()
}

/// The cells of a Markdown table row (`| a | b |`), trimmed; `None` for other lines.
fn table_cells(line: &str) -> Option<Vec<&str>> {
    let inner = line.trim().strip_prefix('|')?.strip_suffix('|')?;
    Some(inner.split('|').map(str::trim).collect())
}

/// The `code` spans of a Markdown text, in order.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

// ---- counters -------------------------------------------------------------------------------

#[test]
fn the_metrics_reference_lists_every_metric_once_with_its_prometheus_name() {
    let doc = read("docs/metrics.md");
    let mut known = counter_names();
    known.extend(Timing::ALL.map(|timing| timing.name("<provider>")));
    let mut listed: Vec<String> = Vec::new();
    for line in doc.lines() {
        let Some(cells) = table_cells(line) else {
            continue;
        };
        let Some(name) = cells
            .first()
            .and_then(|cell| code_spans(cell).first().copied())
        else {
            continue;
        };
        if !name.starts_with("ai_lb.") {
            continue;
        }
        assert!(
            known.iter().any(|known| known == name),
            "docs/metrics.md lists `{name}`, which the filter never emits; it emits {known:?}"
        );
        assert!(
            !listed.iter().any(|seen| seen == name),
            "docs/metrics.md lists `{name}` twice"
        );
        let prometheus = format!("`{}`", name.replace('.', "_"));
        assert!(
            cells.get(1).is_some_and(|cell| cell.contains(&prometheus)),
            "docs/metrics.md: the row of `{name}` should give its Prometheus name {prometheus} \
             in its second column: {line}"
        );
        listed.push(name.to_string());
    }
    for name in &known {
        assert!(
            listed.contains(name),
            "docs/metrics.md has no table row for `{name}`"
        );
    }
}

#[test]
fn the_metrics_reference_lists_every_histogram_with_its_prometheus_name() {
    let doc = read("docs/metrics.md");
    for timing in Timing::ALL {
        let name = timing.name("<provider>");
        let row = doc
            .lines()
            .filter_map(table_cells)
            .find(|cells| cells.first() == Some(&format!("`{name}`").as_str()))
            .unwrap_or_else(|| panic!("docs/metrics.md has no table row for `{name}`"));
        let (tagged, _) = name
            .split_once(".provider.")
            .expect("a histogram names its provider");
        for prometheus in [
            format!("`{}{{provider}}`", tagged.replace('.', "_")),
            format!("`{}`", name.replace('.', "_")),
        ] {
            assert!(
                row.get(1).is_some_and(|cell| cell.contains(&prometheus)),
                "docs/metrics.md: the row of `{name}` should give {prometheus}: {row:?}"
            );
        }
    }
}

/// README's Stats table writes siblings short (`` `ai_lb.retry.sent` / `.recovered` ``): a span
/// starting with `.` replaces the last segment of the full name before it.
fn readme_stats_names() -> Vec<String> {
    let readme = read("README.md");
    let section = readme
        .split("\n## Stats")
        .nth(1)
        .expect("README.md has a ## Stats section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut names = Vec::new();
    for line in section.lines() {
        let Some(cells) = table_cells(line) else {
            continue;
        };
        let mut full: Option<String> = None;
        for span in code_spans(cells.first().copied().unwrap_or_default()) {
            let name = match (&full, span.strip_prefix('.')) {
                (Some(previous), Some(last)) => {
                    let (stem, _) = previous.rsplit_once('.').expect("a dotted name");
                    format!("{stem}.{last}")
                }
                _ => span.to_string(),
            };
            full = Some(name.clone());
            names.push(name);
        }
    }
    names
}

#[test]
fn the_readme_stats_table_lists_every_counter_and_only_those() {
    let listed = readme_stats_names();
    let known = counter_names();
    for name in &known {
        assert!(
            listed.contains(name),
            "README.md's Stats table has no `{name}`"
        );
    }
    for name in &listed {
        assert!(
            known.contains(name),
            "README.md's Stats table lists `{name}`, which the filter never emits"
        );
    }
}

/// Every provider event a call site counts with a literal is one the docs list.
#[test]
fn provider_events_counted_in_the_source_are_the_documented_ones() {
    let mut found = 0;
    for (path, text) in source_files() {
        if path.ends_with("flow/host.rs") {
            continue; // where the counters are named, not counted
        }
        for (at, _) in text.match_indices("Stat::Provider(") {
            let call = &text[at..];
            let call = &call[..call.find('\n').unwrap_or(call.len())];
            let Some(event) = call.split('"').nth(1) else {
                continue; // the event is a variable (flow/backends.rs maps health changes)
            };
            found += 1;
            assert!(
                Stat::PROVIDER_EVENTS.contains(&event),
                "{path}: Stat::Provider event {event:?} is not in Stat::PROVIDER_EVENTS"
            );
        }
    }
    assert!(
        found > 0,
        "no Stat::Provider call site found: is the scan still right?"
    );
}

// ---- log lines ------------------------------------------------------------------------------

#[test]
fn every_warning_error_and_info_line_is_in_troubleshooting() {
    let doc = read("docs/troubleshooting.md");
    let documented = documented_log_lines();
    let mut missing = Vec::new();
    for line in source_log_lines() {
        if line.level == "debug" {
            continue;
        }
        // At the least, the message's fixed start is quoted somewhere.
        assert!(
            doc.contains(line.fixed_start()),
            "{}: docs/troubleshooting.md never quotes {:?}",
            line.origin,
            line.fixed_start()
        );
        if !documented.iter().any(|quoted| line.is_quoted_by(quoted)) {
            missing.push(format!("{}: {}", line.origin, line.shown()));
        }
    }
    assert!(
        missing.is_empty(),
        "docs/troubleshooting.md has no ``- `[level] message` `` item for:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_line_troubleshooting_quotes_is_one_the_filter_prints() {
    let printed = source_log_lines();
    let documented = documented_log_lines();
    assert!(
        documented.len() > 20,
        "only {} quoted lines found in docs/troubleshooting.md: is the scan still right?",
        documented.len()
    );
    for quoted in documented {
        assert!(
            printed.iter().any(|line| line.is_quoted_by(&quoted)),
            "{}: {} is not a line the filter prints (placeholders as <…>, level as Envoy \
             shows it)",
            quoted.origin,
            quoted.shown()
        );
    }
}

#[test]
fn the_scanners_read_what_they_are_meant_to() {
    assert_eq!(
        string_literal("\n  \"a {b} \\\n     c\\\"d\", x)"),
        Some("a {b} c\"d".to_string())
    );
    let text = |fixed: &str| Piece::Text(fixed.to_string());
    assert_eq!(
        format_pieces("store {} down after {n:?} failures {{x}}: {err}"),
        vec![
            text("store "),
            Piece::Hole,
            text(" down after "),
            Piece::Hole,
            text(" failures {x}: "),
            Piece::Hole
        ]
    );
    let line = |level, pieces| LogLine {
        level,
        pieces,
        origin: String::new(),
    };
    let error = line("error", format_pieces("invalid configuration: {err}"));
    let restored = line("info", format_pieces("provider {name} restored"));
    let quoted = |level, message| line(level, quoted_pieces(message));
    assert!(error.is_quoted_by(&quoted("error", "invalid configuration: <field>: <reason>")));
    assert!(!error.is_quoted_by(&quoted("warning", "invalid configuration: <error>")));
    assert!(!error.is_quoted_by(&quoted("error", "invalid configuration")));
    assert!(restored.is_quoted_by(&quoted("info", "provider <name> restored")));
    assert!(!restored.is_quoted_by(&quoted("info", "provider <name>: API token <t> restored")));
    assert!(!restored.is_quoted_by(&quoted("info", "provider <name> restored twice")));
    let from_source = source_log_lines();
    let restored_in_source = from_source
        .iter()
        .find(|line| line.shown() == "[info] ai-load-balancer: provider <…> restored")
        .expect("flow/backends.rs's restored line");
    assert!(restored_in_source
        .origin
        .starts_with("src/flow/backends.rs:"));
}
