//! Source addresses and the status page's address ranges: which addresses a range holds; the
//! hand-written reader against `std::net`'s (the same answer for every text, on edge cases and
//! on many mutations of valid addresses, fixed seed); and range checks on octets against the
//! same checks on 128-bit integers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::address::{parse_ip, parse_socket_ip};
use super::status::{source_ip, AddressRange};
use crate::rng::Rng;

#[test]
fn addresses_match_their_ranges() {
    let range = |text: &str| AddressRange::parse(text).unwrap();
    let ip = |text: &str| source_ip(text).unwrap();
    assert!(range("127.0.0.1").contains(ip("127.0.0.1:5555")));
    assert!(!range("127.0.0.1").contains(ip("127.0.0.2:5555")));
    assert!(range("10.0.0.0/8").contains(ip("10.200.3.4:1")));
    assert!(!range("10.0.0.0/8").contains(ip("11.0.0.1:1")));
    assert!(range("0.0.0.0/0").contains(ip("8.8.8.8")));
    assert!(range("::1").contains(ip("[::1]:8080")));
    assert!(range("fd00::/8").contains(ip("[fd12::1]:1")));
    assert!(
        range("127.0.0.1").contains(ip("[::ffff:127.0.0.1]:9")),
        "IPv4-mapped"
    );
    assert!(!range("::1").contains(ip("127.0.0.1:1")));
    assert!(
        range("192.168.1.7").contains(ip("192.168.1.7")),
        "a bare address"
    );
    assert!(range("2001:db8::/32").contains(ip("2001:db8:1::9")));
    assert!(!range("2001:db8::/32").contains(ip("[2001:db9::1]:443")));
    assert!(
        range("fe80::/10").contains(ip("[fe80::1%2]:80")),
        "with a scope"
    );
    assert!(range("::ffff:0:0/96").contains(ip("::ffff:10.1.2.3")));
    assert!(!range("10.0.0.0/8").contains(ip("[::1]:80")));
    for bad in [
        "localhost",
        "10.0.0.0/33",
        "::/129",
        "1.2.3.4/x",
        "",
        "01.2.3.4",
        "1.2.3.4:80",
        "[::1]",
        "1::2::3",
        "1.2.3.4/",
    ] {
        assert!(AddressRange::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(source_ip("not an address"), None);
    assert_eq!(source_ip("1.2.3.4:65536"), None);
    assert_eq!(source_ip("[::1]"), None);
}

fn std_ip(text: &str) -> Option<IpAddr> {
    text.parse().ok()
}

fn std_socket_ip(text: &str) -> Option<IpAddr> {
    text.parse::<SocketAddr>().ok().map(|socket| socket.ip())
}

fn assert_reads_as_std(text: &str) {
    assert_eq!(parse_ip(text), std_ip(text), "address {text:?}");
    assert_eq!(
        parse_socket_ip(text),
        std_socket_ip(text),
        "socket {text:?}"
    );
}

const VALID: &[&str] = &[
    "0.0.0.0",
    "127.0.0.1",
    "255.255.255.255",
    "10.200.3.4:1",
    "1.2.3.4:65535",
    "1.2.3.4:00080",
    "::",
    "::1",
    "1::",
    "fd12::1",
    "2001:db8::ff00:42:8329",
    "2001:0DB8:0000:0000:0000:FF00:0042:8329",
    "1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7::",
    "::2:3:4:5:6:7:8",
    "1:2:3:4:5:6:1.2.3.4",
    "::ffff:127.0.0.1",
    "::1.2.3.4",
    "::1:80",
    "64:ff9b::192.0.2.33",
    "[::1]:8080",
    "[::ffff:127.0.0.1]:9",
    "[fe80::1%2]:80",
    "[fe80::1%4294967295]:0",
];

const INVALID: &[&str] = &[
    "",
    "localhost",
    "not an address",
    "1.2.3",
    "1.2.3.4.5",
    "01.2.3.4",
    "1.2.3.256",
    "1.2.3.1000",
    "1..3.4",
    " 1.2.3.4",
    "1.2.3.4 ",
    "1.2.3.4:",
    "1.2.3.4:65536",
    "1.2.3.4:+80",
    "1.2.3.4:99999999999",
    ":::",
    "1:::2",
    "1::2::3",
    "12345::",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7:8::",
    "::1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7:1.2.3.4",
    "1.2.3.4::",
    "::ffff:1.2.3.4:5",
    "::1.2.3",
    "g::1",
    "[::1]",
    "[::1]:",
    "[1.2.3.4]:80",
    "[fe80::1%]:80",
    "[fe80::1%4294967296]:80",
    "[::1]:65536",
];

#[test]
fn addresses_read_as_std_reads_them() {
    for text in VALID {
        assert!(
            std_ip(text).is_some() || std_socket_ip(text).is_some(),
            "{text:?} should be valid"
        );
        assert_reads_as_std(text);
    }
    for text in INVALID {
        assert!(
            std_ip(text).is_none() && std_socket_ip(text).is_none(),
            "{text:?} should be invalid"
        );
        assert_reads_as_std(text);
    }
}

#[test]
fn mutated_addresses_read_as_std_reads_them() {
    const ALPHABET: &[u8] = b"0123456789aAfFg.:[]%";
    let mut rng = Rng::new(6);
    let mut valid_seen = 0;
    for round in 0..40_000 {
        let seed = VALID[round % VALID.len()];
        let mut bytes = seed.as_bytes().to_vec();
        for _ in 0..=rng.below(3) {
            let at = rng.below(bytes.len() as u64 + 1) as usize;
            let byte = ALPHABET[rng.below(ALPHABET.len() as u64) as usize];
            match rng.below(3) {
                0 => bytes.insert(at, byte),
                1 if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ if at < bytes.len() => bytes[at] = byte,
                _ => bytes.push(byte),
            }
        }
        let text = String::from_utf8(bytes).unwrap();
        if std_ip(&text).is_some() || std_socket_ip(&text).is_some() {
            valid_seen += 1;
        }
        assert_reads_as_std(&text);
    }
    // The mutations reach both sides of the line, not only garbage.
    assert!(valid_seen > 2_000, "{valid_seen}");
}

/// The range check as first written, on 128-bit integers: the reference `contains` must agree
/// with.
fn contains_by_integers(range: &AddressRange, address: IpAddr) -> bool {
    let (network, address, bits) = match (range.network, address) {
        (IpAddr::V4(n), IpAddr::V4(a)) => (u128::from(u32::from(n)), u128::from(u32::from(a)), 32),
        (IpAddr::V6(n), IpAddr::V6(a)) => (u128::from(n), u128::from(a), 128),
        (IpAddr::V4(n), IpAddr::V6(a)) => match a.to_ipv4_mapped() {
            Some(a) => (u128::from(u32::from(n)), u128::from(u32::from(a)), 32),
            None => return false,
        },
        (IpAddr::V6(_), IpAddr::V4(_)) => return false,
    };
    let host_bits = bits - u32::from(range.prefix_len);
    network.checked_shr(host_bits).unwrap_or(0) == address.checked_shr(host_bits).unwrap_or(0)
}

#[test]
fn ranges_hold_the_addresses_an_integer_reference_says_they_hold() {
    let mut rng = Rng::new(7);
    let mut held = 0;
    for _ in 0..20_000 {
        let v4 = rng.below(2) == 0;
        let network = if v4 {
            IpAddr::V4(Ipv4Addr::from(rng.next_u64() as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(
                u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64()),
            ))
        };
        let max = if v4 { 32 } else { 128 };
        let range = AddressRange {
            network,
            prefix_len: rng.below(max + 1) as u8,
        };
        // Near the network (one bit flipped), in the other family, or IPv4-mapped.
        let flip = rng.below(max) as u32;
        let address = match (network, rng.below(4)) {
            (IpAddr::V4(n), 0) => IpAddr::V6(n.to_ipv6_mapped()),
            (IpAddr::V4(n), 1) => IpAddr::V6(Ipv6Addr::from(u128::from(u32::from(n)))),
            (IpAddr::V4(n), _) => IpAddr::V4(Ipv4Addr::from(u32::from(n) ^ (1 << flip))),
            (IpAddr::V6(n), 0) => IpAddr::V4(Ipv4Addr::from(u128::from(n) as u32)),
            (IpAddr::V6(n), _) => IpAddr::V6(Ipv6Addr::from(u128::from(n) ^ (1 << flip))),
        };
        let expected = contains_by_integers(&range, address);
        held += usize::from(expected);
        assert_eq!(range.contains(address), expected, "{range:?} {address}");
    }
    assert!(held > 2_000, "{held}");
}
