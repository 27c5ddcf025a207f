//! Python 3.11's `date.fromisoformat`, which dlt tries first when it coerces text to a date.

use super::calendar::{civil_from_days, days_from_civil, days_in_month};

/// Python 3.11's C `date.fromisoformat`: only strings of 7, 8 or 10 UTF-8 bytes, parsed from
/// the start without checking that the whole string was used.
pub(crate) fn date_fromisoformat(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if !matches!(b.len(), 7 | 8 | 10) {
        return None;
    }
    let digits = |from: usize, n: usize| -> Option<u32> {
        b.get(from..from + n)?.iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let year = digits(0, 4)? as i32;
    let sep = b.get(4) == Some(&b'-');
    let mut p = 4 + usize::from(sep);
    let (y, m, d) = if b.get(p) == Some(&b'W') {
        p += 1;
        let week = digits(p, 2)?;
        p += 2;
        let mut weekday = 1;
        if p < b.len() {
            if sep {
                if b.get(p) != Some(&b'-') {
                    return None;
                }
                p += 1;
            }
            weekday = digits(p, 1)?;
        }
        iso_week_date(year, week, weekday)?
    } else {
        let month = digits(p, 2)?;
        p += 2;
        if sep {
            if b.get(p) != Some(&b'-') {
                return None;
            }
            p += 1;
        }
        (year, month, digits(p, 2)?)
    };
    let valid =
        (1..=9999).contains(&y) && (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m);
    valid
        .then(|| days_from_civil(y, m, d))
        .and_then(|days| i32::try_from(days).ok())
}

/// CPython's `iso_to_ymd`: weeks 1..=52, or 53 in long years; weekdays 1..=7.
fn iso_week_date(year: i32, week: u32, weekday: u32) -> Option<(i32, u32, u32)> {
    if year < 1 {
        // every week date of year 0 falls in year 0 (and CPython's arithmetic is off there)
        return None;
    }
    let jan1 = days_from_civil(year, 1, 1);
    // 0 = Monday; 1970-01-01 was a Thursday
    let jan1_weekday = (jan1 + 3).rem_euclid(7);
    if week == 0 || week > 53 || weekday == 0 || weekday > 7 {
        return None;
    }
    if week == 53 && !(jan1_weekday == 3 || (jan1_weekday == 2 && super::calendar::is_leap(year))) {
        return None;
    }
    let week1_monday = jan1 - jan1_weekday + if jan1_weekday > 3 { 7 } else { 0 };
    let days = week1_monday + i64::from(week - 1) * 7 + i64::from(weekday - 1);
    let (y, m, d) = civil_from_days(days);
    Some((i32::try_from(y).ok()?, m, d))
}
