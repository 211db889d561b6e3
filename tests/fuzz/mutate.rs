//! Near-valid inputs: a valid one with a few bytes set, inserted, removed, copied or cut, and
//! token soup (the format's meaningful fragments in any order).

use proptest::prelude::*;
use proptest::sample::Index;

#[derive(Debug, Clone)]
enum Mutation {
    /// One byte overwritten with any byte.
    Set(Index, u8),
    /// One of the format's tokens inserted.
    Insert(Index, Index),
    /// Up to 16 bytes removed.
    Remove(Index, usize),
    /// Up to 64 bytes copied elsewhere (a value or a key repeated, brackets unbalanced).
    Copy(Index, usize, Index),
    /// The input cut short.
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set(at, byte)),
        (any::<Index>(), any::<Index>()).prop_map(|(at, token)| Mutation::Insert(at, token)),
        (any::<Index>(), 1..16usize).prop_map(|(at, len)| Mutation::Remove(at, len)),
        (any::<Index>(), 1..64usize, any::<Index>())
            .prop_map(|(from, len, to)| Mutation::Copy(from, len, to)),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation], tokens: &[&[u8]]) -> Vec<u8> {
    for mutation in mutations {
        let len = bytes.len();
        match mutation {
            Mutation::Set(at, byte) if len > 0 => bytes[at.index(len)] = *byte,
            Mutation::Insert(at, token) => {
                let token = tokens[token.index(tokens.len())];
                let at = at.index(len + 1);
                bytes.splice(at..at, token.iter().copied());
            }
            Mutation::Remove(at, count) if len > 0 => {
                let at = at.index(len);
                bytes.drain(at..(at + count).min(len));
            }
            Mutation::Copy(from, count, to) if len > 0 => {
                let from = from.index(len);
                let copied = bytes[from..(from + count).min(len)].to_vec();
                let to = to.index(len + 1);
                bytes.splice(to..to, copied);
            }
            Mutation::Truncate(at) => bytes.truncate(at.index(len + 1)),
            _ => {}
        }
    }
    bytes
}

/// A `seed` input with one to five mutations, inserting `tokens` among others.
pub fn mutated(
    seed: impl Strategy<Value = Vec<u8>>,
    tokens: &'static [&'static [u8]],
) -> impl Strategy<Value = Vec<u8>> {
    (seed, prop::collection::vec(mutation(), 1..6))
        .prop_map(move |(seed, mutations)| apply(seed, &mutations, tokens))
}

/// One of `seeds`, mutated.
pub fn mutated_from(
    seeds: &[&[u8]],
    tokens: &'static [&'static [u8]],
) -> impl Strategy<Value = Vec<u8>> {
    let seeds: Vec<Vec<u8>> = seeds.iter().map(|seed| seed.to_vec()).collect();
    mutated(prop::sample::select(seeds), tokens)
}

/// Up to 64 of `tokens` and arbitrary bytes, in any order.
pub fn token_soup(tokens: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        3 => prop::sample::select(tokens).prop_map(<[u8]>::to_vec),
        1 => prop::collection::vec(any::<u8>(), 1..4),
    ];
    prop::collection::vec(piece, 0..64).prop_map(|pieces| pieces.concat())
}

/// Arbitrary bytes, up to 512.
pub fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..512)
}
