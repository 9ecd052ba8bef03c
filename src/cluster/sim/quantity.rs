//! Kubernetes resource quantities (`500m`, `1.5`, `2Gi`, `1e3`), as the API server reads them
//! (apimachinery's ParseQuantity): exact, so that requests can be summed and compared with a
//! node's allocatable, and a request with a limit, without rounding the way floats would.

use std::cmp::Ordering;

use serde_json::Value;

/// The API server's words for a quantity it cannot read, whether it came as a string or a number.
pub const FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

const MAX_EXPONENT: i32 = 40;

/// A quantity's exact value, `mantissa × 10^exponent` (the API keeps nothing finer than 10^-9,
/// rounding up), and how the API server writes it back (`written`). Values beyond i128
/// saturate (no scenario asks for 10^30 CPUs and means it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quantity {
    mantissa: i128,
    exponent: i32,
    written: String,
}

/// How a quantity was written, which decides how the API server writes it back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `1.5`, `500m`, `2k`
    DecimalSi,
    /// `1Ki` .. `1Ei`
    BinarySi,
    /// `1e3`, `25E-2`
    DecimalExponent,
}

impl Quantity {
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
        self.mantissa < 0
    }

    pub fn is_positive(&self) -> bool {
        self.mantissa > 0
    }

    /// The value in thousandths, rounded up (apimachinery's MilliValue, which the scheduler
    /// uses for CPU).
    pub fn milli(&self) -> i128 {
        scaled_up(self.mantissa, self.exponent + 3)
    }

    /// The value rounded up to a whole number (apimachinery's Value: memory, pods, extended
    /// resources).
    pub fn units(&self) -> i128 {
        scaled_up(self.mantissa, self.exponent)
    }
}

/// The API server's way of writing the quantity back (its String()): as written when that is
/// already canonical, otherwise canonical (`0.5` is `500m`, `1024Mi` is `1Gi`, `2.5e-1` is
/// `250e-3`).
impl std::fmt::Display for Quantity {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.written)
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Quantity) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Quantity) -> Ordering {
        let exponent = self.exponent.min(other.exponent);
        let at = |q: &Quantity| q.mantissa.saturating_mul(pow10(q.exponent - exponent));
        at(self).cmp(&at(other))
    }
}

fn pow10(exponent: i32) -> i128 {
    10i128.saturating_pow(exponent.unsigned_abs())
}

/// `mantissa × 10^exponent`, rounded up to a whole number.
fn scaled_up(mantissa: i128, exponent: i32) -> i128 {
    if exponent >= 0 {
        return mantissa.saturating_mul(pow10(exponent));
    }
    let divisor = pow10(-exponent);
    let quotient = mantissa / divisor;
    if mantissa % divisor > 0 { quotient + 1 } else { quotient }
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
    let (format, base, power): (Format, i128, i32) = match suffix {
        "" => (Format::DecimalSi, 10, 0),
        "n" => (Format::DecimalSi, 10, -9),
        "u" => (Format::DecimalSi, 10, -6),
        "m" => (Format::DecimalSi, 10, -3),
        "k" => (Format::DecimalSi, 10, 3),
        "M" => (Format::DecimalSi, 10, 6),
        "G" => (Format::DecimalSi, 10, 9),
        "T" => (Format::DecimalSi, 10, 12),
        "P" => (Format::DecimalSi, 10, 15),
        "E" => (Format::DecimalSi, 10, 18),
        "Ki" => (Format::BinarySi, 2, 10),
        "Mi" => (Format::BinarySi, 2, 20),
        "Gi" => (Format::BinarySi, 2, 30),
        "Ti" => (Format::BinarySi, 2, 40),
        "Pi" => (Format::BinarySi, 2, 50),
        "Ei" => (Format::BinarySi, 2, 60),
        exponent if exponent.starts_with(['e', 'E']) => {
            let digits = &exponent[1..];
            let unsigned = digits.strip_prefix(['+', '-']).unwrap_or(digits);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (Format::DecimalExponent, 10, digits.parse::<i32>().ok()?)
        }
        _ => return None,
    };
    // Leading zeros do not count (upstream strips them before judging the form).
    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    let mut digits: i128 = 0;
    for digit in whole.bytes().chain(fraction.bytes()) {
        digits = digits.saturating_mul(10).saturating_add(i128::from(digit - b'0'));
    }
    let fraction_digits = i32::try_from(fraction.len()).ok()?;
    let (mut mantissa, mut exponent) = if base == 2 {
        (digits.saturating_mul(2i128.saturating_pow(power.unsigned_abs())), -fraction_digits)
    } else {
        (digits, power.saturating_sub(fraction_digits))
    };
    // Nothing finer than 10^-9: a non-zero value rounds up to it.
    if exponent < -9 {
        mantissa = scaled_up(mantissa, exponent + 9);
        exponent = -9;
    }
    // Beyond 10^40 every amount saturates i128 already; a larger exponent (`1e2147483647`) would
    // only overflow the arithmetic on it.
    exponent = exponent.min(MAX_EXPONENT);
    if negative {
        mantissa = -mantissa;
    }
    let shifted = format!("{whole}{fraction}");
    let written_as_canonical = match format {
        _ if text == "0" => true,
        // Upstream's fast path keeps the text of a value it holds in an int64 that is already
        // in canonical form.
        Format::BinarySi => fraction.is_empty() && whole.len() < 10 && digits & 0x07 != 0,
        _ => {
            let scale = power - fraction_digits;
            shifted.len() <= 18
                && scale >= -9
                && scale % 3 == 0
                && !shifted.ends_with("000")
                && !shifted.starts_with('0')
        }
    };
    let written = if written_as_canonical { text.to_string() } else { canonical(mantissa, exponent, format) };
    Some(Quantity { mantissa, exponent, written })
}

/// Upstream's CanonicalizeBytes: binary suffixes for a whole number of at least 1024, otherwise
/// the fewest digits with an exponent that is a multiple of 3, as a suffix (`m`, `k`) or as
/// `e-3` when the quantity was written with an exponent.
fn canonical(mut mantissa: i128, mut exponent: i32, mut format: Format) -> String {
    if mantissa == 0 {
        return "0".to_string();
    }
    if format == Format::BinarySi {
        let whole = exponent >= 0 || mantissa % pow10(-exponent) == 0;
        let value = scaled_up(mantissa, exponent);
        if whole && value.abs() >= 1024 {
            let (mut amount, mut power) = (value, 0);
            while amount % 1024 == 0 && power < 6 {
                amount /= 1024;
                power += 1;
            }
            return format!("{amount}{}", ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power]);
        }
        format = Format::DecimalSi;
    }
    while mantissa % 10 == 0 {
        mantissa /= 10;
        exponent += 1;
    }
    match exponent.rem_euclid(3) {
        1 => (mantissa, exponent) = (mantissa * 10, exponent - 1),
        2 => (mantissa, exponent) = (mantissa * 100, exponent - 2),
        _ => {}
    }
    let suffix = match (format, exponent) {
        (_, 0) => String::new(),
        (Format::DecimalSi, -9) => "n".into(),
        (Format::DecimalSi, -6) => "u".into(),
        (Format::DecimalSi, -3) => "m".into(),
        (Format::DecimalSi, 3) => "k".into(),
        (Format::DecimalSi, 6) => "M".into(),
        (Format::DecimalSi, 9) => "G".into(),
        (Format::DecimalSi, 12) => "T".into(),
        (Format::DecimalSi, 15) => "P".into(),
        (Format::DecimalSi, 18) => "E".into(),
        (_, exponent) => format!("e{exponent}"),
    };
    format!("{mantissa}{suffix}")
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
    fn quantities_are_written_back_as_the_api_server_writes_them() {
        // What the testbed's API server (v1.37) stored for each request it was given.
        let table = [
            ("2", "2"),
            ("1500m", "1500m"),
            ("2000m", "2"),
            ("0.5", "500m"),
            ("1.5", "1500m"),
            ("1000000", "1M"),
            ("1e3", "1e3"),
            ("1E3", "1E3"),
            ("15e2", "1500"),
            ("1.5e3", "1500"),
            ("1Gi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("1536Mi", "1536Mi"),
            ("1024Mi", "1Gi"),
            ("1023Ki", "1023Ki"),
            ("0.5Ki", "512"),
            ("1k", "1k"),
            ("1000k", "1M"),
            ("1200k", "1200k"),
            ("1.2M", "1200k"),
            ("100M", "100M"),
            ("0.1", "100m"),
            ("+1", "+1"),
            ("01", "01"),
            ("1e-3", "1e-3"),
            ("2.5e-1", "250e-3"),
            ("1e0", "1e0"),
            ("1Mi", "1Mi"),
            ("1048576", "1048576"),
            ("512Ki", "512Ki"),
            ("1e9", "1e9"),
            ("1E", "1E"),
            ("1Ei", "1Ei"),
            ("0.5Gi", "512Mi"),
            ("1.25e3", "1250"),
            ("0", "0"),
            ("-1", "-1"),
            ("-0.5", "-500m"),
        ];
        for (given, stored) in table {
            assert_eq!(parse(given).unwrap().to_string(), stored, "{given}");
        }
    }

    #[test]
    fn hostile_quantities_saturate_rather_than_overflow() {
        for text in ["1e2147483647", "-1e2147483647", "1e-2147483648", "99999999999999999999999999999999999999999Ei"] {
            let quantity = parse(text).unwrap();
            let _ = (quantity.milli(), quantity.units(), quantity.to_string(), quantity.cmp(&parse("1").unwrap()));
        }
        assert_eq!(parse("1e2147483647").unwrap().units(), i128::MAX);
        assert_eq!(parse("1e-2147483648").unwrap().milli(), 1, "rounded up to the least there is");
        assert_eq!(parse("1e99999999999"), None, "an exponent beyond i32 is not read");
    }

    #[test]
    fn quantities_compare_by_value_whatever_their_form() {
        let q = |text: &str| parse(text).unwrap();
        assert_eq!(q("1000m").cmp(&q("1")), Ordering::Equal);
        assert_eq!(q("1e-3").cmp(&q("1m")), Ordering::Equal);
        assert_eq!(q("1024Mi").cmp(&q("1Gi")), Ordering::Equal);
        assert!(q("1G") < q("1Gi"));
        assert!(q("2") > q("1.999"));
        assert!(q("-1").is_negative());
    }
}
