//! The streaming rewrite (`StreamRewrite`) against the whole-body one (`rewrite_model`): the
//! generated bodies of body_rewrite.rs, and mutations of them, cut into random chunks.

use ai_load_balancer::rewrite::{rewrite_model, StreamRewrite};
use proptest::prelude::*;

use crate::body_rewrite::{body_with_models, JSON_TOKENS};
use crate::mutate::{any_bytes, mutated, token_soup};
use crate::runner::config;

/// `body` fed in chunks cut at `cuts` (any order, any values: reduced into the body), with
/// the output and how many model values were replaced.
fn streamed(body: &[u8], new_model: &str, cuts: &[usize]) -> (Vec<u8>, usize) {
    let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut % (body.len() + 1)).collect();
    cuts.sort_unstable();
    let mut rewrite = StreamRewrite::new();
    let mut out = Vec::new();
    let mut from = 0;
    for cut in cuts.into_iter().chain([body.len()]) {
        rewrite.feed(&body[from..cut], new_model, &mut out);
        from = cut;
    }
    rewrite.finish(&mut out);
    (out, rewrite.rewritten())
}

/// Any input: the output is the same for any split, and it is `rewrite_model`'s whenever that
/// rewrites, the input itself when nothing was rewritten.
fn check_any_split(body: &[u8], new_model: &str, cuts: &[usize]) -> Result<(), TestCaseError> {
    let (whole, rewritten) = streamed(body, new_model, &[]);
    let (split, _) = streamed(body, new_model, cuts);
    prop_assert_eq!(&split, &whole);
    match rewrite_model(body, new_model) {
        Ok(expected) => prop_assert_eq!(whole, expected),
        Err(_) if rewritten == 0 => prop_assert_eq!(whole, body),
        // Malformed after a model value went out: prefix rewritten, rest untouched (unit tests).
        Err(_) => {}
    }
    Ok(())
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(any::<usize>(), 0..12)
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn generated_bodies_split_anywhere_match_the_whole_rewrite(
        body in body_with_models(),
        new in any::<String>(),
        cuts in cuts(),
    ) {
        let expected = rewrite_model(&body.bytes, &new).unwrap();
        prop_assert_eq!(streamed(&body.bytes, &new, &cuts).0, expected);
    }

    #[test]
    fn generated_bodies_byte_by_byte(body in body_with_models()) {
        let every_byte: Vec<usize> = (1..body.bytes.len()).collect();
        let expected = rewrite_model(&body.bytes, "m").unwrap();
        prop_assert_eq!(streamed(&body.bytes, "m", &every_byte).0, expected);
    }

    #[test]
    fn mutated_bodies_split_anywhere(
        body in mutated(body_with_models().prop_map(|body| body.bytes), JSON_TOKENS),
        cuts in cuts(),
    ) {
        check_any_split(&body, "new\"model\u{1}", &cuts)?;
    }

    #[test]
    fn arbitrary_bytes_split_anywhere(body in any_bytes(), cuts in cuts()) {
        check_any_split(&body, "m", &cuts)?;
    }

    #[test]
    fn json_token_soup_split_anywhere(body in token_soup(JSON_TOKENS), cuts in cuts()) {
        check_any_split(&body, "m", &cuts)?;
    }
}
