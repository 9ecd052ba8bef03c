//! Annotation rules shared by the checker and the built-in cluster's API validation.

/// The annotation through which a pod tells its replica set which pods to delete first.
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// The API server's limit on all of an object's annotations, keys and values together.
pub const TOTAL_LIMIT: usize = 256 * 1024;

/// The API server's test of a deletion cost: an optional `-`, digits without leading zeros, in
/// the range of an int32 (`-0` passes, `+1` and `007` do not).
pub fn is_deletion_cost(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let canonical = digits == "0" || (!digits.is_empty() && !digits.starts_with('0'));
    canonical && digits.bytes().all(|b| b.is_ascii_digit()) && text.parse::<i32>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::is_deletion_cost;

    #[test]
    fn deletion_costs_are_judged_as_the_api_server_does() {
        for ok in ["0", "-0", "100", "-5", "2147483647", "-2147483648"] {
            assert!(is_deletion_cost(ok), "{ok}");
        }
        for bad in ["", "+7", "007", " 5", "2147483648", "-2147483649", "1.5", "abc", "-"] {
            assert!(!is_deletion_cost(bad), "{bad}");
        }
    }
}
