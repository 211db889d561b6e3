//! Inputs for the rewrite benchmark: chat bodies of an exact size, and the baseline rewrite.
//!
//! # Body recipe
//!
//! `bench/bodies.py` is a byte-identical Python twin (the Envoy harness sends the same bodies),
//! so any change here must be made there too; the tests pin the sha256 of each bench size and of
//! every small size, as computed by the twin.
//!
//! 1. Start with `{"model":"auto","messages":[`.
//! 2. Append messages `{"role":"ROLE","content":"CONTENT"}` separated by `,`, ROLE alternating
//!    `user`, `assistant`, starting with `user`; CONTENT is [`PARAGRAPH`] as wire bytes.
//! 3. Before each message, compute its content budget: `size` minus the body so far, the
//!    message's opening (with its `,`), its closing `"}` and the suffix. While the budget is at
//!    least two paragraphs, append a full paragraph and go on; otherwise this is the last message.
//! 4. The last message's content is [`PARAGRAPH`] cut to at most the budget, moving the cut back
//!    while it would split a UTF-8 character or a `\` escape, then padded to exactly the budget
//!    with `abcdefghijklmnopqrstuvwxyz` repeated.
//! 5. End with `],"stream":false}`.
//!
//! The smallest possible body is 73 bytes (one message with empty content).

const PREFIX: &[u8] = br#"{"model":"auto","messages":["#;
const SUFFIX: &[u8] = br#"],"stream":false}"#;
const CLOSE: &[u8] = br#""}"#;
const ROLES: [&[u8]; 2] = [b"user", b"assistant"];
const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";

/// One message's content as it appears on the wire (already JSON-escaped), 927 bytes. Only the
/// two-byte escapes `\n` and `\"` occur, never `\\` or `\u`, which keeps the safe-cut rule simple.
pub const PARAGRAPH: &str = concat!(
    r"Hi! I'm planning a three-day trip to Lyon and Paris next month and I'd love some help ",
    r"with the itinerary.\nI arrive at a café near Gare de Lyon around noon on day one; my ",
    r#"friend Zoë says the \"bouchon\" restaurants in Lyon are a must, so please suggest two or "#,
    r"three that take reservations for four people. A colleague from Shanghai joins us on day ",
    r"two and only knows a few words of French, so she asked me to learn how to greet people ",
    r"properly (she taught me 你好 and 谢谢 in exchange). Could you also compare the TGV and ",
    r"Ouigo trains for the Lyon–Paris leg in terms of price, comfort and luggage rules? We care ",
    r"more about arriving relaxed than saving ten euros.\nFinally, give me a rainy-day plan for ",
    r"Paris: museums that are not too crowded on a Saturday, a bakery with a good pain au ",
    r"chocolat, and somewhere we can sit for an hour with laptops and decent Wi-Fi. Thanks — and ",
    r"keep the answer under 300 words, please.",
);

/// The sizes benchmarked natively and through Envoy: 1 KB, 100 KB, 1 MB, 10 MB.
pub const BENCH_SIZES: [usize; 4] = [1024, 102_400, 1_048_576, 10_485_760];

/// The model every benchmark writes into the body.
pub const NEW_MODEL: &str = "qwen3-max-preview";

/// A valid JSON chat body of exactly `size` bytes, built by the recipe above.
///
/// Returns `None` when `size` is below the 73-byte minimum.
pub fn chat_body(size: usize) -> Option<Vec<u8>> {
    let mut body = Vec::with_capacity(size);
    body.extend_from_slice(PREFIX);
    for index in 0.. {
        let opening = opening(index);
        let budget = size.checked_sub(body.len() + opening.len() + CLOSE.len() + SUFFIX.len())?;
        let last = budget < 2 * PARAGRAPH.len();
        body.extend_from_slice(&opening);
        if last {
            push_fitted_content(&mut body, budget);
        } else {
            body.extend_from_slice(PARAGRAPH.as_bytes());
        }
        body.extend_from_slice(CLOSE);
        if last {
            break;
        }
    }
    body.extend_from_slice(SUFFIX);
    debug_assert_eq!(body.len(), size);
    Some(body)
}

fn opening(index: usize) -> Vec<u8> {
    let mut opening = Vec::new();
    if index > 0 {
        opening.push(b',');
    }
    opening.extend_from_slice(br#"{"role":""#);
    opening.extend_from_slice(ROLES[index % 2]);
    opening.extend_from_slice(br#"","content":""#);
    opening
}

/// Appends [`PARAGRAPH`] cut to at most `budget` bytes, then letters up to exactly `budget`.
fn push_fitted_content(body: &mut Vec<u8>, budget: usize) {
    let mut cut = budget.min(PARAGRAPH.len());
    while !is_safe_cut(cut) {
        cut -= 1;
    }
    body.extend_from_slice(&PARAGRAPH.as_bytes()[..cut]);
    body.extend(LETTERS.iter().cycle().take(budget - cut));
}

/// A cut must not split a UTF-8 character or separate a `\` from the byte it escapes.
fn is_safe_cut(cut: usize) -> bool {
    cut == 0
        || cut >= PARAGRAPH.len()
        || PARAGRAPH.is_char_boundary(cut) && PARAGRAPH.as_bytes().get(cut - 1) != Some(&b'\\')
}

/// The baseline a typical filter implements: parse into a tree, set `model`, serialize.
pub fn serde_json_roundtrip(body: &[u8], new_model: &str) -> serde_json::Result<Vec<u8>> {
    let mut value: serde_json::Value = serde_json::from_slice(body)?;
    if let Some(object) = value.as_object_mut() {
        object.insert("model".to_owned(), new_model.into());
    }
    serde_json::to_vec(&value)
}

#[cfg(test)]
mod tests;
