//! Block scalars: `|` keeps line breaks, `>` folds them; `-` strips the final line breaks,
//! `+` keeps them all, neither keeps one. An indentation digit may follow, as in `|2`.

use super::{Parsed, Parser};

/// What happens to the line breaks at the end of a block scalar.
#[derive(Clone, Copy, PartialEq)]
enum Chomping {
    Strip,
    Clip,
    Keep,
}

impl Parser<'_> {
    /// The block scalar whose header is at the cursor, inside a collection at `parent`
    /// indent; its content lines are indented further.
    pub(super) fn block_scalar(&mut self, parent: isize) -> Parsed<String> {
        let folded = self.peek() == b'>';
        self.pos += 1;
        let mut chomping = Chomping::Clip;
        let mut explicit_indent = None;
        for _ in 0..2 {
            match self.peek() {
                b'-' if chomping == Chomping::Clip => chomping = Chomping::Strip,
                b'+' if chomping == Chomping::Clip => chomping = Chomping::Keep,
                digit @ b'1'..=b'9' if explicit_indent.is_none() => {
                    explicit_indent = Some(usize::from(digit - b'0'));
                }
                _ => break,
            }
            self.pos += 1;
        }
        self.finish_line()?;
        let indent = match explicit_indent {
            Some(digit) => usize::try_from(parent).map_or(digit, |parent| parent + digit),
            None => self.detected_indent(parent),
        };
        let mut text = String::new();
        // After each content line: whether its line break is pending, and how many blank
        // lines followed it; `>` folds a single break between two lines that are not more
        // indented into a space.
        let mut pending_break = false;
        let mut blank_lines = 0;
        let mut previous_more_indented = false;
        loop {
            let line_start = self.pos;
            while self.pos - line_start < indent && self.peek() == b' ' {
                self.pos += 1;
            }
            if self.peek() == b'\n' {
                blank_lines += 1;
                self.pos += 1;
                continue;
            }
            if self.peek() == 0 || self.pos - line_start < indent || self.at_document_marker() {
                self.pos = line_start;
                break;
            }
            let more_indented = matches!(self.peek(), b' ' | b'\t');
            if folded && pending_break && !previous_more_indented && !more_indented {
                if blank_lines == 0 {
                    text.push(' ');
                }
            } else if pending_break {
                text.push('\n');
            }
            text.extend(std::iter::repeat_n('\n', blank_lines));
            blank_lines = 0;
            previous_more_indented = more_indented;
            let line_end = self.text[self.pos..]
                .find('\n')
                .map_or(self.text.len(), |at| self.pos + at);
            text.push_str(&self.text[self.pos..line_end]);
            self.pos = line_end;
            pending_break = self.peek() == b'\n';
            if pending_break {
                self.pos += 1;
            }
        }
        if pending_break && chomping != Chomping::Strip {
            text.push('\n');
        }
        if chomping == Chomping::Keep {
            text.extend(std::iter::repeat_n('\n', blank_lines));
        }
        Ok(text)
    }

    /// The indentation of the first line with content; at least one more than `parent`, so
    /// that a less indented line means the scalar is empty.
    fn detected_indent(&self, parent: isize) -> usize {
        let floor = usize::try_from(parent + 1).unwrap_or(0);
        let rest = &self.text[self.pos..];
        let first = rest
            .lines()
            .find(|line| !line.trim_start_matches(' ').is_empty());
        first.map_or(floor, |line| {
            (line.len() - line.trim_start_matches(' ').len()).max(floor)
        })
    }
}
