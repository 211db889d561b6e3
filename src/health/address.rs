//! IP and socket addresses read by hand, accepting exactly what `std::net`'s parsers accept
//! (IPv4 dotted quads without leading zeros; IPv6 with `::` and an embedded IPv4 tail such as
//! `::ffff:1.2.3.4`; `ip:port`, `[v6]:port` and `[v6%scope]:port`): std's parser costs 5 KB
//! of module for the status page's two uses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A whole address, IPv4 or IPv6.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text.as_bytes();
    let (ip, end) = match ipv4(text, 0) {
        Some((v4, end)) => (IpAddr::V4(Ipv4Addr::from(v4)), end),
        None => {
            let (v6, end) = ipv6(text, 0)?;
            (IpAddr::V6(Ipv6Addr::from(v6)), end)
        }
    };
    (end == text.len()).then_some(ip)
}

/// The address of a whole socket address (`1.2.3.4:80`, `[::1]:80`, `[fe80::1%2]:80`).
pub fn parse_socket_ip(text: &str) -> Option<IpAddr> {
    let text = text.as_bytes();
    let (ip, at) = match ipv4(text, 0) {
        Some((v4, at)) => (IpAddr::V4(Ipv4Addr::from(v4)), at),
        None => {
            let (v6, mut at) = ipv6(text, expect(text, 0, b'[')?)?;
            if let Some(scope_at) = expect(text, at, b'%') {
                at = digits(text, scope_at, 10, usize::MAX, true)?.1;
            }
            (IpAddr::V6(Ipv6Addr::from(v6)), expect(text, at, b']')?)
        }
    };
    let (port, end) = digits(text, expect(text, at, b':')?, 10, usize::MAX, true)?;
    (port <= u32::from(u16::MAX) && end == text.len()).then_some(ip)
}

/// The position after `byte` when it is at `at`.
fn expect(text: &[u8], at: usize, byte: u8) -> Option<usize> {
    (text.get(at) == Some(&byte)).then_some(at + 1)
}

/// A number in `radix` at `at` and the position after it: every digit there is read, and
/// there must be one to `max_digits` of them; a leading zero only when `zero_prefix`.
fn digits(
    text: &[u8],
    at: usize,
    radix: u32,
    max_digits: usize,
    zero_prefix: bool,
) -> Option<(u32, usize)> {
    let mut value: u32 = 0;
    let mut end = at;
    while let Some(digit) = text.get(end).and_then(|b| char::from(*b).to_digit(radix)) {
        value = value.checked_mul(radix)?.checked_add(digit)?;
        end += 1;
    }
    let count = end - at;
    let zero_led = count > 1 && text.get(at) == Some(&b'0');
    (count > 0 && count <= max_digits && (zero_prefix || !zero_led)).then_some((value, end))
}

fn ipv4(text: &[u8], mut at: usize) -> Option<([u8; 4], usize)> {
    let mut octets = [0; 4];
    for (index, octet) in octets.iter_mut().enumerate() {
        if index > 0 {
            at = expect(text, at, b'.')?;
        }
        let (value, end) = digits(text, at, 10, 3, false)?;
        *octet = u8::try_from(value).ok()?;
        at = end;
    }
    Some((octets, at))
}

fn ipv6(text: &[u8], at: usize) -> Option<([u8; 16], usize)> {
    let mut octets = [0; 16];
    let (head_len, head_ipv4, end) = groups(text, at, &mut octets);
    if head_len == 16 {
        return Some((octets, end));
    }
    if head_ipv4 || text.get(end..end + 2) != Some(b"::") {
        return None;
    }
    // `::` stands for at least one group of zeros: the tail has room for 7 groups at most.
    let mut tail = [0; 16];
    let (tail_len, _, end) = groups(text, end + 2, &mut tail[head_len + 2..]);
    octets[16 - tail_len..].copy_from_slice(&tail[head_len + 2..][..tail_len]);
    Some((octets, end))
}

/// `:`-separated groups of one to four hex digits into `out`, two bytes each, as many as fit;
/// the last two may be an IPv4 address instead. Returns the bytes written, whether IPv4 ended
/// them, and the position after them (before a separator not followed by a group).
fn groups(text: &[u8], mut at: usize, out: &mut [u8]) -> (usize, bool, usize) {
    let mut len = 0;
    while len + 2 <= out.len() {
        let start = match len {
            0 => at,
            _ => match expect(text, at, b':') {
                Some(start) => start,
                None => break,
            },
        };
        if let (Some(quad), Some((v4, end))) = (out.get_mut(len..len + 4), ipv4(text, start)) {
            quad.copy_from_slice(&v4);
            return (len + 4, true, end);
        }
        let (Some((group, end)), Some(pair)) =
            (digits(text, start, 16, 4, true), out.get_mut(len..len + 2))
        else {
            break;
        };
        pair.copy_from_slice(&(group as u16).to_be_bytes());
        len += 2;
        at = end;
    }
    (len, false, at)
}
