//! Token usage read from a response body as its chunks pass, without holding the body.
//!
//! LLM servers report what a request cost in a `usage` object: OpenAI-style `prompt_tokens` /
//! `completion_tokens` (chat, legacy completions, embeddings; vLLM and SGLang alike), and
//! Anthropic-style `input_tokens` / `output_tokens`. A plain answer carries it once, near the
//! end; a stream carries it in one or more SSE events: OpenAI's last chunk (the others say
//! `"usage":null`), vLLM's and SGLang's every chunk (cumulative), Anthropic's `message_start`
//! (input, nested in `message`) and `message_delta` (cumulative output). So for each field the
//! latest value seen wins: cumulative counts end on the total, and a field reported once (the
//! input in Anthropic's `message_start`) is kept when later events leave it out.
//!
//! [`UsageScanner`] is a JSON lexer reduced to what finds those: strings (with escapes) and
//! nesting depth, carried across chunk boundaries in a few fixed-size fields, so any split of the
//! body reads the same and memory stays the same whatever its size. A `usage` counts only as an
//! object key (a string followed by `:`) at any depth, never as text inside a string (a model's
//! answer quoting a usage object is escaped). Of its members, only integer values of the four
//! count keys directly inside it count; nested objects (`*_details`), `null`, negative, fractional
//! or exponent numbers, and values above [`MAX_TOKENS`] are ignored; a count is taken once it
//! ends (a body cut inside its digits leaves it out). Keys are compared raw: a key spelt with
//! escapes (`"us\u0061ge"`), which no server writes, does not match.
//!
//! Nothing is validated: SSE framing (`event:`, `data:`, `: ping`, `[DONE]`) has no quotes and
//! passes as noise, and a malformed body (an HTML error page, binary) yields whatever it happens
//! to spell, usually nothing. A raw control byte ends a string, since JSON never holds one there:
//! an event cut short inside a string does not swallow the next one.

use crate::rewrite::find_string_special;

#[cfg(test)]
mod tests;

/// Token counts a response reported (None: never reported).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TokenUsage {
    pub input: Option<u64>,
    pub output: Option<u64>,
}

/// Largest count believed (10^12): no response spends a trillion tokens, so a larger value is
/// junk, and counters summing believed values cannot overflow a u64.
pub const MAX_TOKENS: u64 = 1_000_000_000_000;

/// Longest key that means anything here (`completion_tokens`); longer keys never match.
const KEY_CAPACITY: usize = 17;
/// `key_len` of a key that cannot match: too long, or spelt with an escape.
const KEY_UNMATCHABLE: u8 = u8::MAX;

/// Reads [`TokenUsage`] from a body fed in chunks, in order.
#[derive(Debug, Default)]
pub struct UsageScanner {
    usage: TokenUsage,
    state: State,
    /// Objects and arrays open (saturating: a malformed body may close more than it opened).
    depth: u32,
    /// `depth` inside the `usage` object being read; 0 when none is.
    usage_depth: u32,
    /// The raw bytes of the string being read or just read, while it may be a wanted key.
    key: [u8; KEY_CAPACITY],
    key_len: u8,
    /// The count being read, capped at `MAX_TOKENS + 1`.
    number: u64,
}

/// Where the lexer is, between any two bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Outside strings, not after a wanted key.
    #[default]
    Outside,
    String,
    /// After a backslash in a string: the next byte is escaped.
    Escape,
    /// After a string: it is a key if `:` follows.
    AfterString,
    /// After a wanted key and its `:`, before its value.
    Value(Field),
    /// Inside the digits of a count.
    Number(Field),
}

/// What a wanted key's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// The `usage` object.
    Usage,
    Input,
    Output,
}

impl UsageScanner {
    /// Reads the next piece of the body; any split, any sizes.
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut at = 0;
        while let Some(&byte) = chunk.get(at) {
            match self.state {
                State::String => {
                    // Skip to the string's next special byte, keeping what may be a key.
                    let end = find_string_special(chunk, at);
                    self.keep_key_bytes(chunk.get(at..end).unwrap_or_default());
                    let Some(&special) = chunk.get(end) else {
                        return;
                    };
                    self.state = match special {
                        b'"' => State::AfterString,
                        b'\\' => {
                            self.key_len = KEY_UNMATCHABLE;
                            State::Escape
                        }
                        // A control byte: not JSON text, so not a string after all.
                        _ => State::Outside,
                    };
                    at = end;
                }
                State::Outside => match byte {
                    b'"' => {
                        self.state = State::String;
                        self.key_len = 0;
                    }
                    b'{' | b'[' => self.depth = self.depth.saturating_add(1),
                    b'}' | b']' => {
                        if self.depth == self.usage_depth {
                            self.usage_depth = 0;
                        }
                        self.depth = self.depth.saturating_sub(1);
                    }
                    _ => {}
                },
                // A control byte ends the string here too (see the module's doc).
                State::Escape if byte < 0x20 => self.state = State::Outside,
                State::Escape => self.state = State::String,
                State::AfterString | State::Value(_) if is_blank(byte) => {}
                State::AfterString if byte == b':' => self.state = self.value_of_key(),
                State::Value(Field::Usage) if byte == b'{' => {
                    self.depth = self.depth.saturating_add(1);
                    self.usage_depth = self.depth;
                    self.state = State::Outside;
                }
                State::Value(field @ (Field::Input | Field::Output)) if byte.is_ascii_digit() => {
                    self.number = u64::from(byte - b'0');
                    self.state = State::Number(field);
                }
                State::Number(_) if byte.is_ascii_digit() => {
                    // At most (10^12 + 1) * 10 + 9: never overflows.
                    self.number = (self.number * 10 + u64::from(byte - b'0')).min(MAX_TOKENS + 1);
                }
                State::Number(field) if is_blank(byte) || matches!(byte, b',' | b'}' | b']') => {
                    self.believe(field);
                    // The byte that ended the count is read again, outside.
                    self.state = State::Outside;
                    continue;
                }
                // Anything else ends a key, value or count (`.` or `e` after digits: not an
                // integer), and is read again, outside.
                State::AfterString | State::Value(_) | State::Number(_) => {
                    self.state = State::Outside;
                    continue;
                }
            }
            at += 1;
        }
    }

    /// What was read so far.
    pub fn usage(&self) -> TokenUsage {
        self.usage
    }

    /// Appends a string's bytes to the key, or marks it unmatchable once they no longer fit.
    #[inline(always)]
    fn keep_key_bytes(&mut self, bytes: &[u8]) {
        let from = usize::from(self.key_len);
        match self.key.get_mut(from..from + bytes.len()) {
            Some(room) => {
                room.copy_from_slice(bytes);
                // Fits in KEY_CAPACITY, so in a u8.
                self.key_len = (from + bytes.len()) as u8;
            }
            None => self.key_len = KEY_UNMATCHABLE,
        }
    }

    /// The state after a key and its `:`: its value is wanted, or not. Inside a usage object
    /// only its direct count keys are; a `usage` nested in it is one of its details.
    fn value_of_key(&self) -> State {
        let key = self
            .key
            .get(..usize::from(self.key_len))
            .unwrap_or_default();
        if self.usage_depth == 0 {
            if key == b"usage" {
                return State::Value(Field::Usage);
            }
        } else if self.depth == self.usage_depth {
            match key {
                b"prompt_tokens" | b"input_tokens" => return State::Value(Field::Input),
                b"completion_tokens" | b"output_tokens" => return State::Value(Field::Output),
                _ => {}
            }
        }
        State::Outside
    }

    /// A count that ended (its next byte is not a digit, `.` or `e`): the latest wins.
    fn believe(&mut self, field: Field) {
        if self.number > MAX_TOKENS {
            return;
        }
        match field {
            Field::Input => self.usage.input = Some(self.number),
            Field::Output => self.usage.output = Some(self.number),
            Field::Usage => {}
        }
    }
}

#[inline(always)]
fn is_blank(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}
