//! Flow collections, `[a, b]` and `{key: value}`: they nest, may span lines and end with
//! their closing bracket, whatever the indentation.

use serde_json::{Map, Value};

use super::{schema, Parsed, Parser};

impl Parser<'_> {
    /// The `[..]` or `{..}` at the cursor.
    pub(super) fn flow_collection(&mut self) -> Parsed<Value> {
        self.enter()?;
        let open = self.pos;
        let is_sequence = self.peek() == b'[';
        let close = if is_sequence { b']' } else { b'}' };
        self.pos += 1;
        let mut items = Vec::new();
        let mut map = Map::new();
        loop {
            self.skip_flow_blanks(open)?;
            if self.peek() == close {
                break;
            }
            let entry = self.pos;
            if !is_sequence && matches!(self.peek(), b'[' | b'{') {
                return Err(self.error("complex keys (a [..] or {..} key) are not supported"));
            }
            let node = self.flow_node()?;
            let multi_line = self.text[entry..self.pos].contains('\n');
            self.skip_flow_blanks(open)?;
            if !is_sequence || self.peek() == b':' {
                // A mapping entry; inside `[..]`, `a: 1` is a mapping of that one entry.
                if multi_line && self.peek() == b':' {
                    return Err(self.error_at(
                        entry,
                        "a key inside [..] or {..} must fit on one line; is a bracket unclosed?",
                    ));
                }
                let key = schema::key_text(node).map_err(|reason| self.error_at(entry, reason))?;
                let value = if self.peek() == b':' {
                    self.pos += 1;
                    self.flow_value(open, close)?
                } else {
                    Value::Null
                };
                if is_sequence {
                    let mut pair = Map::new();
                    pair.insert(key, value);
                    items.push(Value::Object(pair));
                } else if map.contains_key(&key) {
                    return Err(self.error_at(entry, format!("duplicate key {key:?}")));
                } else {
                    map.insert(key, value);
                }
            } else {
                items.push(node);
            }
            self.skip_flow_blanks(open)?;
            match self.peek() {
                b',' => self.pos += 1,
                byte if byte == close => break,
                _ => {
                    return Err(self.error(format!(
                        "expected ',' or '{}', found {}",
                        char::from(close),
                        self.char_here()
                    )))
                }
            }
        }
        self.pos += 1;
        self.depth -= 1;
        Ok(if is_sequence {
            Value::Array(items)
        } else {
            Value::Object(map)
        })
    }

    /// The value after an entry's `:`, null when the entry ends there.
    fn flow_value(&mut self, open: usize, close: u8) -> Parsed<Value> {
        self.skip_flow_blanks(open)?;
        if matches!(self.peek(), b',') || self.peek() == close {
            return Ok(Value::Null);
        }
        self.flow_node()
    }

    fn flow_node(&mut self) -> Parsed<Value> {
        match self.peek() {
            b'[' | b'{' => self.flow_collection(),
            _ => self.scalar(true, -1),
        }
    }

    /// Blanks, line breaks and comments; the text ending first means the collection opened
    /// at `open` is never closed.
    fn skip_flow_blanks(&mut self, open: usize) -> Parsed<()> {
        loop {
            self.skip_blanks();
            self.skip_comment();
            match self.peek() {
                b'\n' => self.pos += 1,
                0 => {
                    let bracket = char::from(self.text.as_bytes()[open]);
                    return Err(self.error_at(open, format!("'{bracket}' is never closed")));
                }
                _ => return Ok(()),
            }
        }
    }
}
