//! How sizes, counts and ages read in candidates' reasons and on the library pages.

/// Decimal units, as disks are sold and as the criteria are typed: "14.2 GB", "850 MB".
pub fn bytes(n: i64) -> String {
    const UNITS: [(&str, f64); 4] = [("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)];
    #[expect(clippy::cast_precision_loss, reason = "a size shown to one decimal")]
    let value = n.max(0) as f64;
    for (unit, size) in UNITS {
        if value >= size {
            return format!("{:.1} {unit}", value / size);
        }
    }
    format!("{} B", n.max(0))
}

/// "1,204".
pub fn number(n: impl Into<i64>) -> String {
    let n: i64 = n.into();
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "1 day", "412 days".
pub fn days(n: i64) -> String {
    if n == 1 { "1 day".to_owned() } else { format!("{} days", number(n)) }
}

/// Whole days from `from` to `to` (milliseconds), never negative.
pub fn days_between(from: i64, to: i64) -> i64 {
    (to - from).max(0) / 86_400_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_counts_and_days() {
        assert_eq!(bytes(14_200_000_000), "14.2 GB");
        assert_eq!(bytes(56_679_095_113), "56.7 GB");
        assert_eq!(bytes(1_500_000_000_000), "1.5 TB");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(-5), "0 B");
        assert_eq!(number(1_204), "1,204");
        assert_eq!(number(-1_234_567), "-1,234,567");
        assert_eq!(number(12), "12");
        assert_eq!(days(1), "1 day");
        assert_eq!(days(1_412), "1,412 days");
        assert_eq!(days_between(0, 86_400_000 * 3 - 1), 2);
        assert_eq!(days_between(10, 0), 0);
    }
}
