//! A resourceVersion as the API server reads one a client sends: Go's `strconv.ParseUint` in
//! base 10, where 0 means none. The checker and the built-in cluster judge a manifest's by it.

/// The version, or why Go's ParseUint refuses the text, in its words.
pub fn parse(text: &str) -> Result<u64, &'static str> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        // Rust would also take a leading `+`; Go takes digits only.
        return Err("invalid syntax");
    }
    text.parse().map_err(|_| "value out of range")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_digits_only_as_go_does() {
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("007"), Ok(7));
        assert_eq!(parse("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse("18446744073709551616"), Err("value out of range"));
        for text in ["", "+5", "-1", "abc", "1_000", " 1"] {
            assert_eq!(parse(text), Err("invalid syntax"), "{text:?}");
        }
    }
}
