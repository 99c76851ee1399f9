//! Go's `time.ParseDuration` (<https://pkg.go.dev/time#ParseDuration>),
//! which Docker uses for `HEALTHCHECK --interval=1m30s`: a sign, then one
//! or more decimal numbers each with a unit (`ns`, `us`/`µs`, `ms`, `s`,
//! `m`, `h`); `0` alone needs no unit. Errors are Go's.

const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Go durations are an `int64` of nanoseconds.
const MAX_NANOS: u128 = i64::MAX as u128;

/// The duration in nanoseconds; negative when written with `-`.
pub(crate) fn parse_go_duration(text: &str) -> Result<i128, String> {
    let invalid = || format!("time: invalid duration {text:?}");
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (nanos, tail) = component(rest, text)?;
        total = total
            .checked_add(nanos)
            .filter(|t| *t <= MAX_NANOS + 1)
            .ok_or_else(invalid)?;
        rest = tail;
    }
    let total = i128::try_from(total).map_err(|_| invalid())?;
    match negative {
        true => Ok(-total),
        false if total > i128::from(i64::MAX) => Err(invalid()),
        false => Ok(total),
    }
}

/// One `12.5ms`: its nanoseconds and the text after it.
fn component<'a>(rest: &'a str, text: &str) -> Result<(u128, &'a str), String> {
    let invalid = || format!("time: invalid duration {text:?}");
    let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (int_digits, mut tail) = rest.split_at(int_len);
    let mut frac_digits = "";
    if let Some(after_dot) = tail.strip_prefix('.') {
        let len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        (frac_digits, tail) = after_dot.split_at(len);
    }
    if int_digits.is_empty() && frac_digits.is_empty() {
        return Err(invalid());
    }
    let unit_len = tail
        .find(|c: char| c == '.' || c.is_ascii_digit())
        .unwrap_or(tail.len());
    let (unit, tail) = tail.split_at(unit_len);
    if unit.is_empty() {
        return Err(format!("time: missing unit in duration {text:?}"));
    }
    let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
        return Err(format!("time: unknown unit {unit:?} in duration {text:?}"));
    };
    let whole = int_digits
        .bytes()
        .try_fold(0u128, |acc, d| {
            acc.checked_mul(10)?
                .checked_add(u128::from(d - b'0'))
                .filter(|v| *v <= MAX_NANOS)
        })
        .and_then(|v| v.checked_mul(scale))
        .filter(|v| *v <= MAX_NANOS + 1)
        .ok_or_else(invalid)?;
    Ok((whole + fraction(frac_digits, scale), tail))
}

/// The nanoseconds of `.digits` of `scale`, truncated as Go truncates.
/// Digits past the 18th cannot change the result at any unit up to hours.
fn fraction(digits: &str, scale: u128) -> u128 {
    let digits = &digits[..digits.len().min(18)];
    let (numerator, denominator) = digits.bytes().fold((0u128, 1u128), |(n, d), c| {
        (n * 10 + u128::from(c - b'0'), d * 10)
    });
    numerator * scale / denominator
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i128 = 1_000_000_000;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("30s"), Ok(30 * S));
        assert_eq!(parse_go_duration("1m30s"), Ok(90 * S));
        assert_eq!(parse_go_duration("500ms"), Ok(S / 2));
        assert_eq!(parse_go_duration("1h"), Ok(3600 * S));
        assert_eq!(parse_go_duration("1.5h"), Ok(5400 * S));
        assert_eq!(parse_go_duration(".5s"), Ok(S / 2));
        assert_eq!(parse_go_duration("1.s"), Ok(S));
        assert_eq!(parse_go_duration("2us"), Ok(2_000));
        assert_eq!(parse_go_duration("2µs"), Ok(2_000));
        assert_eq!(parse_go_duration("3ns"), Ok(3));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration("-0"), Ok(0));
        assert_eq!(parse_go_duration("+5s"), Ok(5 * S));
        assert_eq!(parse_go_duration("-1.5s"), Ok(-3 * S / 2));
        assert_eq!(parse_go_duration("1h2m3s4ms"), Ok(3723 * S + 4_000_000));
        assert_eq!(
            parse_go_duration("2562047h47m16.854775807s"),
            Ok(i128::from(i64::MAX))
        );
    }

    #[test]
    fn go_errors() {
        assert_eq!(
            parse_go_duration("abc"),
            Err("time: invalid duration \"abc\"".into())
        );
        assert_eq!(
            parse_go_duration(""),
            Err("time: invalid duration \"\"".into())
        );
        assert_eq!(
            parse_go_duration("10"),
            Err("time: missing unit in duration \"10\"".into())
        );
        assert_eq!(
            parse_go_duration("10x"),
            Err("time: unknown unit \"x\" in duration \"10x\"".into())
        );
        assert_eq!(
            parse_go_duration("."),
            Err("time: invalid duration \".\"".into())
        );
        assert_eq!(
            parse_go_duration("1s."),
            Err("time: invalid duration \"1s.\"".into())
        );
        assert_eq!(
            parse_go_duration("3000000h"),
            Err("time: invalid duration \"3000000h\"".into())
        );
        assert_eq!(
            parse_go_duration("99999999999999999999999s"),
            Err("time: invalid duration \"99999999999999999999999s\"".into())
        );
    }
}
