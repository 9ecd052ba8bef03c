//! Durations written as `500ms`, `30s`, `2m`, `1m30s`, `1h`.

use std::time::Duration;

/// The longest a step or a scenario's timeout may wait: a day. A runbook step that waits longer
/// is a typo, and on the built-in cluster virtual time still costs watch renewals (every 290 s of
/// it), so a century of it would take minutes.
pub const LONGEST: Duration = Duration::from_secs(24 * 3600);

/// Parses a duration; `None` if the text is not one (the grammar only lets valid shapes through,
/// so this fails only on overflow).
pub fn parse(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, millis) = if rest.starts_with("ms") {
            ("ms", 1)
        } else if rest.starts_with('s') {
            ("s", 1_000)
        } else if rest.starts_with('m') {
            ("m", 60_000)
        } else if rest.starts_with('h') {
            ("h", 3_600_000)
        } else {
            return None;
        };
        total = total.checked_add(Duration::from_millis(number.checked_mul(millis)?))?;
        rest = &rest[unit.len()..];
    }
    Some(total)
}

/// The canonical spelling: the largest units first, `0s` for zero.
pub fn format(duration: Duration) -> String {
    let mut millis = duration.as_millis();
    if millis == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if millis >= size {
            out.push_str(&format!("{}{unit}", millis / size));
            millis %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        assert_eq!(parse("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("5x"), None);
        assert_eq!(parse("99999999999999999999s"), None);
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(format(Duration::ZERO), "0s");
    }
}
