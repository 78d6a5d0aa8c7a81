//! Where `serve`'s log lines go. Every thread appends its formatted line to
//! one shared buffer under a short lock; one writer thread moves what has
//! gathered to standard error, at most once per [`GATHER`]. A request never
//! makes a system call to log, and wakes the writer only with the first
//! line after a quiet spell: at tens of thousands of player requests a
//! second, each with its access line, a write and a thread wake-up per
//! line cost about a fifth of a licence's CPU. Nothing is dropped: past
//! [`MAX_PENDING`] bytes a logger waits for the writer. Dropping the
//! [`LogSinkGuard`] writes out the rest; a line can wait up to [`GATHER`]
//! before it is written, and a killed process loses at most that much.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the writer gathers lines after the first one before writing
/// them out together.
pub const GATHER: Duration = Duration::from_millis(10);

/// Bytes waiting to be written past which loggers wait for the writer.
pub const MAX_PENDING: usize = 4 << 20;

struct State {
    pending: Vec<u8>,
    /// The writer waits on `wake` for a first line.
    writer_idle: bool,
    /// Loggers waiting on `room`.
    waiting_for_room: usize,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    room: Condvar,
    max_pending: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A logger that panicked mid-append leaves whole bytes behind;
        // logging goes on.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The handle loggers write through (a `MakeWriter` for `tracing`).
#[derive(Clone)]
pub struct LogSink {
    shared: Arc<Shared>,
}

/// Stops the writer thread when dropped, after it has written every line.
pub struct LogSinkGuard {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

impl LogSink {
    /// Starts the writer thread over `out`.
    pub fn start(out: impl Write + Send + 'static) -> io::Result<(LogSink, LogSinkGuard)> {
        Self::start_with(out, MAX_PENDING, GATHER)
    }

    fn start_with(
        out: impl Write + Send + 'static,
        max_pending: usize,
        gather: Duration,
    ) -> io::Result<(LogSink, LogSinkGuard)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: Vec::with_capacity(64 * 1024),
                writer_idle: false,
                waiting_for_room: 0,
                closed: false,
            }),
            wake: Condvar::new(),
            room: Condvar::new(),
            max_pending,
        });
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("cpixd-log".into())
                .spawn(move || write_out(&shared, out, gather))?
        };
        Ok((
            LogSink {
                shared: shared.clone(),
            },
            LogSinkGuard {
                shared,
                writer: Some(writer),
            },
        ))
    }

    /// Appends whole lines (what one `write` is given).
    fn append(&self, bytes: &[u8]) {
        let shared = &*self.shared;
        let mut s = shared.lock();
        while s.pending.len() >= shared.max_pending && !s.closed {
            s.waiting_for_room += 1;
            s = shared.room.wait(s).unwrap_or_else(PoisonError::into_inner);
            s.waiting_for_room -= 1;
        }
        s.pending.extend_from_slice(bytes);
        if s.writer_idle {
            s.writer_idle = false;
            shared.wake.notify_one();
        }
    }
}

/// The writer thread: waits for a first line, gathers for `gather`, writes
/// everything pending in one go; after the close, writes the rest and ends.
fn write_out(shared: &Shared, mut out: impl Write, gather: Duration) {
    let mut batch = Vec::new();
    loop {
        let closed = {
            let mut s = shared.lock();
            while s.pending.is_empty() && !s.closed {
                s.writer_idle = true;
                s = shared.wake.wait(s).unwrap_or_else(PoisonError::into_inner);
            }
            s.writer_idle = false;
            if s.pending.is_empty() {
                return;
            }
            s.closed
        };
        if !closed {
            std::thread::sleep(gather);
        }
        {
            let mut s = shared.lock();
            std::mem::swap(&mut s.pending, &mut batch);
            if s.waiting_for_room > 0 {
                shared.room.notify_all();
            }
        }
        // Standard error failing leaves nowhere to say so.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        // A burst's buffer is not kept for ever.
        batch.shrink_to(256 * 1024);
    }
}

impl Drop for LogSinkGuard {
    fn drop(&mut self) {
        {
            let mut s = self.shared.lock();
            s.closed = true;
            self.shared.wake.notify_one();
            self.shared.room.notify_all();
        }
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// One logger's writer: each `write` appends whole.
pub struct SinkWriter<'a>(&'a LogSink);

impl Write for SinkWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = SinkWriter<'a>;

    fn make_writer(&'a self) -> SinkWriter<'a> {
        SinkWriter(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// An output that keeps what it is given and counts the writes.
    #[derive(Clone, Default)]
    struct Kept(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Kept {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut k = self.0.lock().unwrap();
            k.0.extend_from_slice(buf);
            k.1 += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// One line, in one write, as `tracing`'s formatter hands over an event.
    fn log(sink: &LogSink, line: String) {
        SinkWriter(sink).write_all(line.as_bytes()).unwrap();
    }

    impl Kept {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().0.clone()).unwrap()
        }
        fn writes(&self) -> usize {
            self.0.lock().unwrap().1
        }
    }

    #[test]
    fn every_line_of_every_thread_arrives_whole_and_in_its_order() {
        let kept = Kept::default();
        let (sink, guard) = LogSink::start_with(kept.clone(), 1 << 20, GATHER).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    for i in 0..2000 {
                        log(
                            &sink,
                            format!("thread {t} line {i:04} {}\n", "x".repeat(i % 50)),
                        );
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let text = kept.text();
        assert_eq!(text.lines().count(), 8000);
        for t in 0..4 {
            let mine: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with(&format!("thread {t} ")))
                .collect();
            assert_eq!(mine.len(), 2000);
            for (i, l) in mine.iter().enumerate() {
                assert_eq!(
                    **l,
                    format!("thread {t} line {i:04} {}", "x".repeat(i % 50))
                );
            }
        }
    }

    #[test]
    fn lines_go_out_together_and_without_waiting_for_the_close() {
        let kept = Kept::default();
        // A long gathering time: the thousand lines land in one or two
        // batches however slowly this machine appends them.
        let (sink, guard) =
            LogSink::start_with(kept.clone(), 1 << 20, Duration::from_millis(300)).unwrap();
        for i in 0..1000 {
            log(&sink, format!("line {i}\n"));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while kept.text().lines().count() < 1000 {
            assert!(
                std::time::Instant::now() < deadline,
                "the lines never went out"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            kept.writes() <= 4,
            "{} writes for 1000 lines",
            kept.writes()
        );
        drop(guard);
        assert_eq!(kept.text().lines().count(), 1000);
    }

    /// An output that holds every write until it is let go.
    struct Held(mpsc::Receiver<()>, Kept);

    impl Write for Held {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _ = self.0.recv();
            self.1.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_logger_waits_for_room_instead_of_dropping_lines() {
        let kept = Kept::default();
        let (release, held) = mpsc::channel();
        let (sink, guard) =
            LogSink::start_with(Held(held, kept.clone()), 1000, Duration::ZERO).unwrap();
        let (done_tx, done) = mpsc::channel();
        let logger = {
            let sink = sink.clone();
            std::thread::spawn(move || {
                // 100 lines of 100 bytes: ten times the room, with the
                // output stuck.
                for i in 0..100 {
                    log(&sink, format!("{i:099}\n"));
                }
                done_tx.send(()).unwrap();
            })
        };
        // While the output holds the first batch, the logger cannot finish.
        assert!(done.recv_timeout(Duration::from_millis(300)).is_err());
        drop(release);
        done.recv_timeout(Duration::from_secs(20)).unwrap();
        logger.join().unwrap();
        drop(guard);
        let text = kept.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 100);
        for (i, l) in lines.iter().enumerate() {
            assert_eq!(**l, format!("{i:099}"));
        }
    }
}
