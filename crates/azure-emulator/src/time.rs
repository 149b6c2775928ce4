//! Dates as the Azure APIs write them (RFC 3339 in UTC), without a date library.

use std::time::{SystemTime, UNIX_EPOCH};

/// The proleptic Gregorian date of a day counted from 1970-01-01.
pub(crate) fn civil_date(days: i64) -> (i32, u8, u8) {
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year as i32, month, day)
}

/// Seconds since the epoch, 0 for times before it.
pub(crate) fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `2022-11-11T19:33:44.217Z` (with milliseconds, as ACI writes container states) or
/// `2022-11-11T19:33:44Z` (without, as it writes event times).
pub(crate) fn rfc3339(time: SystemTime, millis: bool) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (y, mo, d) = civil_date(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let (h, mi, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    if millis {
        let ms = since.subsec_millis();
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(-1), (1969, 12, 31));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(civil_date(19_723), (2024, 1, 1));
    }

    #[test]
    fn rfc3339_with_and_without_milliseconds() {
        let t = UNIX_EPOCH + Duration::from_millis(1_668_195_224_217);
        assert_eq!(rfc3339(t, true), "2022-11-11T19:33:44.217Z");
        assert_eq!(rfc3339(t, false), "2022-11-11T19:33:44Z");
    }
}
