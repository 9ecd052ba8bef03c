//! IP addresses as Go's legacy parser reads them (netutils.ParseIPSloppy): leading zeros allowed
//! in an IPv4 part or an IPv6 group. The API refuses such an address in a new object, but reads
//! it to say what else is wrong with it; a controller reads what the API stored the same way.

use std::net::IpAddr;

/// An address Go's current parser reads, or its legacy one.
pub fn parse_lenient(text: &str) -> Option<IpAddr> {
    text.parse().ok().or_else(|| without_leading_zeros(text)?.parse().ok())
}

/// The address with each IPv4 part's and IPv6 group's leading zeros dropped, as the legacy
/// parser reads them; none when a part is not a number at all.
fn without_leading_zeros(text: &str) -> Option<String> {
    let trim = |part: &str, hex: bool| -> Option<String> {
        if part.is_empty() {
            // `::` in IPv6; an empty IPv4 part is no number.
            return hex.then(String::new);
        }
        if !part.chars().all(|c| if hex { c.is_ascii_hexdigit() } else { c.is_ascii_digit() }) {
            return None;
        }
        let kept = part.trim_start_matches('0');
        Some(if kept.is_empty() { "0".to_string() } else { kept.to_string() })
    };
    let v4 = |text: &str| -> Option<String> {
        let parts: Option<Vec<String>> = text.split('.').map(|part| trim(part, false)).collect();
        Some(parts?.join("."))
    };
    if !text.contains(':') {
        return v4(text);
    }
    let groups: Option<Vec<String>> =
        text.split(':').map(|group| if group.contains('.') { v4(group) } else { trim(group, true) }).collect();
    Some(groups?.join(":"))
}

#[cfg(test)]
mod tests {
    use super::parse_lenient;

    #[test]
    fn leading_zeros_are_read_as_the_legacy_parser_reads_them() {
        assert_eq!(parse_lenient("010.001.0.9"), "10.1.0.9".parse().ok());
        assert_eq!(parse_lenient("00001::1"), "1::1".parse().ok());
        assert_eq!(parse_lenient("fd00::1"), "fd00::1".parse().ok());
        assert_eq!(parse_lenient("10.0.0.300"), None);
        assert_eq!(parse_lenient("not-an-ip"), None);
    }
}
