//! Block structure: mappings and sequences laid out by indentation, and the node that follows
//! an indicator (`key:`, `- `, `---`) on its line or on the lines below.

use serde_json::{Map, Value};

use super::{schema, Parsed, Parser};

impl Parser<'_> {
    /// Moves past blank and comment lines to the next content, returning its column; `None`
    /// at the end of the text or at a document marker (`---`, `...`).
    pub(super) fn skip_to_content(&mut self) -> Parsed<Option<usize>> {
        loop {
            while self.peek() == b' ' {
                self.pos += 1;
            }
            let column = self.column();
            let tabbed = self.peek() == b'\t';
            self.skip_blanks();
            self.skip_comment();
            match self.peek() {
                0 => return Ok(None),
                b'\n' => self.pos += 1,
                _ if tabbed => return Err(self.error("tabs cannot indent YAML; use spaces")),
                _ if self.at_document_marker() => return Ok(None),
                _ => return Ok(Some(column)),
            }
        }
    }

    /// Requires the rest of the line to be blank or a comment, and moves to the next line.
    pub(super) fn finish_line(&mut self) -> Parsed<()> {
        self.skip_blanks();
        self.skip_comment();
        match self.peek() {
            0 => Ok(()),
            b'\n' => {
                self.pos += 1;
                Ok(())
            }
            b':' => Err(self.error(
                "unexpected ':' (check the indentation: a nested mapping goes on its own lines)",
            )),
            _ => Err(self.error(format!(
                "unexpected {} after a complete value",
                self.char_here()
            ))),
        }
    }

    /// The node after an indicator of a collection at `indent`: on the same line, or on the
    /// lines below when indented further. `in_sequence` (after `- `) lets a mapping or a
    /// sequence start on the indicator's line; after `key:` a sequence may instead sit at the
    /// key's own indentation.
    pub(super) fn value_after_indicator(
        &mut self,
        indent: isize,
        in_sequence: bool,
    ) -> Parsed<Value> {
        self.skip_blanks();
        if !matches!(self.peek(), b'\n' | 0) && !self.at_comment() {
            return if in_sequence {
                let column = self.column();
                self.block_node(column, indent)
            } else {
                self.inline_node(indent)
            };
        }
        self.finish_line()?;
        match self.skip_to_content()? {
            Some(column) if column as isize > indent => self.block_node(column, indent),
            Some(column) if column as isize == indent && !in_sequence && self.at_entry() => {
                self.block_sequence(column)
            }
            _ => Ok(Value::Null),
        }
    }

    /// The node starting at the cursor, at `column`, inside a collection at `parent` indent.
    pub(super) fn block_node(&mut self, column: usize, parent: isize) -> Parsed<Value> {
        let start = self.pos;
        if self.at_entry() {
            self.block_sequence(column)
        } else if self.key()?.is_some() {
            self.pos = start;
            self.block_mapping(column)
        } else {
            self.inline_node(parent)
        }
    }

    /// `- ` (or `-` ending its line): a block sequence entry.
    fn at_entry(&self) -> bool {
        self.peek() == b'-' && self.blank_at(1)
    }

    fn block_sequence(&mut self, indent: usize) -> Parsed<Value> {
        self.enter()?;
        let mut items = Vec::new();
        loop {
            self.pos += 1;
            items.push(self.value_after_indicator(indent as isize, true)?);
            match self.skip_to_content()? {
                Some(column) if column == indent && self.at_entry() => {}
                Some(column) if column > indent => {
                    return Err(self.error("bad indentation: deeper than the list's items"))
                }
                _ => break,
            }
        }
        self.depth -= 1;
        Ok(Value::Array(items))
    }

    fn block_mapping(&mut self, indent: usize) -> Parsed<Value> {
        self.enter()?;
        let mut map = Map::new();
        loop {
            let start = self.pos;
            let Some(key) = self.key()? else {
                return Err(self.error("expected a `key: value` entry like the lines above"));
            };
            if map.contains_key(&key) {
                return Err(self.error_at(start, format!("duplicate key {key:?}")));
            }
            let value = self.value_after_indicator(indent as isize, false)?;
            map.insert(key, value);
            match self.skip_to_content()? {
                Some(column) if column == indent => {}
                Some(column) if column > indent => {
                    return Err(self.error("bad indentation: deeper than the mapping's keys"))
                }
                _ => break,
            }
        }
        self.depth -= 1;
        Ok(Value::Object(map))
    }

    /// A mapping key and its `:` at the cursor, if the line holds one; otherwise the cursor
    /// stays put.
    fn key(&mut self) -> Parsed<Option<String>> {
        let start = self.pos;
        let mut quoted = None;
        let mut plain = "";
        match self.peek() {
            b'"' | b'\'' => quoted = Some(self.quoted()?),
            b'?' if self.blank_at(1) => {
                return Err(self.error("complex keys (?) are not supported"))
            }
            _ if self.starts_plain(false) => plain = self.plain_segment(false),
            _ => return Ok(None),
        }
        self.skip_blanks();
        if self.peek() != b':' || !self.blank_at(1) {
            self.pos = start;
            return Ok(None);
        }
        if self.text[start..self.pos].contains('\n') {
            return Err(self.error_at(start, "a mapping key must fit on one line"));
        }
        self.pos += 1;
        match quoted {
            Some(text) => Ok(Some(text)),
            None => schema::resolve(plain)
                .and_then(schema::key_text)
                .map(Some)
                .map_err(|reason| self.error_at(start, reason)),
        }
    }

    /// A node that cannot be a block collection: a scalar or a flow collection, then the end
    /// of its line.
    pub(super) fn inline_node(&mut self, parent: isize) -> Parsed<Value> {
        let value = match self.peek() {
            b'|' | b'>' => return self.block_scalar(parent).map(Value::String),
            b'[' | b'{' => {
                let value = self.flow_collection()?;
                self.skip_blanks();
                if self.peek() == b':' {
                    return Err(self.error("complex keys (a [..] or {..} key) are not supported"));
                }
                value
            }
            _ => self.scalar(false, parent)?,
        };
        self.finish_line()?;
        Ok(value)
    }
}
