//! Reading log lines for tests/docs.rs: the `error!`/`warn!`/`info!`/`debug!` macros in src/
//! (their format strings, with `{…}` placeholders), and the lines docs/troubleshooting.md quotes
//! (list items ``- `[<level>] <message>` `` with `<…>` placeholders).

use std::path::{Path, PathBuf};

use super::{read, root};

/// Every non-test Rust file under src/, as (path, text); inline `mod tests { … }` cut off.
pub fn source_files() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&root().join("src"), &mut paths);
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name == "tests.rs" || name.ends_with("_tests.rs") || name == "fake_host.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable source");
        let text = match text.find("#[cfg(test)]\nmod tests {") {
            Some(cut) => text[..cut].to_string(),
            None => text,
        };
        let relative = path
            .strip_prefix(root())
            .unwrap_or(&path)
            .display()
            .to_string();
        files.push((relative, text));
    }
    files
}

/// A piece of a log message: fixed text, or a placeholder (`{…}` in the source, `<…>` in the
/// docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Hole,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// As Envoy prints it: `error`, `warning`, `info` or `debug`.
    pub level: &'static str,
    pub pieces: Vec<Piece>,
    /// Where it was found, for messages.
    pub origin: String,
}

impl LogLine {
    pub fn shown(&self) -> String {
        let mut text = format!("[{}] ", self.level);
        for piece in &self.pieces {
            match piece {
                Piece::Text(fixed) => text.push_str(fixed),
                Piece::Hole => text.push_str("<…>"),
            }
        }
        text
    }

    /// The fixed text before the first placeholder.
    pub fn fixed_start(&self) -> &str {
        match self.pieces.first() {
            Some(Piece::Text(fixed)) => fixed,
            _ => "",
        }
    }

    /// Whether the docs' `quoted` line is this source line: same level, same fixed text, one
    /// `<…>` per `{…}`, except that a `{…}` ending the message may stand for more (an error
    /// quoted as `<field>: <reason>`).
    pub fn is_quoted_by(&self, quoted: &LogLine) -> bool {
        if self.level != quoted.level {
            return false;
        }
        let mut theirs = quoted.pieces.iter();
        for (index, piece) in self.pieces.iter().enumerate() {
            let last = index + 1 == self.pieces.len();
            match (piece, theirs.next()) {
                (Piece::Hole, Some(_)) if last => return true,
                (mine, Some(their)) if mine == their => {}
                _ => return false,
            }
        }
        theirs.next().is_none()
    }
}

/// Reads the Rust string literal at the start of `text` (after whitespace): its value, with
/// escapes and line continuations resolved.
pub fn string_literal(text: &str) -> Option<String> {
    let mut chars = text.trim_start().chars().peekable();
    if chars.next()? != '"' {
        return None;
    }
    let mut value = String::new();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(value),
            '\\' => match chars.next()? {
                'n' => value.push('\n'),
                't' => value.push('\t'),
                '\\' => value.push('\\'),
                '"' => value.push('"'),
                '\'' => value.push('\''),
                '\n' => {
                    // A line continuation: the newline and the next line's indent vanish.
                    while chars.next_if(|c| c.is_whitespace()).is_some() {}
                }
                other => panic!("unexpected escape \\{other} in a log message"),
            },
            other => value.push(other),
        }
    }
    None
}

/// A format string's pieces: fixed text and `{…}` placeholders (`{{`/`}}` are literal braces).
pub fn format_pieces(format: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut fixed = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' | '}' if chars.peek() == Some(&c) => {
                chars.next();
                fixed.push(c);
            }
            '{' => {
                for inner in chars.by_ref() {
                    if inner == '}' {
                        break;
                    }
                }
                if !fixed.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut fixed)));
                }
                pieces.push(Piece::Hole);
            }
            other => fixed.push(other),
        }
    }
    if !fixed.is_empty() {
        pieces.push(Piece::Text(fixed));
    }
    pieces
}

/// A quoted message's pieces: fixed text and `<…>` placeholders.
pub fn quoted_pieces(message: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    for (index, chunk) in message.split('<').enumerate() {
        let fixed = if index == 0 {
            chunk
        } else {
            pieces.push(Piece::Hole);
            let (_, after) = chunk
                .split_once('>')
                .unwrap_or_else(|| panic!("unclosed <…> in {message:?}"));
            after
        };
        if !fixed.is_empty() {
            pieces.push(Piece::Text(fixed.to_string()));
        }
    }
    pieces
}

pub fn source_log_lines() -> Vec<LogLine> {
    let mut lines = Vec::new();
    for (path, text) in source_files() {
        for (macro_name, level) in [
            ("error!(", "error"),
            ("warn!(", "warning"),
            ("info!(", "info"),
            ("debug!(", "debug"),
        ] {
            for (at, _) in text.match_indices(macro_name) {
                let before = text[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue; // another macro whose name ends the same way
                }
                let line_number = text[..at].lines().count();
                let origin = format!("{path}:{line_number}");
                let format = string_literal(&text[at + macro_name.len()..]).unwrap_or_else(|| {
                    panic!("{origin}: {macro_name} without a plain string literal first")
                });
                lines.push(LogLine {
                    level,
                    pieces: format_pieces(&format),
                    origin,
                });
            }
        }
    }
    assert!(
        lines.len() > 20,
        "only {} log lines found in src/: is the scan still right?",
        lines.len()
    );
    lines
}

/// The lines docs/troubleshooting.md quotes: list items ``- `[level] message` ``.
pub fn documented_log_lines() -> Vec<LogLine> {
    let doc = read("docs/troubleshooting.md");
    let mut lines = Vec::new();
    for (index, line) in doc.lines().enumerate() {
        let Some(quoted) = line.trim_start().strip_prefix("- `[") else {
            continue;
        };
        let origin = format!("docs/troubleshooting.md:{}", index + 1);
        let quoted = quoted.split('`').next().unwrap_or_default();
        let (level, message) = quoted
            .split_once("] ")
            .unwrap_or_else(|| panic!("{origin}: no level in {line}"));
        let level = match level {
            "error" => "error",
            "warning" => "warning",
            "info" => "info",
            "debug" => "debug",
            other => panic!("{origin}: unknown level {other:?}"),
        };
        lines.push(LogLine {
            level,
            pieces: quoted_pieces(message),
            origin,
        });
    }
    lines
}
