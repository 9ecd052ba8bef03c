//! How a scenario's or a snapshot's name becomes part of a file name (result documents,
//! snapshot files): its ASCII letters and digits in lower case, each run of anything else one
//! separator. Names that read the same this way share files, so the checker refuses them.

/// `text` as a file-name part: `"Back in rotation!"` -> `back-in-rotation` (with `-`).
pub fn slug(text: &str, separator: char) -> String {
    let words: Vec<String> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    words.join(&separator.to_string())
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn names_keep_their_letters_and_digits_in_lower_case() {
        assert_eq!(slug("Back in rotation!", '-'), "back-in-rotation");
        assert_eq!(slug("  a -- b__c ", '_'), "a_b_c");
        assert_eq!(slug("v1.2 canary", '-'), "v1-2-canary");
        assert_eq!(slug("café", '-'), "caf");
        assert_eq!(slug("!!!", '-'), "");
    }

    #[test]
    fn names_that_differ_only_in_case_and_punctuation_share_a_slug() {
        assert_eq!(slug("a canary", '-'), slug("A-Canary", '-'));
        assert_ne!(slug("a canary", '-'), slug("a canary 2", '-'));
    }
}
