//! Scalars written on the node's line: plain (folded across lines), single-quoted (`''` is a
//! quote) and double-quoted (backslash escapes).

use serde_json::Value;

use super::{schema, Parsed, Parser};

/// `,[]{}`: they end a plain scalar inside a flow collection.
pub(super) fn is_flow_indicator(byte: u8) -> bool {
    matches!(byte, b',' | b'[' | b']' | b'{' | b'}')
}

impl<'a> Parser<'a> {
    /// A scalar at the cursor, resolved by the core schema when plain; anything else that
    /// starts a node here is refused.
    pub(super) fn scalar(&mut self, flow: bool, parent: isize) -> Parsed<Value> {
        let start = self.pos;
        if matches!(self.peek(), b'"' | b'\'') {
            return self.quoted().map(Value::String);
        }
        if self.starts_plain(flow) {
            let text = self.plain(flow, parent);
            return schema::resolve(&text).map_err(|reason| self.error_at(start, reason));
        }
        let reason = match self.peek() {
            b'&' => "anchors (&) are not supported".into(),
            b'*' => "aliases (*) are not supported".into(),
            b'!' => "tags (!) are not supported".into(),
            b'?' => "complex keys (?) are not supported".into(),
            b'%' => "directives (%) are not supported".into(),
            b'-' => "a `- ` list item cannot start here".into(),
            b':' => "':' without a key before it".into(),
            _ => format!("unexpected {}", self.char_here()),
        };
        Err(self.error(reason))
    }

    /// Whether the `:`, `-` or `?` at the cursor is an indicator rather than part of a word:
    /// a blank follows it, or inside a flow collection `,[]{}`.
    fn separated(&self, flow: bool) -> bool {
        self.blank_at(1) || (flow && is_flow_indicator(self.peek_at(1)))
    }

    /// Whether a plain scalar starts at the cursor rather than an indicator.
    pub(super) fn starts_plain(&self, flow: bool) -> bool {
        match self.peek() {
            0 | b' ' | b'\t' | b'\n' | b'[' | b']' | b'{' | b'}' | b',' | b'#' | b'&' | b'*'
            | b'!' | b'|' | b'>' | b'\'' | b'"' | b'%' | b'@' | b'`' => false,
            b'-' | b'?' | b':' => !self.separated(flow),
            _ => true,
        }
    }

    /// A plain scalar's text on the current line, without trailing blanks; the cursor stops
    /// at what ends it (`: `, ` #`, the line end, and in flow collections `,[]{}`).
    pub(super) fn plain_segment(&mut self, flow: bool) -> &'a str {
        let start = self.pos;
        loop {
            match self.peek() {
                0 | b'\n' => break,
                b':' if self.separated(flow) => break,
                b'#' if self.at_comment() => break,
                byte if flow && is_flow_indicator(byte) => break,
                _ => self.pos += 1,
            }
        }
        trim_blanks_end(&self.text[start..self.pos])
    }

    /// A plain scalar, continued on following lines indented past `parent` (any line inside
    /// a flow collection): a single line break folds to a space, blank lines to line feeds.
    fn plain(&mut self, flow: bool, parent: isize) -> String {
        let mut text = self.plain_segment(flow).to_string();
        while self.peek() == b'\n' {
            let line_end = self.pos;
            let mut breaks = 0;
            let indent = loop {
                self.pos += 1;
                let line_start = self.pos;
                while self.peek() == b' ' {
                    self.pos += 1;
                }
                let indent = self.pos - line_start;
                self.skip_blanks();
                if self.peek() != b'\n' {
                    break indent;
                }
                breaks += 1;
            };
            let ends_here = match self.peek() {
                0 | b'#' => true,
                b':' => self.separated(flow),
                byte => flow && is_flow_indicator(byte),
            };
            let continues =
                !ends_here && (flow || (indent as isize > parent && !self.at_document_marker()));
            if !continues {
                self.pos = line_end;
                break;
            }
            push_breaks(&mut text, breaks);
            text.push_str(self.plain_segment(flow));
        }
        text
    }

    /// A quoted scalar; lines fold as in plain scalars, without the blanks around the break.
    pub(super) fn quoted(&mut self) -> Parsed<String> {
        let start = self.pos;
        let quote = self.peek();
        self.pos += 1;
        let mut text = String::new();
        // Blanks the text ends with are dropped when a line break folds, unless escaped.
        let mut keep = 0;
        loop {
            match self.peek() {
                0 => return Err(self.error_at(start, "unterminated quoted string")),
                b'\'' if quote == b'\'' && self.peek_at(1) == b'\'' => {
                    text.push('\'');
                    self.pos += 2;
                }
                byte if byte == quote => {
                    self.pos += 1;
                    return Ok(text);
                }
                b'\\' if quote == b'"' => {
                    self.pos += 1;
                    if self.peek() == b'\n' {
                        // An escaped line break joins the lines with nothing between them.
                        self.pos += 1;
                        self.skip_blanks();
                    } else {
                        self.escape(&mut text)?;
                    }
                }
                b'\n' => {
                    // Only blanks after `keep` can go, so only they are looked at: trimming the
                    // whole text made a value of escaped blanks (`\ ` ending each line)
                    // quadratic.
                    let dropped = text
                        .get(keep..)
                        .map_or(0, |tail| tail.len() - trim_blanks_end(tail).len());
                    text.truncate(text.len() - dropped);
                    let mut breaks = 0;
                    loop {
                        self.pos += 1;
                        self.skip_blanks();
                        if self.peek() != b'\n' {
                            break;
                        }
                        breaks += 1;
                    }
                    push_breaks(&mut text, breaks);
                }
                _ => {
                    let Some(char) = self.text[self.pos..].chars().next() else {
                        return Err(self.error_at(start, "unterminated quoted string"));
                    };
                    text.push(char);
                    self.pos += char.len_utf8();
                    if matches!(char, ' ' | '\t') {
                        continue;
                    }
                }
            }
            keep = text.len();
        }
    }

    /// A double-quoted escape, the cursor just past its backslash.
    fn escape(&mut self, text: &mut String) -> Parsed<()> {
        let Some(letter) = self.text[self.pos..].chars().next() else {
            return Err(self.error("unterminated quoted string"));
        };
        let digits = match letter {
            'x' => 2,
            'u' => 4,
            'U' => 8,
            _ => 0,
        };
        let char = if digits > 0 {
            let code = self.text.get(self.pos + 1..self.pos + 1 + digits);
            code.filter(|code| code.bytes().all(|byte| byte.is_ascii_hexdigit()))
                .and_then(|code| u32::from_str_radix(code, 16).ok())
                .and_then(char::from_u32)
        } else {
            match letter {
                '0' => Some('\0'),
                'a' => Some('\x07'),
                'b' => Some('\x08'),
                't' | '\t' => Some('\t'),
                'n' => Some('\n'),
                'v' => Some('\x0b'),
                'f' => Some('\x0c'),
                'r' => Some('\r'),
                'e' => Some('\x1b'),
                ' ' | '"' | '/' | '\\' => Some(letter),
                'N' => Some('\u{85}'),
                '_' => Some('\u{a0}'),
                'L' => Some('\u{2028}'),
                'P' => Some('\u{2029}'),
                _ => None,
            }
        };
        let Some(char) = char else {
            return Err(self.error(match digits {
                0 => format!("unknown escape \\{letter}"),
                _ => format!("\\{letter} needs {digits} hex digits naming a character"),
            }));
        };
        text.push(char);
        self.pos += 1 + digits;
        Ok(())
    }
}

/// The text without its trailing spaces and tabs.
fn trim_blanks_end(text: &str) -> &str {
    let bytes = text.as_bytes();
    let end = bytes
        .iter()
        .rposition(|&byte| byte != b' ' && byte != b'\t')
        .map_or(0, |last| last + 1);
    // `end` follows the last byte of a character: a blank is ASCII, never part of another.
    &text[..end]
}

/// How a folded line break reads: one space, or one line feed per blank line.
fn push_breaks(text: &mut String, blank_lines: usize) {
    if blank_lines == 0 {
        text.push(' ');
    }
    for _ in 0..blank_lines {
        text.push('\n');
    }
}
