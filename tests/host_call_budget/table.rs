//! The counts as tables: the budget table in `tests/host_call_budget.rs` and the host-call
//! section of `bench/results.md` (markdown), both written from one measurement.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::host::Tally;
use crate::modes::Mode;

/// (mode, import, calls, bytes out of the VM, bytes into it), per request.
pub type Budget = (&'static str, &'static str, u64, u64, u64);

/// (mode, wasm instructions), per request.
pub type InstructionBudget = (&'static str, u64);

/// One import's per-request count in one mode.
pub struct Row {
    pub import: String,
    pub tally: Tally,
}

/// One mode's per-request counts.
pub struct Measured {
    /// One row per import called.
    pub rows: Vec<Row>,
    /// Wasm instructions the filter ran (wasmtime's fuel).
    pub instructions: u64,
}

const BUDGET_BEGIN: &str = "// BEGIN BUDGETS";
const BUDGET_END: &str = "// END BUDGETS";
pub const RESULTS_BEGIN: &str = "<!-- BEGIN host-call table: tests/host_call_budget.rs -->";
pub const RESULTS_END: &str = "<!-- END host-call table -->";

/// Whether an import is of one kind.
type KindTest = fn(&str) -> bool;

/// What the ABI's bytes are, by the import that copied them.
const KINDS: &[(&str, KindTest)] = &[
    ("header maps", |import| import.contains("header_map")),
    ("body buffers", |import| import.contains("buffer_bytes")),
    ("shared data", |import| import.contains("shared_data")),
    ("properties", |import| import.contains("property")),
    ("HTTP calls", |import| import == "proxy_http_call"),
];

fn kind_of(import: &str) -> &'static str {
    KINDS
        .iter()
        .find(|(_, matches)| matches(import))
        .map_or("other (route re-match, metrics, clock)", |(kind, _)| kind)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `HOST_CALL_TABLE=<file>` (what `make bench` sets): the markdown tables into that file.
pub fn write_table(path: &Path, measured: &[(&Mode, Measured)]) {
    std::fs::write(path, markdown(measured)).unwrap_or_else(|err| panic!("{path:?}: {err}"));
}

/// `UPDATE_BUDGETS=1`: the budget table and `bench/results.md`'s section become `measured`.
pub fn update_files(measured: &[(&Mode, Measured)]) {
    let markdown = markdown(measured);
    let mut budgets = format!("{BUDGET_BEGIN} (written by UPDATE_BUDGETS=1: mode, import, calls, bytes out of the VM, bytes into it)\n#[rustfmt::skip]\nconst BUDGETS: &[Budget] = &[\n");
    for (mode, measured) in measured {
        for row in &measured.rows {
            let Tally {
                calls,
                bytes_out,
                bytes_in,
            } = row.tally;
            writeln!(
                budgets,
                "    ({:?}, {:?}, {calls}, {bytes_out}, {bytes_in}),",
                mode.name, row.import
            )
            .expect("formatting");
        }
    }
    budgets
        .push_str("];\n#[rustfmt::skip]\nconst INSTRUCTION_BUDGETS: &[InstructionBudget] = &[\n");
    for (mode, measured) in measured {
        writeln!(budgets, "    ({:?}, {}),", mode.name, measured.instructions).expect("formatting");
    }
    budgets.push_str("];\n");
    splice(
        &root().join("tests/host_call_budget.rs"),
        BUDGET_BEGIN,
        BUDGET_END,
        &budgets,
    );
    let section = format!("{RESULTS_BEGIN}\n{markdown}");
    splice(
        &root().join("bench/results.md"),
        RESULTS_BEGIN,
        RESULTS_END,
        &section,
    );
}

/// Replaces the lines from the one starting with `begin` up to (not including) the one
/// starting with `end` by `with`.
fn splice(path: &Path, begin: &str, end: &str, with: &str) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{path:?}: {err}"));
    let start = text
        .find(begin)
        .unwrap_or_else(|| panic!("{path:?}: no {begin:?}"));
    let stop = text[start..]
        .find(end)
        .unwrap_or_else(|| panic!("{path:?}: no {end:?}"))
        + start;
    let updated = format!("{}{with}{}", &text[..start], &text[stop..]);
    std::fs::write(path, updated).unwrap_or_else(|err| panic!("{path:?}: {err}"));
    eprintln!("updated {}", path.display());
}

/// Two tables: per mode, calls and bytes by kind; then every import each mode calls.
pub fn markdown(measured: &[(&Mode, Measured)]) -> String {
    let mut kinds: Vec<&str> = KINDS.iter().map(|(kind, _)| *kind).collect();
    kinds.push(kind_of("proxy_log"));
    let mut out = String::from(
        "Per request, counted by the test host (`cargo test --test host_call_budget`, which fails \
         when a mode grows past these counts): the Envoy build, \
         `allow_on_headers_stop_iteration: true`, a 1 KB chat body, a 200 answer. Each cell is \
         calls / bytes copied out of the VM / bytes copied into it (payload: names, values, \
         bodies; not the 4- and 8-byte out-parameters). Work on the tick (background refresh, \
         scrapes) is not per request and is not counted. Wasm instructions are the filter's own \
         work, counted by wasmtime's fuel (one unit per instruction run): the same on every \
         machine, where its CPU time is not.\n\n",
    );
    let header: Vec<String> = ["mode", "wasm instructions", "all calls"]
        .into_iter()
        .map(str::to_string)
        .chain(kinds.iter().map(|kind| kind.to_string()))
        .collect();
    out.push_str(&row_line(&header));
    out.push_str(&format!("|{}\n", "---|".repeat(header.len())));
    for (mode, measured) in measured {
        let sum = |wanted: Option<&str>| {
            measured
                .rows
                .iter()
                .filter(|row| wanted.is_none_or(|kind| kind_of(&row.import) == kind))
                .fold(Tally::default(), |total, row| Tally {
                    calls: total.calls + row.tally.calls,
                    bytes_out: total.bytes_out + row.tally.bytes_out,
                    bytes_in: total.bytes_in + row.tally.bytes_in,
                })
        };
        let cell =
            |tally: Tally| format!("{} / {} / {}", tally.calls, tally.bytes_out, tally.bytes_in);
        let mut cells = vec![
            format!("`{}`: {}", mode.name, mode.what),
            thousands(measured.instructions),
            cell(sum(None)),
        ];
        cells.extend(kinds.iter().map(|kind| cell(sum(Some(kind)))));
        out.push_str(&row_line(&cells));
    }
    out.push_str("\nCalls per request, by import:\n\n| mode | imports (calls) |\n|---|---|\n");
    for (mode, measured) in measured {
        let imports: Vec<String> = measured
            .rows
            .iter()
            .map(|row| format!("`{}` {}", row.import, row.tally.calls))
            .collect();
        out.push_str(&row_line(&[format!("`{}`", mode.name), imports.join(", ")]));
    }
    out
}

/// `34603` as `34,603`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn row_line(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}
