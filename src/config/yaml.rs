//! A small YAML reader for plugin configurations, producing `serde_json::Value` directly.
//!
//! It replaces a full YAML library (~80 KB of the module) with the subset configurations use:
//! block and flow collections, plain, quoted and block scalars, comments, one document, and the
//! YAML 1.2 core schema. What it does not read (anchors, aliases, tags, complex keys, several
//! documents) it refuses, naming the line, rather than guessing.

mod block;
mod block_scalar;
mod flow;
mod scalar;
mod schema;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_differential;

use std::fmt;

use serde_json::Value;

/// Deeper nesting is refused: each level costs native stack, and wasm stacks are small.
const MAX_DEPTH: usize = 64;

/// Why a text is not YAML this reader accepts, and on which line (1-based). Boxed, as
/// `ConfigError` is: a one-pointer error keeps every `?` of the reader small in the module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError(Box<OnLine>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct OnLine {
    line: usize,
    reason: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.0.line, self.0.reason)
    }
}

impl std::error::Error for YamlError {}

type Parsed<T> = Result<T, YamlError>;

/// Reads one YAML document; an empty one (only blank lines or comments) is `null`.
pub fn parse(text: &str) -> Parsed<Value> {
    let mut normalized = String::new();
    let mut text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.contains('\r') {
        // CRLF and lone CR end lines as LF does.
        for (index, piece) in text.split('\r').enumerate() {
            if index > 0 && !piece.starts_with('\n') {
                normalized.push('\n');
            }
            normalized.push_str(piece);
        }
        text = &normalized;
    }
    let mut parser = Parser {
        text,
        pos: 0,
        depth: 0,
    };
    // 0 marks the end of the text for the scanner, so it may not appear inside it.
    if let Some(nul) = text.find('\0') {
        return Err(parser.error_at(nul, "NUL characters are not allowed"));
    }
    parser.document()
}

/// A cursor over the text. Every syntax character is ASCII, so byte positions always fall on
/// character boundaries where the text is sliced.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn document(&mut self) -> Parsed<Value> {
        let mut root = None;
        let mut ended = false;
        loop {
            let column = self.skip_to_content()?;
            if self.peek() == 0 {
                return Ok(root.unwrap_or(Value::Null));
            }
            if ended {
                return Err(self.error("several documents; expected one"));
            }
            match column {
                Some(_) if root.is_some() => {
                    return Err(self.error("bad indentation: this line belongs to nothing above"))
                }
                Some(column) => root = Some(self.block_node(column, -1)?),
                None if self.peek() == b'-' => {
                    if root.is_some() {
                        return Err(self.error("several documents; expected one"));
                    }
                    self.pos += 3;
                    root = Some(self.value_after_indicator(-1, false)?);
                }
                None => {
                    self.pos += 3;
                    self.finish_line()?;
                    ended = true;
                }
            }
        }
    }

    /// The byte at the cursor, 0 at the end of the text.
    fn peek(&self) -> u8 {
        self.peek_at(0)
    }

    fn peek_at(&self, offset: usize) -> u8 {
        self.text
            .as_bytes()
            .get(self.pos + offset)
            .copied()
            .unwrap_or(0)
    }

    /// Whether the byte at `offset` separates tokens: a space, a tab, a line end or the end.
    fn blank_at(&self, offset: usize) -> bool {
        matches!(self.peek_at(offset), b' ' | b'\t' | b'\n' | 0)
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), b' ' | b'\t') {
            self.pos += 1;
        }
    }

    fn column(&self) -> usize {
        let before = &self.text.as_bytes()[..self.pos];
        let line_start = before
            .iter()
            .rposition(|&byte| byte == b'\n')
            .map_or(0, |at| at + 1);
        self.pos - line_start
    }

    /// `---` or `...` starting a line and followed by a blank.
    fn at_document_marker(&self) -> bool {
        let rest = &self.text[self.pos..];
        self.column() == 0
            && (rest.starts_with("---") || rest.starts_with("..."))
            && self.blank_at(3)
    }

    /// The character at the cursor, quoted, for error messages.
    fn char_here(&self) -> String {
        match self.text[self.pos..].chars().next() {
            Some(char) => format!("'{char}'"),
            None => "the end of the text".to_string(),
        }
    }

    /// Whether a comment starts at the cursor: `#` at a line start or after a blank.
    fn at_comment(&self) -> bool {
        self.peek() == b'#'
            && (self.pos == 0 || matches!(self.text.as_bytes()[self.pos - 1], b' ' | b'\t' | b'\n'))
    }

    fn skip_comment(&mut self) {
        if self.at_comment() {
            self.pos = self.text[self.pos..]
                .find('\n')
                .map_or(self.text.len(), |at| self.pos + at);
        }
    }

    /// One level deeper into nested collections, refused past `MAX_DEPTH`.
    fn enter(&mut self) -> Parsed<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn error(&self, reason: impl Into<String>) -> YamlError {
        self.error_at(self.pos, reason)
    }

    fn error_at(&self, pos: usize, reason: impl Into<String>) -> YamlError {
        let line = self.text.as_bytes()[..pos.min(self.text.len())]
            .iter()
            .filter(|&&byte| byte == b'\n')
            .count();
        YamlError(Box::new(OnLine {
            line: line + 1,
            reason: reason.into(),
        }))
    }
}
