//! The text form of `serve`'s log lines, written without the generic
//! formatting machinery. Every player request and every key request logs
//! one line; `tracing-subscriber`'s full format builds it through layers of
//! `Display` values (styled names that print nothing, a date formatted
//! field by field, `Debug` escaping one character at a time), about a
//! tenth of a licence's instructions. [`Text`] writes the same bytes
//! directly: the same timestamp, level column, message and `name=value`
//! fields. Anything it does not write the same way by construction (a span
//! around the event, an error value with its sources, a record from the
//! `log` crate, ANSI colours) goes to `tracing-subscriber`'s own formatter,
//! so the output never differs (`tests` compare the two line for line).

use std::cell::RefCell;
use std::fmt::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{self, Format, FormatEvent, FormatFields, Full, Writer};
use tracing_subscriber::fmt::time::SystemTime as DefaultClock;
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;

/// The event formatter of the text log format (see the module comment).
pub struct Text {
    fallback: Format<Full, DefaultClock>,
    /// Events handed to the fallback.
    fallbacks: Arc<AtomicUsize>,
}

impl Default for Text {
    fn default() -> Self {
        Text {
            fallback: format::format().with_target(false),
            fallbacks: Arc::default(),
        }
    }
}

impl Text {
    fn fall_back<S, N>(
        &self,
        ctx: &FmtContext<'_, S, N>,
        writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        self.fallback.format_event(ctx, writer, event)
    }
}

thread_local! {
    /// A line being built, and the text of the second it was last built in.
    static LINE: RefCell<(String, Second)> = RefCell::new((String::with_capacity(256), Second::default()));
}

impl<S, N> FormatEvent<S, N> for Text
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if writer.has_ansi_escapes() || ctx.event_scope().is_some() {
            return self.fall_back(ctx, writer, event);
        }
        let written = LINE.with(|cell| {
            let Ok(mut cell) = cell.try_borrow_mut() else {
                return None;
            };
            let (line, second) = &mut *cell;
            line.clear();
            line_at(line, second, SystemTime::now(), event).then(|| writer.write_str(line))
        });
        match written {
            Some(result) => result,
            None => self.fall_back(ctx, writer, event),
        }
    }
}

/// Writes `event`'s line as at `now` into `line`; false when the event has
/// something only the fallback writes.
fn line_at(line: &mut String, second: &mut Second, now: SystemTime, event: &Event<'_>) -> bool {
    if !second.write(line, now) {
        return false;
    }
    line.push_str(match *event.metadata().level() {
        Level::TRACE => "TRACE ",
        Level::DEBUG => "DEBUG ",
        Level::INFO => " INFO ",
        Level::WARN => " WARN ",
        Level::ERROR => "ERROR ",
    });
    let mut fields = Fields {
        line,
        first: true,
        unsupported: false,
    };
    event.record(&mut fields);
    if fields.unsupported {
        return false;
    }
    line.push('\n');
    true
}

/// `YYYY-MM-DDTHH:MM:SS` of the last second formatted, and that second.
#[derive(Default)]
struct Second {
    unix: Option<u64>,
    text: String,
}

impl Second {
    /// Appends `now` as `2026-12-07T23:11:20.051146Z ` (microseconds, UTC).
    /// False for a time before 1970 (a broken clock), which only the
    /// fallback writes.
    fn write(&mut self, out: &mut String, now: SystemTime) -> bool {
        let Ok(since) = now.duration_since(UNIX_EPOCH) else {
            return false;
        };
        let secs = since.as_secs();
        if self.unix != Some(secs) {
            self.text.clear();
            civil_time(&mut self.text, secs);
            self.unix = Some(secs);
        }
        out.push_str(&self.text);
        out.push('.');
        push_padded(out, u64::from(since.subsec_micros()), 6);
        out.push_str("Z ");
        true
    }
}

/// `YYYY-MM-DDTHH:MM:SS` for seconds since 1970: [`crate::clock::rfc3339`]
/// without its `Z`, and a year past 9999 written `+10000`, as
/// `tracing-subscriber` does.
fn civil_time(out: &mut String, secs: u64) {
    let text = crate::clock::rfc3339(secs);
    let text = text.strip_suffix('Z').unwrap_or(&text);
    // `YYYY-MM-DDTHH:MM:SS` is 19 bytes; more means a longer year.
    if text.len() > 19 {
        out.push('+');
    }
    out.push_str(text);
}

/// Appends `v` in decimal, zero-padded to `width` digits.
fn push_padded(out: &mut String, v: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    let mut v = v;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let start = i.min(digits.len() - width.min(digits.len()));
    for &d in &digits[start..] {
        out.push(char::from(d));
    }
}

/// The fields of one event, as `tracing-subscriber`'s default visitor
/// writes them: the message as written (terminal control characters
/// escaped), then ` name=value` with values in their `Debug` form.
struct Fields<'a> {
    line: &'a mut String,
    first: bool,
    unsupported: bool,
}

impl Fields<'_> {
    /// Starts a field: a space between fields, then `name=` unless it is
    /// the message. True for the message.
    fn begin(&mut self, field: &Field) -> bool {
        if !self.first {
            self.line.push(' ');
        }
        self.first = false;
        let name = field.name();
        if name == "message" {
            return true;
        }
        self.line.push_str(name.strip_prefix("r#").unwrap_or(name));
        self.line.push('=');
        false
    }

    /// A field from the `log` crate's records: only the fallback writes
    /// those (with the record's own level and target).
    fn skips_log_field(&mut self, field: &Field) -> bool {
        if field.name().starts_with("log.") {
            self.unsupported = true;
        }
        self.unsupported
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.skips_log_field(field) {
            return;
        }
        if self.begin(field) {
            push_escaped_message(self.line, value);
        } else {
            push_debug_str(self.line, value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.skips_log_field(field) {
            return;
        }
        self.begin(field);
        push_padded(self.line, value, 1);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.skips_log_field(field) {
            return;
        }
        self.begin(field);
        if value < 0 {
            self.line.push('-');
        }
        push_padded(self.line, value.unsigned_abs(), 1);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.skips_log_field(field) {
            return;
        }
        self.begin(field);
        self.line.push_str(if value { "true" } else { "false" });
    }

    fn record_error(&mut self, _field: &Field, _value: &(dyn std::error::Error + 'static)) {
        self.unsupported = true;
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.skips_log_field(field) {
            return;
        }
        let message = self.begin(field);
        let start = self.line.len();
        let _ = write!(self.line, "{value:?}");
        if message {
            escape_controls_from(self.line, start);
        }
    }
}

/// True for the characters the message escapes: ESC, BEL, BS, FF, DEL and
/// the C1 controls, which a terminal could take for a command.
fn is_terminal_control(c: char) -> bool {
    matches!(
        c,
        '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' | '\u{80}'..='\u{9f}'
    )
}

/// Appends a message, its terminal controls escaped as `\x1b` (C0, DEL)
/// or `\u{9b}` (C1).
fn push_escaped_message(out: &mut String, text: &str) {
    if !text.chars().any(is_terminal_control) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\u{80}'..='\u{9f}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c if is_terminal_control(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Escapes the terminal controls in `out[start..]` (a message written by
/// its own `Debug`).
fn escape_controls_from(out: &mut String, start: usize) {
    if out[start..].chars().any(is_terminal_control) {
        let written = out.split_off(start);
        push_escaped_message(out, &written);
    }
}

/// Appends `value` as `str`'s `Debug` writes it: quoted, and plain unless
/// it holds a quote, a backslash or anything outside printable ASCII.
fn push_debug_str(out: &mut String, value: &str) {
    if value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.push('"');
        out.push_str(value);
        out.push('"');
    } else {
        let _ = write!(out, "{value:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::Mutex;
    use tracing_subscriber::fmt::MakeWriter;

    /// Collects what a subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer failure")]
    struct Outer(#[source] io::Error);

    /// Every kind of event `serve` logs, and the odd ones.
    fn log_everything() {
        let e = io::Error::other("disk full");
        let ms = (23.7635f64 * 1e3).round() / 1e3;
        tracing::info!(
            endpoint = "speke2",
            tenant = "load",
            status = 200u16,
            ms,
            content_id = "new-1461329138",
            keys = 8usize,
            created = 8usize,
            "keys issued"
        );
        tracing::info!(
            tenant = "acme",
            system = "clearkey",
            request = "license",
            status = 403u16,
            code = "token_expired",
            kids = 2usize,
            ms = 0.09f64,
            "player request"
        );
        tracing::warn!(error = %e, "key store: reopening failed; retrying");
        tracing::error!(error = ?e, "debug of an error");
        tracing::error!(
            error = &Outer(io::Error::other("inner")) as &(dyn std::error::Error + 'static),
            "with sources"
        );
        tracing::info!(
            address = "127.0.0.1:1",
            "cpixd 0.1.0 listening on http://127.0.0.1:1"
        );
        tracing::info!(
            written = 0u64,
            negative = -5i64,
            flag = true,
            "licence log flushed"
        );
        tracing::info!(
            quoted = "say \"hi\"\\ there",
            tab = "a\tb",
            unicode = "héllo ✓",
            empty = "",
            "message with \x1b[31mred\x1b[0m, a bell \x07, \u{9b}C1 and é"
        );
        tracing::info!(r#type = "raw", "raw identifier");
        tracing::info!("{} formatted {:?} message\x7f", 42, "arg");
        tracing::debug!(
            big = u64::MAX,
            small = i64::MIN,
            f = 1e-7f64,
            g = f64::NAN,
            "numbers"
        );
        tracing::warn!("no fields at all");
        let span = tracing::info_span!("request", id = 7);
        let _in = span.enter();
        tracing::info!(inside = true, "within a span");
    }

    /// The lines of [`log_everything`], and how many the fast formatter
    /// handed to the fallback (`None`: the default formatter alone).
    fn run(fast: bool) -> (Vec<String>, Option<usize>) {
        let out = Captured::default();
        let builder = tracing_subscriber::fmt()
            .with_writer(out.clone())
            .with_ansi(false)
            .with_target(false)
            .with_max_level(Level::TRACE);
        let fallbacks = if fast {
            let text = Text::default();
            let fallbacks = text.fallbacks.clone();
            tracing::subscriber::with_default(builder.event_format(text).finish(), log_everything);
            Some(fallbacks.load(Ordering::Relaxed))
        } else {
            tracing::subscriber::with_default(builder.finish(), log_everything);
            None
        };
        (out.lines(), fallbacks)
    }

    #[test]
    fn lines_are_those_of_the_default_formatter() {
        // Timestamps differ by the microseconds between the two runs: the
        // rest of each line must be identical.
        let ((fast, fallbacks), (slow, _)) = (run(true), run(false));
        assert_eq!(fast.len(), slow.len());
        assert_eq!(fast.len(), 13);
        // Only the error with sources and the event in a span are not
        // written by the fast path.
        assert_eq!(fallbacks, Some(2));
        for (f, s) in fast.iter().zip(&slow) {
            let (ft, frest) = f.split_once(' ').unwrap();
            let (st, srest) = s.split_once(' ').unwrap();
            assert_eq!(frest, srest);
            assert_eq!(ft.len(), "2026-12-07T23:11:20.051146Z".len(), "{ft}");
            assert_eq!(ft.len(), st.len());
            assert_eq!(&ft[..10], &st[..10], "same day");
            assert!(ft.ends_with('Z') && ft.as_bytes()[19] == b'.');
        }
        assert!(fast
            .iter()
            .any(|l| l.ends_with("ERROR with sources error=outer failure error.sources=[inner]")));
        assert!(fast[7].contains("\\x1b[31mred"), "{}", fast[7]);
    }

    #[test]
    fn the_date_is_the_civil_date_of_the_second() {
        for (secs, want) in [
            (0, "1970-01-01T00:00:00"),
            (951_782_400, "2000-02-29T00:00:00"),
            (951_955_199, "2000-03-01T23:59:59"),
            (1_709_164_800, "2024-02-29T00:00:00"),
            (1_796_685_080, "2026-12-07T23:11:20"),
            (4_107_542_400, "2100-03-01T00:00:00"),
            (4_107_542_399, "2100-02-28T23:59:59"),
            (253_402_300_799, "9999-12-31T23:59:59"),
            (253_402_300_800, "+10000-01-01T00:00:00"),
        ] {
            let mut s = String::new();
            civil_time(&mut s, secs);
            assert_eq!(s, want, "{secs}");
        }
        let mut second = Second::default();
        let mut s = String::new();
        let t = UNIX_EPOCH + std::time::Duration::new(1_796_685_080, 51_146_999);
        assert!(second.write(&mut s, t));
        assert!(second.write(&mut s, t + std::time::Duration::from_micros(1)));
        assert!(!second.write(&mut s, UNIX_EPOCH - std::time::Duration::from_secs(1)));
        assert_eq!(
            s,
            "2026-12-07T23:11:20.051146Z 2026-12-07T23:11:20.051147Z "
        );
    }

    #[test]
    fn padding_keeps_every_digit() {
        for (v, w, want) in [
            (0, 1, "0"),
            (7, 2, "07"),
            (123, 2, "123"),
            (51_146, 6, "051146"),
        ] {
            let mut s = String::new();
            push_padded(&mut s, v, w);
            assert_eq!(s, want);
        }
        let mut s = String::new();
        push_padded(&mut s, u64::MAX, 1);
        assert_eq!(s, u64::MAX.to_string());
    }
}
