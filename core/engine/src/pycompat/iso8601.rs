//! dlt's parser of ISO-like date/time strings (`dlt.common.time.parse_iso_like_datetime`).
//!
//! dlt first runs pendulum 3's ISO 8601 parser (a Rust extension, ported here rule by rule from
//! `pendulum/rust/src/parsing.rs`), and when it fails, pendulum's "common" regex fallback
//! (`pendulum.parsing._parse_common`, emulated here by an explicit backtracking matcher that tries
//! the regex's alternatives in the same order). Verified against dlt 1.31 / pendulum 3.3:
//! * ISO 8601 extended and basic forms: `2024-01-15T10:30:00Z`, `20240115T103000`, offsets
//!   `Z`, `+02:00`, `+0200`, `+02`, `+02:` (sic); `T` or a single space between date and time;
//!   a lowercase `t` is rejected; leading/trailing spaces are rejected.
//! * `YYYY-MM` (day 1), ordinal dates `2024-015` / `2024015`, ISO week dates `2024-W03`,
//!   `2024-W03-2`, `2024W032` (week 0 and weekday 0 roll into the previous year, as in pendulum).
//! * Fractional seconds after `.` or `,`: the first 6 digits are kept, further digits are
//!   *truncated* (not rounded) — `.123456789` gives 123456 µs.
//! * Mixing basic date and extended time (`20240115T10:30:00`) or the reverse is rejected, and so
//!   is `T10:30:00` (a quirk of pendulum: a leading `T` makes the time "basic").
//! * Hour 24 (`24:00:00`), second 60, `2024-02-30`, `2024-13-45` are rejected.
//! * Durations (`P1D`) and intervals (`a/b`) are rejected.
//! * The fallback accepts `2024`, `2024/01/15`, `2024:01:15`, `20240115 10:30`, `2024 1:2:3`,
//!   `10:30`, `1:2:3.4`, and `|` as a fraction separator; its `\d` matches any Unicode decimal
//!   digit (`٢٠٢٤` is the year 2024), which is emulated with a table of Unicode 14 digits.
//!
//! Where emulation stops (documented decisions):
//! * dlt accepts offsets of ±24:00 or more (`-25:00`) and datetimes whose UTC form leaves the
//!   years 1..=9999 (`9999-12-31T23:59:59-01:00`) as timestamps, and then crashes (or raises)
//!   when converting them to UTC. [`parse_iso_like`] returns `None` for them, so detection
//!   leaves such strings as text and coercion fails (a variant column) instead of crashing.
//! * The fallback with an hour but no minute (`10:`) raises `TypeError` in dlt (a crash when
//!   coercing); here it is simply not a date/time.

use super::calendar::{
    days_from_civil, days_in_month, is_leap, MAX_MICROS, MICROS_PER_DAY, MICROS_PER_SEC, MIN_MICROS,
};
use super::text::decimal_value;

/// Parsed datetime-like strings (ISO 8601 + dlt's lenient fallback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParsedTime {
    /// A date and time: microseconds since the Unix epoch in UTC. An offset in the string has
    /// been applied; `naive` is true when the string had none (and it is then taken as UTC).
    DateTime {
        /// Microseconds since 1970-01-01T00:00:00Z.
        micros_utc: i64,
        /// True when the string carried no UTC offset.
        naive: bool,
    },
    /// A date only: days since 1970-01-01.
    Date(i32),
    /// A time of day only: microseconds since midnight. A time with an offset (`10:30+02:00`)
    /// is converted to UTC (`08:30`) as dlt's `ensure_pendulum_time` does.
    Time(i64),
}

/// Parses a string the way `dlt.common.time.parse_iso_like_datetime` does (see the module docs
/// for the accepted forms). `None` when dlt would raise, and for the values dlt parses but
/// cannot convert to UTC (offsets of a day or more, results outside the years 1..=9999).
pub fn parse_iso_like(s: &str) -> Option<ParsedTime> {
    let fields = iso8601(s.as_bytes()).or_else(|| common(s))?;
    fields.to_parsed()
}

/// Validated fields of a parsed string, as Python's date/time/datetime constructors accept them.
#[derive(Debug, Clone, Copy)]
struct Fields {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    micro: u32,
    /// Offset east of UTC in seconds.
    offset: Option<i32>,
    has_date: bool,
    has_time: bool,
}

impl Fields {
    fn new() -> Self {
        Fields {
            year: 0,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            micro: 0,
            offset: None,
            has_date: false,
            has_time: false,
        }
    }

    /// What Python's `date(...)` / `time(...)` constructors would accept.
    fn valid(&self) -> bool {
        let date_ok = !self.has_date
            || ((1..=9999).contains(&self.year)
                && (1..=12).contains(&self.month)
                && self.day >= 1
                && self.day <= days_in_month(self.year, self.month));
        let time_ok = !self.has_time || (self.hour < 24 && self.minute < 60 && self.second < 60);
        date_ok && time_ok
    }

    fn time_of_day_micros(&self) -> i64 {
        (i64::from(self.hour) * 3600 + i64::from(self.minute) * 60 + i64::from(self.second))
            * MICROS_PER_SEC
            + i64::from(self.micro)
    }

    fn to_parsed(self) -> Option<ParsedTime> {
        // Python rejects tzinfo offsets of a whole day or more when they are used
        let offset_micros = match self.offset {
            Some(off) if off.unsigned_abs() >= 86_400 => return None,
            Some(off) => i64::from(off) * MICROS_PER_SEC,
            None => 0,
        };
        match (self.has_date, self.has_time) {
            (true, true) => {
                let days = days_from_civil(self.year, self.month, self.day);
                let micros = days * MICROS_PER_DAY + self.time_of_day_micros() - offset_micros;
                (MIN_MICROS..=MAX_MICROS)
                    .contains(&micros)
                    .then_some(ParsedTime::DateTime {
                        micros_utc: micros,
                        naive: self.offset.is_none(),
                    })
            }
            (true, false) => {
                let days = days_from_civil(self.year, self.month, self.day);
                i32::try_from(days).ok().map(ParsedTime::Date)
            }
            (false, true) => Some(ParsedTime::Time(
                (self.time_of_day_micros() - offset_micros).rem_euclid(MICROS_PER_DAY),
            )),
            (false, false) => None,
        }
    }
}

// ------------------------------------------------------------------------------------------
// pendulum 3 ISO 8601 parser (rust/src/parsing.rs), datetimes only. It walks bytes: the
// original walks chars, but every place where it advances over a char has just matched an
// ASCII one, so positions agree and non-ASCII input fails at the same step.

struct Iso<'s> {
    s: &'s [u8],
    i: usize,
}

impl Iso<'_> {
    #[inline]
    fn end(&self) -> bool {
        self.i >= self.s.len()
    }

    /// The current byte; `0` at the end (pendulum's `'\0'`).
    #[inline]
    fn cur(&self) -> u8 {
        self.s.get(self.i).copied().unwrap_or(0)
    }

    #[inline]
    fn inc(&mut self) {
        if self.i < self.s.len() {
            self.i += 1;
        }
    }

    #[inline]
    fn at_sep_or_end(&self) -> bool {
        self.end() || self.cur() == b' ' || self.cur() == b'T'
    }

    fn int(&mut self, length: usize) -> Option<u32> {
        let mut value = 0u32;
        for _ in 0..length {
            let c = self.cur();
            if self.end() || !c.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u32::from(c - b'0');
            self.inc();
        }
        Some(value)
    }

    fn datetime(&mut self) -> Option<Fields> {
        let mut dt = Fields::new();
        if self.cur() == b'P' {
            // a duration: parse_iso_like_datetime raises for it
            return None;
        }
        if self.cur() == b'T' {
            self.time(&mut dt, false, false)?;
            return self.end().then_some(dt);
        }
        let first = self.int(2)?;
        if self.cur() == b':' {
            // time in extended format
            dt.hour = first;
            self.time(&mut dt, true, true)?;
            return self.end().then_some(dt);
        }
        dt.has_date = true;
        let year = first * 100 + self.int(2)?;
        let mut extended = false;
        if self.cur() == b'-' {
            self.inc();
            extended = true;
            if self.cur() == b'W' {
                self.inc();
                let week = self.int(2)?;
                let mut weekday = 1;
                if !self.at_sep_or_end() {
                    if self.cur() != b'-' {
                        return None;
                    }
                    self.inc();
                    weekday = self.int(1)?;
                }
                (dt.year, dt.month, dt.day) = iso_week_to_ymd(year as i32, week, weekday)?;
            } else {
                let month = self.int(2)?;
                if !self.at_sep_or_end() {
                    if self.cur() == b'-' {
                        self.inc();
                        (dt.year, dt.month, dt.day) = (year as i32, month, self.int(2)?);
                    } else {
                        let ordinal = (month * 10 + self.int(1)?) as i32;
                        (dt.year, dt.month, dt.day) = ordinal_to_ymd(year as i32, ordinal, false)?;
                    }
                } else {
                    (dt.year, dt.month, dt.day) = (year as i32, month, 1);
                }
            }
        } else if self.cur() == b'W' {
            self.inc();
            let week = self.int(2)?;
            let mut weekday = 1;
            if !self.at_sep_or_end() {
                weekday = self.int(1)?;
            }
            (dt.year, dt.month, dt.day) = iso_week_to_ymd(year as i32, week, weekday)?;
        } else {
            let month = self.int(2)?;
            let digit = self.int(1)?;
            if self.at_sep_or_end() {
                let ordinal = (month * 10 + digit) as i32;
                (dt.year, dt.month, dt.day) = ordinal_to_ymd(year as i32, ordinal, false)?;
            } else {
                (dt.year, dt.month, dt.day) = (year as i32, month, digit * 10 + self.int(1)?);
            }
        }
        if !self.end() {
            self.time(&mut dt, false, extended)?;
        }
        // anything left (including an interval's `/`) fails
        self.end().then_some(dt)
    }

    fn fraction(&mut self, dt: &mut Fields) -> Option<()> {
        self.inc();
        let mut micro = 0u32;
        let mut n = 0;
        while n < 6 {
            let c = self.cur();
            if c.is_ascii_digit() {
                micro = micro * 10 + u32::from(c - b'0');
            } else if n == 0 {
                return None;
            } else {
                break;
            }
            self.inc();
            n += 1;
        }
        // extra digits are dropped (truncation)
        while self.cur().is_ascii_digit() {
            self.inc();
        }
        while n < 6 {
            micro *= 10;
            n += 1;
        }
        dt.micro = micro;
        Some(())
    }

    fn time(&mut self, dt: &mut Fields, skip_hour: bool, extended_date: bool) -> Option<()> {
        let c = self.cur();
        if c != b'T' && c != b' ' && !skip_hour {
            return None;
        }
        dt.has_time = true;
        if !skip_hour {
            self.inc();
            dt.hour = self.int(2)?;
        }
        let not_tz = |p: &Self| !p.end() && !matches!(p.cur(), b'Z' | b'+' | b'-');
        if not_tz(self) {
            if self.cur() == b':' {
                self.inc();
                dt.minute = self.int(2)?;
                if not_tz(self) {
                    if self.cur() != b':' {
                        return None;
                    }
                    self.inc();
                    dt.second = self.int(2)?;
                    if matches!(self.cur(), b'.' | b',') {
                        self.fraction(dt)?;
                    }
                    if !extended_date {
                        // "basic" date (or a leading `T`) with "extended" time
                        return None;
                    }
                }
            } else {
                dt.minute = self.int(2)?;
                if not_tz(self) {
                    dt.second = self.int(2)?;
                    if matches!(self.cur(), b'.' | b',') {
                        self.fraction(dt)?;
                    }
                }
                if extended_date {
                    return None;
                }
            }
        }
        match self.cur() {
            b'Z' => {
                dt.offset = Some(0);
                self.inc();
            }
            b'+' | b'-' => {
                let sign = if self.cur() == b'+' { 1 } else { -1 };
                self.inc();
                let hours = self.int(2)? as i32;
                if self.cur() == b':' {
                    self.inc();
                }
                let minutes = if self.end() { 0 } else { self.int(2)? as i32 };
                let total = (minutes + hours * 60) * sign;
                if total > 24 * 60 {
                    return None;
                }
                dt.offset = Some(total * 60);
            }
            _ => {}
        }
        Some(())
    }
}

/// Runs pendulum's ISO 8601 parser and Python's constructor checks.
fn iso8601(s: &[u8]) -> Option<Fields> {
    let mut parser = Iso { s, i: 0 };
    let fields = parser.datetime()?;
    (fields.has_date || fields.has_time)
        .then_some(fields)
        .filter(Fields::valid)
}

fn pendulum_p(year: i32) -> i32 {
    year + year / 4 - year / 100 + year / 400
}

fn is_long_year(year: i32) -> bool {
    pendulum_p(year) % 7 == 4 || pendulum_p(year - 1) % 7 == 3
}

fn pendulum_week_day(year: i32, month: u32, day: u32) -> i32 {
    const DAY_OF_WEEK_TABLE: [i32; 12] = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4];
    let y = year - i32::from(month < 3);
    let w = (pendulum_p(y) + DAY_OF_WEEK_TABLE[(month - 1) as usize] + day as i32) % 7;
    if w == 0 {
        7
    } else {
        w.abs()
    }
}

fn iso_week_to_ymd(year: i32, week: u32, weekday: u32) -> Option<(i32, u32, u32)> {
    if week > 53 || (week > 52 && !is_long_year(year)) || weekday > 7 {
        return None;
    }
    let ordinal = week as i32 * 7 + weekday as i32 - (pendulum_week_day(year, 1, 4) + 3);
    ordinal_to_ymd(year, ordinal, true)
}

fn days_in_year(year: i32) -> i32 {
    if is_leap(year) {
        366
    } else {
        365
    }
}

fn ordinal_to_ymd(year: i32, ordinal: i32, allow_out_of_bounds: bool) -> Option<(i32, u32, u32)> {
    let (mut ord, mut y) = (ordinal, year);
    if ord < 1 {
        if !allow_out_of_bounds {
            return None;
        }
        ord += days_in_year(year - 1);
        y -= 1;
    }
    if ord > days_in_year(y) {
        if !allow_out_of_bounds {
            return None;
        }
        ord -= days_in_year(y);
        y += 1;
    }
    let mut month = 1;
    while month < 12 && ord > days_before_month(y, month + 1) {
        month += 1;
    }
    Some((y, month, (ord - days_before_month(y, month)) as u32))
}

fn days_before_month(year: i32, month: u32) -> i32 {
    const OFFSETS: [i32; 13] = [0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    OFFSETS[month as usize] + i32::from(month > 2 && is_leap(year))
}

// ------------------------------------------------------------------------------------------
// pendulum's `_parse_common` fallback: `COMMON.fullmatch(text)` with
//   ^(?P<date>(?P<year>\d{4})(?P<monthday>[/:]?(?P<month>\d{2})[/:]?(?P<day>\d{2}))?)?
//    (?P<time>\ ?(?P<hour>\d{1,2}):(?P<minute>\d{1,2})?(?::(?P<second>\d{1,2}))?
//    ([.|,](?P<subsecond>\d{1,9}))?)?$
// The matcher tries the alternatives in the order Python's backtracking engine does, so the
// first full match and its groups are the same; values are validated only afterwards, as in
// pendulum (`202413:30` is month 13, an error, not `2024` + `13:30`).

/// The longest string the regex can match, in chars.
const COMMON_MAX_CHARS: usize = 29;

fn common(s: &str) -> Option<Fields> {
    // map every char to ASCII: Unicode digits to their value, the regex's literals to
    // themselves; any other char cannot match
    let mut buf = [0u8; COMMON_MAX_CHARS];
    let mut n = 0;
    for c in s.chars() {
        if n == COMMON_MAX_CHARS {
            return None;
        }
        buf[n] = match c {
            '/' | ':' | ' ' | '.' | '|' | ',' => c as u8,
            _ => b'0' + decimal_value(c)? as u8,
        };
        n += 1;
    }
    let b = &buf[..n];
    let digits = |from: usize, len: usize| -> Option<u32> {
        let d = b.get(from..from + len)?;
        d.iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let is_sep = |at: usize| matches!(b.get(at), Some(b'/' | b':'));

    // date alternatives, in the regex's order: (end, year and (month, day))
    let mut dates: [(usize, CommonDate); 6] = [(0, None); 6];
    let mut n_dates = 0;
    if let Some(year) = digits(0, 4) {
        for month_sep in [true, false] {
            if month_sep && !is_sep(4) {
                continue;
            }
            let p = 4 + usize::from(month_sep);
            let Some(month) = digits(p, 2) else { continue };
            for day_sep in [true, false] {
                if day_sep && !is_sep(p + 2) {
                    continue;
                }
                let q = p + 2 + usize::from(day_sep);
                if let Some(day) = digits(q, 2) {
                    dates[n_dates] = (q + 2, Some((year, Some((month, day)))));
                    n_dates += 1;
                }
            }
        }
        dates[n_dates] = (4, Some((year, None)));
        n_dates += 1;
    }
    dates[n_dates] = (0, None);
    n_dates += 1;

    for &(p, date) in &dates[..n_dates] {
        if let Some(time) = common_time(b, p, &digits) {
            return common_fields(date, time);
        }
    }
    None
}

/// The groups of the regex's date part: year and (month, day).
type CommonDate = Option<(u32, Option<(u32, u32)>)>;

/// The groups of the regex's time part: hour, minute, second, subsecond digits.
type CommonTime<'b> = Option<(u32, Option<u32>, Option<u32>, Option<&'b [u8]>)>;

/// First alternative of the optional time group (from `p`) after which the string ends:
/// `Some(None)` when the time group is absent.
fn common_time<'b>(
    b: &'b [u8],
    p: usize,
    digits: &impl Fn(usize, usize) -> Option<u32>,
) -> Option<CommonTime<'b>> {
    let n = b.len();
    for space in [true, false] {
        if space && b.get(p) != Some(&b' ') {
            continue;
        }
        let q = p + usize::from(space);
        for hour_len in [2, 1] {
            let Some(hour) = digits(q, hour_len) else {
                continue;
            };
            let r = q + hour_len;
            if b.get(r) != Some(&b':') {
                continue;
            }
            let r = r + 1;
            for minute_len in [2, 1, 0] {
                let minute = if minute_len == 0 {
                    None
                } else {
                    match digits(r, minute_len) {
                        Some(m) => Some(m),
                        None => continue,
                    }
                };
                let s0 = r + minute_len;
                for second_len in [2, 1, 0] {
                    let (second, t) = if second_len == 0 {
                        (None, s0)
                    } else {
                        if b.get(s0) != Some(&b':') {
                            continue;
                        }
                        match digits(s0 + 1, second_len) {
                            Some(s) => (Some(s), s0 + 1 + second_len),
                            None => continue,
                        }
                    };
                    if matches!(b.get(t), Some(b'.' | b'|' | b',')) {
                        for frac_len in (1..=9).rev() {
                            if t + 1 + frac_len == n && digits(t + 1, frac_len).is_some() {
                                return Some(Some((
                                    hour,
                                    minute,
                                    second,
                                    Some(&b[t + 1..t + 1 + frac_len]),
                                )));
                            }
                        }
                    }
                    if t == n {
                        return Some(Some((hour, minute, second, None)));
                    }
                }
            }
        }
    }
    (p == n).then_some(None)
}

fn common_fields(date: CommonDate, time: CommonTime<'_>) -> Option<Fields> {
    let mut f = Fields::new();
    if date.is_none() && time.is_none() {
        return None;
    }
    if let Some((year, month_day)) = date {
        f.has_date = true;
        f.year = year as i32;
        (f.month, f.day) = month_day.unwrap_or((1, 1));
    }
    if let Some((hour, minute, second, subsecond)) = time {
        f.has_time = true;
        f.hour = hour;
        // a missing minute is `int(None)`: TypeError in pendulum
        f.minute = minute?;
        f.second = second.unwrap_or(0);
        if let Some(sub) = subsecond {
            // `subsecond[:6]` padded with zeros on the right
            let mut micro = 0;
            for i in 0..6 {
                micro = micro * 10 + sub.get(i).map_or(0, |c| u32::from(c - b'0'));
            }
            f.micro = micro;
        }
    }
    f.valid().then_some(f)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails loudly")]
mod tests {
    use super::super::calendar::civil_from_days;
    use super::*;

    fn dt(s: &str) -> Option<(String, bool)> {
        match parse_iso_like(s)? {
            ParsedTime::DateTime { micros_utc, naive } => {
                let d = chrono::DateTime::from_timestamp_micros(micros_utc)?;
                Some((d.format("%Y-%m-%d %H:%M:%S%.6f").to_string(), naive))
            }
            _ => None,
        }
    }

    fn date(s: &str) -> Option<String> {
        match parse_iso_like(s)? {
            ParsedTime::Date(d) => {
                let (y, m, dd) = civil_from_days(i64::from(d));
                Some(format!("{y:04}-{m:02}-{dd:02}"))
            }
            _ => None,
        }
    }

    fn time(s: &str) -> Option<String> {
        match parse_iso_like(s)? {
            ParsedTime::Time(us) => Some(format!(
                "{:02}:{:02}:{:02}.{:06}",
                us / 3_600_000_000,
                us / 60_000_000 % 60,
                us / 1_000_000 % 60,
                us % 1_000_000
            )),
            _ => None,
        }
    }

    #[test]
    fn detect_iso_datetimes_like_dlt() {
        // each checked with dlt 1.31: parse_iso_like_datetime / is_iso_timestamp
        let ts = |s: &str, expect: &str, naive: bool| {
            assert_eq!(dt(s), Some((expect.to_string(), naive)), "{s:?}");
        };
        ts("2024-01-15T10:30:00Z", "2024-01-15 10:30:00.000000", false);
        ts(
            "2024-01-15T10:30:00+02:00",
            "2024-01-15 08:30:00.000000",
            false,
        );
        ts(
            "2024-01-15T10:30:00+0200",
            "2024-01-15 08:30:00.000000",
            false,
        );
        ts(
            "2024-01-15T10:30:00+02",
            "2024-01-15 08:30:00.000000",
            false,
        );
        ts(
            "2024-01-15T10:30:00+01:",
            "2024-01-15 09:30:00.000000",
            false,
        );
        ts(
            "2024-01-15T10:30:00+02:75",
            "2024-01-15 07:15:00.000000",
            false,
        );
        ts(
            "2024-01-15T10:30:00-05:00",
            "2024-01-15 15:30:00.000000",
            false,
        );
        ts(
            "2024-01-15T10:30:00+23:59",
            "2024-01-14 10:31:00.000000",
            false,
        );
        ts("2024-01-15 10:30:00", "2024-01-15 10:30:00.000000", true);
        ts(
            "2024-01-15T10:30:00.123456789Z",
            "2024-01-15 10:30:00.123456",
            false,
        );
        ts("2024-01-15T10:30:00,5", "2024-01-15 10:30:00.500000", true);
        ts(
            "2024-01-15T10:30:00.123+01:30",
            "2024-01-15 09:00:00.123000",
            false,
        );
        ts("2024-01-15T10", "2024-01-15 10:00:00.000000", true);
        ts("2024-01-15T10Z", "2024-01-15 10:00:00.000000", false);
        ts("2024-01-15T10:30Z", "2024-01-15 10:30:00.000000", false);
        ts("20240115T103000", "2024-01-15 10:30:00.000000", true);
        ts("20240115T1030", "2024-01-15 10:30:00.000000", true);
        ts("20240115 103000", "2024-01-15 10:30:00.000000", true);
        ts("2024-01T10:30", "2024-01-01 10:30:00.000000", true);
        ts("2024-W01T10:00", "2024-01-01 10:00:00.000000", true);
        ts("2024W01T10:00", "2024-01-01 10:00:00.000000", true);
        ts(
            "0001-01-01T00:00:00+00:00",
            "0001-01-01 00:00:00.000000",
            false,
        );
        // fallback parser
        ts("2024/01/15 10:30", "2024-01-15 10:30:00.000000", true);
        ts("2024/01/15 1:2:3", "2024-01-15 01:02:03.000000", true);
        ts(
            "2024/01/15 10:30:00.1234567",
            "2024-01-15 10:30:00.123456",
            true,
        );
        ts("2024/01/15 10:30:00|5", "2024-01-15 10:30:00.500000", true);
        ts("2024 10:30", "2024-01-01 10:30:00.000000", true);
        ts("20241:30", "2024-01-01 01:30:00.000000", true);
        ts(
            "2024 10:30:00,123456789",
            "2024-01-01 10:30:00.123456",
            true,
        );
        for s in [
            "2024-01-15t10:30:00",
            " 2024-01-15T10:30:00",
            "2024-01-15T10:30:00 ",
            "2024-01-15T24:00:00",
            "2024-01-15T10:30:60",
            "20240115T10:30:00",
            "2024-01-15T103000",
            "2024-01-15 1030",
            "2024-01-15T10:30:00.",
            "2024-01-15T10:30:00.Z",
            "2024-01-15T10:30:00+1",
            "2024-01-15T10:30:00+25:00",
            "2024-01-15T",
            "2024-01-15T10:3",
            "2024-01-01/2024-01-02",
            "2024-01-15T10:30:00Z/P1D",
            "P1D",
            "P",
            "",
            "garbage",
            "15/01/2024",
            "1700000000",
            // dlt parses these, then fails converting them to UTC (see module docs)
            "2024-01-15T10:30:00-25:00",
            "2024-01-15T10:30:00+24:00",
            "9999-12-31T23:59:59-01:00",
            "0001-01-01T00:00:00+01:00",
        ] {
            assert_eq!(dt(s), None, "{s:?}");
        }
    }

    #[test]
    fn detect_iso_dates_and_times_like_dlt() {
        let d = |s: &str, expect: Option<&str>| assert_eq!(date(s).as_deref(), expect, "{s:?}");
        d("2024-01-15", Some("2024-01-15"));
        d("2024", Some("2024-01-01"));
        d("1030", Some("1030-01-01"));
        d("2024-01", Some("2024-01-01"));
        d("2024-W03", Some("2024-01-15"));
        d("2024-W03-2", Some("2024-01-16"));
        d("2024W032", Some("2024-01-16"));
        d("2024-015", Some("2024-01-15"));
        d("2024015", Some("2024-01-15"));
        d("2024011", Some("2024-01-11"));
        d("2024-366", Some("2024-12-31"));
        d("2020-W53-7", Some("2021-01-03"));
        d("2024-W00-1", Some("2023-12-25"));
        d("2024-W01-0", Some("2023-12-31"));
        d("20240115", Some("2024-01-15"));
        d("2024/01/15", Some("2024-01-15"));
        d("2024:01:15", Some("2024-01-15"));
        d("2024/0115", Some("2024-01-15"));
        d("202401/15", Some("2024-01-15"));
        d("202410:30", Some("2024-10-30"));
        d("٢٠٢٤", Some("2024-01-01"));
        for s in [
            "2024-13-45",
            "2024-02-30",
            "2023-366",
            "2024-W53",
            "0000-01-01",
            "0000-W01-1",
            "0000-001",
            "9999-W52-7",
            "202401",
            "202413:30",
            "2024/13/01",
            "2024-1-15",
            "２０２４-01-01",
            "2024\n",
            "2024-01-15 ",
        ] {
            assert_eq!(date(s), None, "{s:?}");
            assert_eq!(dt(s), None, "{s:?}");
        }
        let t = |s: &str, expect: Option<&str>| assert_eq!(time(s).as_deref(), expect, "{s:?}");
        t("10:30:00", Some("10:30:00.000000"));
        t("10:30", Some("10:30:00.000000"));
        t("T10:30", Some("10:30:00.000000"));
        t("T1030", Some("10:30:00.000000"));
        t("T103000.5", Some("10:30:00.500000"));
        t("T10", Some("10:00:00.000000"));
        t("10:30:00.5Z", Some("10:30:00.500000"));
        t("T10:30+02:00", Some("08:30:00.000000"));
        t("00:30+02:00", Some("22:30:00.000000"));
        t("10:30:00+0530", Some("05:00:00.000000"));
        t("1:2:3", Some("01:02:03.000000"));
        t("1:02:03.4", Some("01:02:03.400000"));
        t("12:5", Some("12:05:00.000000"));
        t(" 10:30", Some("10:30:00.000000"));
        t("10:30:00|5", Some("10:30:00.500000"));
        for s in [
            "T10:30:00",
            "T10:30:00Z",
            "10",
            "10:",
            "5:",
            "24:00",
            "10:60",
            "23:59:60",
            "10:30:00.",
            "10:30:00-25:00",
            "10:30:00+24:00",
            "T10:30:00.5+01",
        ] {
            assert_eq!(time(s), None, "{s:?}");
        }
    }
}
