//! Header maps as the proxy-wasm ABI carries them: the pair count, then each name's and value's
//! length (u32, little endian), then each name and value followed by a NUL byte. Reading never
//! trusts the announced sizes.

pub fn encode_pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
    let size: usize = pairs
        .iter()
        .map(|(name, value)| 8 + name.len() + value.len() + 2)
        .sum();
    let mut out = Vec::with_capacity(4 + size);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (name, value) in pairs {
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    }
    for (name, value) in pairs {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    out
}

/// The pairs of an encoded map; `None` when the bytes do not hold what they announce. Names
/// are read as lossy text: a host could hand over any bytes.
pub fn decode_pairs(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let read_u32 = |at: usize| -> Option<usize> {
        let word: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(word)).ok()
    };
    let count = read_u32(0)?;
    let mut text = count.checked_mul(8)?.checked_add(4)?;
    if text > bytes.len() {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    for index in 0..count {
        let name_size = read_u32(4 + index * 8)?;
        let value_size = read_u32(8 + index * 8)?;
        let name = bytes.get(text..text.checked_add(name_size)?)?;
        text = text.checked_add(name_size)?.checked_add(1)?;
        let value = bytes.get(text..text.checked_add(value_size)?)?;
        text = text.checked_add(value_size)?.checked_add(1)?;
        pairs.push((String::from_utf8_lossy(name).into_owned(), value.to_vec()));
    }
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_survive_a_round_trip() {
        let pairs = [
            (":path", "/v1/chat/completions"),
            ("x-empty", ""),
            ("a", "b"),
        ];
        let decoded = decode_pairs(&encode_pairs(&pairs)).unwrap();
        let expected: Vec<(String, Vec<u8>)> = pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect();
        assert_eq!(decoded, expected);
        assert_eq!(decode_pairs(&encode_pairs(&[])).unwrap(), Vec::new());
        assert_eq!(decode_pairs(&[]).unwrap(), Vec::new());
    }

    #[test]
    fn maps_that_lie_about_their_sizes_read_as_nothing() {
        let good = encode_pairs(&[("name", "value")]);
        // Every cut short of the value's last byte (its closing NUL is not needed).
        for cut in 0..good.len() - 2 {
            assert_eq!(decode_pairs(&good[..=cut]), None, "cut at {cut}");
        }
        let mut huge_count = good.clone();
        huge_count[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_pairs(&huge_count), None);
        let mut huge_name = good;
        huge_name[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_pairs(&huge_name), None);
    }

    #[test]
    fn names_that_are_not_utf8_read_as_lossy_text() {
        let mut bytes = encode_pairs(&[("ab", "v")]);
        bytes[12] = 0xff;
        let pairs = decode_pairs(&bytes).unwrap();
        assert_eq!(pairs[0].0, "\u{fffd}b");
        assert_eq!(pairs[0].1, b"v");
    }
}
