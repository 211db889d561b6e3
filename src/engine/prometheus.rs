//! The Prometheus text exposition format 0.0.4, read one sample at a time.
//!
//! Small on purpose (it ships in a size-limited wasm module): no regex and no allocation per
//! sample; names and labels are slices of the page. Tolerant on purpose: an engine's page is
//! read as well as it can be, so a line that does not parse is skipped and counted, never fatal.

use std::borrow::Cow;

/// One sample line: `name{labels} value [timestamp]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample<'a> {
    pub name: &'a str,
    /// The text between the braces as it stands on the page, values still escaped; `""` when
    /// the sample has no labels. Read it with [`Sample::label`] or [`Sample::label_pairs`].
    pub labels: &'a str,
    /// May be NaN or infinite: the page says so, and the reader decides what that means.
    pub value: f64,
}

impl<'a> Sample<'a> {
    /// The `(name, escaped value)` pairs of the label set, in page order.
    pub fn label_pairs(&self) -> LabelPairs<'a> {
        LabelPairs {
            text: self.labels,
            at: 0,
        }
    }

    /// The unescaped value of the label `name`; borrowed unless it held an escape.
    pub fn label(&self, name: &str) -> Option<Cow<'a, str>> {
        self.label_pairs()
            .find(|(label, _)| *label == name)
            .map(|(_, raw)| unescape(raw))
    }
}

/// Every sample on the page, in page order. Comments (`# HELP`, `# TYPE`, any `#` line) and
/// blank lines are passed over; malformed lines are skipped and counted in [`Samples::malformed`].
pub fn samples(text: &str) -> Samples<'_> {
    Samples {
        lines: text.split('\n'),
        malformed: 0,
    }
}

#[derive(Debug, Clone)]
pub struct Samples<'a> {
    lines: std::str::Split<'a, char>,
    malformed: usize,
}

impl Samples<'_> {
    /// Lines skipped so far because they were neither a sample, a comment nor blank.
    pub fn malformed(&self) -> usize {
        self.malformed
    }
}

impl<'a> Iterator for Samples<'a> {
    type Item = Sample<'a>;

    fn next(&mut self) -> Option<Sample<'a>> {
        for line in self.lines.by_ref() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let line = line.trim_start_matches(is_blank_char);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line) {
                Some(sample) => return Some(sample),
                None => self.malformed += 1,
            }
        }
        None
    }
}

/// `name [{labels}] value [timestamp] [# exemplar]`, leading blanks already gone. `None` if
/// anything is out of place.
fn parse_line(line: &str) -> Option<Sample<'_>> {
    let bytes = line.as_bytes();
    let name_end = name_end(bytes, 0, is_metric_name_byte)?;
    let name = &line[..name_end];
    let mut at = skip_blanks(bytes, name_end);
    let mut labels = "";
    if bytes.get(at) == Some(&b'{') {
        let close = label_set_end(bytes, at + 1)?;
        labels = &line[at + 1..close];
        at = close + 1;
    } else if at == name_end {
        // A name runs straight into something that is neither blank nor `{`: `foo-bar 1`.
        return None;
    }
    let mut fields = line[at..].split_ascii_whitespace();
    let value = fields.next()?.parse().ok()?;
    match fields.next() {
        None => {}
        // An OpenMetrics exemplar after the value: not 0.0.4, but harmless to pass over.
        Some(exemplar) if exemplar.starts_with('#') => {}
        Some(timestamp) => {
            // Milliseconds in 0.0.4; OpenMetrics writes seconds with a fraction. Either is
            // accepted and neither is used.
            timestamp.parse::<f64>().ok()?;
            if fields.next().is_some_and(|extra| !extra.starts_with('#')) {
                return None;
            }
        }
    }
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// The index of the `}` closing a label set that starts at `at` (just past the `{`), if the
/// set is well formed: `name="value"` pairs, comma-separated, a trailing comma allowed.
fn label_set_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        at = skip_blanks(bytes, at);
        if bytes.get(at) == Some(&b'}') {
            return Some(at);
        }
        at = label_value_start(bytes, name_end(bytes, at, is_label_name_byte)?)?;
        at = skip_blanks(bytes, quoted_end(bytes, at)? + 1);
        match bytes.get(at)? {
            b',' => at += 1,
            b'}' => return Some(at),
            _ => return None,
        }
    }
}

/// Past `="` after a label name ending at `at`; blanks around `=` are tolerated.
fn label_value_start(bytes: &[u8], at: usize) -> Option<usize> {
    let at = skip_blanks(bytes, at);
    (bytes.get(at) == Some(&b'=')).then_some(())?;
    let at = skip_blanks(bytes, at + 1);
    (bytes.get(at) == Some(&b'"')).then_some(at + 1)
}

/// The index of the `"` closing a quoted value whose text starts at `at`. A backslash
/// escapes the byte after it, so `\"` does not close the value; commas and braces are text.
fn quoted_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        match bytes.get(at)? {
            b'"' => return Some(at),
            b'\\' => at += 2,
            _ => at += 1,
        }
    }
}

/// The end of a name starting at `start`: at least one byte, not starting with a digit.
fn name_end(bytes: &[u8], start: usize, is_name_byte: fn(u8) -> bool) -> Option<usize> {
    let first = *bytes.get(start)?;
    if !is_name_byte(first) || first.is_ascii_digit() {
        return None;
    }
    let length = bytes[start..]
        .iter()
        .position(|&byte| !is_name_byte(byte))
        .unwrap_or(bytes.len() - start);
    Some(start + length)
}

fn is_metric_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b':'
}

fn is_label_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

fn is_blank_char(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn skip_blanks(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\t')) {
        at += 1;
    }
    at
}

/// The pairs of a label set already checked by [`label_set_end`].
#[derive(Debug, Clone)]
pub struct LabelPairs<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Iterator for LabelPairs<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        let bytes = self.text.as_bytes();
        let start = skip_blanks(bytes, self.at);
        let end = name_end(bytes, start, is_label_name_byte)?;
        let value_start = label_value_start(bytes, end)?;
        let value_end = quoted_end(bytes, value_start)?;
        self.at = skip_blanks(bytes, value_end + 1);
        if bytes.get(self.at) == Some(&b',') {
            self.at += 1;
        }
        Some((&self.text[start..end], &self.text[value_start..value_end]))
    }
}

/// A label value with `\\`, `\"` and `\n` resolved. Any other backslash is kept as written:
/// tolerance, where a strict parser would refuse the line.
pub fn unescape(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(escaped @ ('\\' | '"')) => out.push(escaped),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests;
