//! Timestamps as the Docker engine writes them (RFC 3339, UTC, up to nanoseconds).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses `2026-12-03T17:01:02.123456789Z`. The engine's "never" value
/// (`0001-01-01T00:00:00Z`) and anything unreadable give `None`.
pub(crate) fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if year < 1970 || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos = 0u64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let taken = &frac[..digits.min(9)];
        nanos = taken.parse::<u64>().ok()? * 10u64.pow(9 - taken.len() as u32);
        rest = &frac[digits..];
    }
    let offset: i64 = match rest.as_bytes() {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digit = |c: &u8| i64::from(c - b'0');
            let minutes = (digit(h1) * 10 + digit(h2)) * 60 + digit(m1) * 10 + digit(m2);
            if *sign == b'+' { minutes * 60 } else { -minutes * 60 }
        }
        _ => return None,
    };
    let days = days_from_civil(year as i64, month as i64, day as i64);
    let secs = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64 - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos as u32))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(t: SystemTime) -> f64 {
        t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
    }

    #[test]
    fn reads_engine_timestamps() {
        assert_eq!(secs(parse_rfc3339("1970-01-01T00:00:00Z").unwrap()), 0.0);
        assert_eq!(secs(parse_rfc3339("2000-03-01T00:00:00Z").unwrap()), 951_868_800.0);
        let t = parse_rfc3339("2026-12-03T17:01:02.5Z").unwrap();
        assert_eq!(secs(t), 1_796_317_262.5);
        let nanos = parse_rfc3339("2026-12-03T17:01:02.123456789Z").unwrap();
        assert_eq!(nanos.duration_since(UNIX_EPOCH).unwrap().subsec_nanos(), 123_456_789);
        let shifted = parse_rfc3339("2026-12-03T18:01:02.5+01:00").unwrap();
        assert_eq!(shifted, t);
    }

    #[test]
    fn never_and_garbage_are_none() {
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339(""), None);
        assert_eq!(parse_rfc3339("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2026-12-03 17:01:02Z"), None);
    }
}
