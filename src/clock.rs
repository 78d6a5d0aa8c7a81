//! Calendar dates for the JSON APIs, in UTC and without a time-zone
//! database: RFC 3339 formatting (`2026-12-06T10:00:00Z`), and parsing of
//! RFC 3339 / ISO 8601 and of the `M/D/YYYY` form the Cloud Video Kit
//! examples use.

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day count from 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time in seconds.
pub fn rfc3339(secs: u64) -> String {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX / 2);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of a Unix time in milliseconds.
pub fn rfc3339_millis(ms: u64) -> String {
    let base = rfc3339(ms / 1000);
    format!("{}.{:03}Z", base.trim_end_matches('Z'), ms % 1000)
}

/// Parses a date-time into milliseconds since the Unix epoch: RFC 3339 /
/// ISO 8601 (`2025-01-01`, `2025-01-01T10:00`, `…:00Z`, `…:00.5+02:00`,
/// a space instead of `T`), or `M/D/YYYY` with an optional ` H:MM[:SS]`
/// (UTC). `None` for anything else or an impossible date.
pub fn parse_date_time(text: &str) -> Option<i64> {
    let t = text.trim();
    if t.len() > 40 {
        return None;
    }
    let (date, time) = match t.find(['T', 't', ' ']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let (y, m, d) = if date.contains('/') {
        let mut it = date.split('/');
        let (m, d, y) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() {
            return None;
        }
        (
            y.parse::<i64>().ok()?,
            m.parse::<u32>().ok()?,
            d.parse::<u32>().ok()?,
        )
    } else {
        let mut it = date.splitn(3, '-');
        let (y, m, d) = (it.next()?, it.next()?, it.next()?);
        if y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return None;
        }
        (
            y.parse::<i64>().ok()?,
            m.parse::<u32>().ok()?,
            d.parse::<u32>().ok()?,
        )
    };
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) || !(1..=9999).contains(&y) {
        return None;
    }
    let mut ms = days_from_civil(y, m, d) * 86_400_000;
    if let Some(time) = time {
        // Offset: Z, +HH:MM or -HH:MM.
        let (clock, offset_ms) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
            (c, 0)
        } else if let Some(i) = time.rfind(['+', '-']) {
            let (c, off) = time.split_at(i);
            let sign = if off.starts_with('-') { -1 } else { 1 };
            let off = &off[1..];
            let (oh, om) = off
                .split_once(':')
                .unwrap_or((off.get(..2)?, off.get(2..)?));
            let (oh, om) = (oh.parse::<i64>().ok()?, om.parse::<i64>().ok()?);
            if oh > 23 || om > 59 {
                return None;
            }
            (c, sign * (oh * 3600 + om * 60) * 1000)
        } else {
            (time, 0)
        };
        let mut parts = clock.split(':');
        let h: i64 = parts.next()?.parse().ok()?;
        let mi: i64 = parts.next()?.parse().ok()?;
        let sec: f64 = match parts.next() {
            Some(s) => s.parse().ok()?,
            None => 0.0,
        };
        if parts.next().is_some() || h > 23 || mi > 59 || !(0.0..61.0).contains(&sec) {
            return None;
        }
        ms += (h * 3600 + mi * 60) * 1000 + (sec * 1000.0).round() as i64 - offset_ms;
    }
    Some(ms)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_735_689_600), "2025-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_millis(1_500), "1970-01-01T00:00:01.500Z");
        let jan1 = 1_735_689_600_000;
        for s in [
            "2025-01-01",
            "2025-01-01T00:00:00Z",
            "2025-01-01T00:00",
            "2025-01-01 00:00:00",
            "2025-01-01T02:00:00+02:00",
            "1/1/2025",
            "01/01/2025",
            "1/1/2025 0:00",
        ] {
            assert_eq!(parse_date_time(s), Some(jan1), "{s}");
        }
        assert_eq!(parse_date_time("2025-01-01T00:00:00.5Z"), Some(jan1 + 500));
        assert_eq!(parse_date_time("12/31/2024 23:59:59"), Some(jan1 - 1000));
        for bad in [
            "",
            "2025-13-01",
            "2025-02-30",
            "2/29/2025",
            "yesterday",
            "2025-1-1",
            "1/1",
            "2025-01-01T25:00",
        ] {
            assert_eq!(parse_date_time(bad), None, "{bad}");
        }
        for days in [-1000, 0, 1, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
