use super::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// From `python3 bench/bodies.py`: the two generators must agree byte for byte.
const PYTHON_SHA256: [(usize, &str); 4] = [
    (
        1024,
        "faff554cf92427921db8e66b948cec1a8b057ab28662665f13a289ff6bc209da",
    ),
    (
        102_400,
        "3b1f0b31b23d0c8c875345bf1a596e2160e026db20d0574296301ce75e6a2c4e",
    ),
    (
        1_048_576,
        "920c7e3fe306cb72d3287f1b4c04e26bb95daba2fccd02e22f8a21ada220da34",
    ),
    (
        10_485_760,
        "f6981027c84240a4186ac3ead70a8ed7e82e30378531ba21d45555c9d27b9e97",
    ),
];
/// Also from `python3 bench/bodies.py`: the bodies of every size in [`SMALL_SIZES`], concatenated.
const PYTHON_SMALL_SIZES_SHA256: &str =
    "9b6a382690c362dab7fcb7fa8be74428a3df531f93328c0006f845e818b5ca8c";
/// Every way the last message can be cut and padded occurs among these sizes.
const SMALL_SIZES: std::ops::Range<usize> = 73..4 * PARAGRAPH.len();

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn assert_well_formed(body: &[u8], size: usize) {
    assert_eq!(body.len(), size);
    let value: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(value["model"], "auto");
    assert_eq!(value["stream"], false);
    let messages = value["messages"].as_array().unwrap();
    for (index, message) in messages.iter().enumerate() {
        assert_eq!(message["role"], ["user", "assistant"][index % 2]);
    }
}

#[test]
fn paragraph_has_escapes_and_non_ascii_but_no_long_escapes() {
    assert!(PARAGRAPH.contains(r"\n") && PARAGRAPH.contains(r#"\""#));
    assert!(PARAGRAPH.contains("你好") && PARAGRAPH.contains('é'));
    assert!(!PARAGRAPH.contains(r"\\") && !PARAGRAPH.contains(r"\u"));
    assert_eq!(PARAGRAPH.len(), 927);
}

#[test]
fn bodies_match_the_python_twin() {
    assert_eq!(PYTHON_SHA256.map(|(size, _)| size), BENCH_SIZES);
    for (size, expected) in PYTHON_SHA256 {
        let body = chat_body(size).unwrap();
        assert_well_formed(&body, size);
        assert_eq!(hex(&Sha256::digest(&body)), expected, "size {size}");
    }
}

#[test]
fn every_small_size_is_exact_valid_json_and_matches_the_python_twin() {
    assert_eq!(chat_body(SMALL_SIZES.start - 1), None);
    let mut concatenated = Sha256::new();
    for size in SMALL_SIZES {
        let body = chat_body(size).unwrap();
        assert_well_formed(&body, size);
        concatenated.update(&body);
    }
    assert_eq!(hex(&concatenated.finalize()), PYTHON_SMALL_SIZES_SHA256);
}

#[test]
fn filter_and_baseline_agree_on_the_result() {
    for size in [1024, 102_400] {
        let body = chat_body(size).unwrap();
        let filter = ai_load_balancer::rewrite::rewrite_model(&body, NEW_MODEL).unwrap();
        let baseline = serde_json_roundtrip(&body, NEW_MODEL).unwrap();
        let filter: Value = serde_json::from_slice(&filter).unwrap();
        let baseline: Value = serde_json::from_slice(&baseline).unwrap();
        assert_eq!(filter["model"], NEW_MODEL);
        assert_eq!(filter, baseline);
    }
}
