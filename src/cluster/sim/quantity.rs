//! Kubernetes resource quantities (`500m`, `1.5`, `2Gi`, `1e3`), as the API server reads them
//! (apimachinery's ParseQuantity): exact, so that requests can be summed and compared with a
//! node's allocatable, and a request with a limit, without rounding the way floats would.

use std::cmp::Ordering;

use serde_json::Value;

/// The API server's words for a quantity it cannot read, whether it came as a string or a number.
pub const FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// A quantity's exact value: `numerator / denominator`, the denominator a power of ten. Values
/// beyond i128 saturate (no scenario asks for 10^30 CPUs and means it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantity {
    numerator: i128,
    denominator: i128,
}

impl Quantity {
    pub const ZERO: Quantity = Quantity { numerator: 0, denominator: 1 };

    /// A quantity as a manifest holds it: a string, or a JSON number (which the API reads from
    /// its digits as written).
    pub fn from_json(value: &Value) -> Option<Quantity> {
        match value {
            Value::String(text) => parse(text.trim()),
            Value::Number(number) => parse(&number.to_string()),
            _ => None,
        }
    }

    pub fn is_negative(&self) -> bool {
        self.numerator < 0
    }

    /// The value in thousandths, rounded up (apimachinery's MilliValue, which the scheduler
    /// uses for CPU).
    pub fn milli(&self) -> i128 {
        ceil_div(self.numerator.saturating_mul(1000), self.denominator)
    }

    /// The value rounded up to a whole number (apimachinery's Value: memory, pods, extended
    /// resources).
    pub fn units(&self) -> i128 {
        ceil_div(self.numerator, self.denominator)
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Quantity) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Quantity) -> Ordering {
        self.numerator.saturating_mul(other.denominator).cmp(&other.numerator.saturating_mul(self.denominator))
    }
}

fn ceil_div(numerator: i128, denominator: i128) -> i128 {
    let quotient = numerator / denominator;
    if numerator % denominator > 0 { quotient + 1 } else { quotient }
}

/// `[+-]digits[.digits]suffix`, the suffix one of the binary (`Ki` .. `Ei`), decimal (`n` ..
/// `E`) or exponent (`e3`, `E-2`) forms; None where the API server refuses the text.
pub fn parse(text: &str) -> Option<Quantity> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let number_end = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return None;
    }
    let mut numerator: i128 = 0;
    for digit in whole.bytes().chain(fraction.bytes()) {
        numerator = numerator.saturating_mul(10).saturating_add(i128::from(digit - b'0'));
    }
    let mut denominator = 10i128.saturating_pow(u32::try_from(fraction.len()).ok()?);
    let (base, exponent): (i128, i32) = match suffix {
        "" => (10, 0),
        "n" => (10, -9),
        "u" => (10, -6),
        "m" => (10, -3),
        "k" => (10, 3),
        "M" => (10, 6),
        "G" => (10, 9),
        "T" => (10, 12),
        "P" => (10, 15),
        "E" => (10, 18),
        "Ki" => (2, 10),
        "Mi" => (2, 20),
        "Gi" => (2, 30),
        "Ti" => (2, 40),
        "Pi" => (2, 50),
        "Ei" => (2, 60),
        exponent if exponent.starts_with(['e', 'E']) => {
            let digits = &exponent[1..];
            let unsigned = digits.strip_prefix(['+', '-']).unwrap_or(digits);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (10, digits.parse::<i32>().ok()?)
        }
        _ => return None,
    };
    let scale = base.saturating_pow(exponent.unsigned_abs());
    if exponent >= 0 {
        numerator = numerator.saturating_mul(scale);
    } else {
        denominator = denominator.saturating_mul(scale);
    }
    Some(Quantity { numerator: if negative { -numerator } else { numerator }, denominator })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn quantities_read_as_the_api_server_reads_them() {
        let milli = |text: &str| parse(text).map(|q| q.milli());
        assert_eq!(milli("500m"), Some(500));
        assert_eq!(milli("1.5"), Some(1500));
        assert_eq!(milli("2"), Some(2000));
        assert_eq!(milli("1k"), Some(1_000_000));
        assert_eq!(milli("0.0001"), Some(1), "rounded up, as MilliValue does");
        assert_eq!(milli("1e3"), Some(1_000_000));
        assert_eq!(milli("1E-3"), Some(1));
        assert_eq!(milli("+.5"), Some(500));
        assert_eq!(milli("-1"), Some(-1000));
        let units = |text: &str| parse(text).map(|q| q.units());
        assert_eq!(units("1Gi"), Some(1 << 30));
        assert_eq!(units("1Ti"), Some(1 << 40));
        assert_eq!(units("1.5Ki"), Some(1536));
        assert_eq!(units("100M"), Some(100_000_000));
        assert_eq!(units("1m"), Some(1), "rounded up, as Value does");
        assert_eq!(units("1E"), Some(1_000_000_000_000_000_000));
        for refused in ["", "abc", "2x", "1.2.3", ".", "-", "1Kib", "1e", "1e+", "1ee3", "Gi", "1 Gi"] {
            assert_eq!(parse(refused), None, "{refused:?}");
        }
        assert_eq!(Quantity::from_json(&json!(2.5)).map(|q| q.milli()), Some(2500));
        assert_eq!(Quantity::from_json(&json!(" 1 ")).map(|q| q.milli()), Some(1000));
        assert_eq!(Quantity::from_json(&json!(true)), None);
    }

    #[test]
    fn quantities_compare_by_value_whatever_their_form() {
        let q = |text: &str| parse(text).unwrap();
        assert_eq!(q("1000m").cmp(&q("1")), Ordering::Equal);
        assert_eq!(q("1024Mi").cmp(&q("1Gi")), Ordering::Equal);
        assert!(q("1G") < q("1Gi"));
        assert!(q("2") > q("1.999"));
        assert!(q("-1").is_negative());
    }
}
