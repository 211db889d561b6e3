//! Source addresses and the status page's address ranges: which addresses a range holds, and
//! range checks on octets against the same checks on 128-bit integers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
