//! Where log lines go: stderr, in batches.
//!
//! tracing-appender's logging thread flushes its writer whenever its queue is empty, which at a
//! few thousand requests per second is after every line: one write(2) per line, as before, only
//! on another thread (measured with `strace -f`: 12,412 writes of 188 bytes for 12k requests).
//! [`Batched`] ignores that flush: lines gather in a buffer that a flusher thread writes out
//! [`DELAY`] after the first line lands in an empty buffer, or at once when it holds [`CAP`]
//! bytes. Order is kept (one buffer, written under its lock); the last lines are written when
//! the [`Guard`] is dropped.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long a line may wait for company before it is written.
pub const DELAY: Duration = Duration::from_millis(20);
/// Buffer size that is written at once.
pub const CAP: usize = 64 * 1024;

struct Shared<W> {
    /// Pending bytes and the sink, under one lock so writes leave in order.
    state: Mutex<(Vec<u8>, W)>,
    wake: Condvar,
    stop: AtomicBool,
}

impl<W: Write> Shared<W> {
    fn lock(&self) -> MutexGuard<'_, (Vec<u8>, W)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write_out(state: &mut (Vec<u8>, W)) {
        let (buf, sink) = state;
        if !buf.is_empty() {
            // Nowhere to report a failing stderr; drop the batch rather than grow forever.
            let _ = sink.write_all(buf).and_then(|()| sink.flush());
            buf.clear();
        }
    }
}

/// The writer handed to tracing-appender's logging thread.
pub struct Batched<W: Write + Send + 'static> {
    shared: Arc<Shared<W>>,
}

/// Writes out what is left when dropped (after the logging thread has finished).
pub struct Guard<W: Write + Send + 'static> {
    shared: Arc<Shared<W>>,
    flusher: Option<std::thread::JoinHandle<()>>,
}

/// A batching writer over `sink`, and the guard that ends it.
pub fn batched<W: Write + Send + 'static>(sink: W) -> (Batched<W>, Guard<W>) {
    let shared = Arc::new(Shared {
        state: Mutex::new((Vec::with_capacity(CAP), sink)),
        wake: Condvar::new(),
        stop: AtomicBool::new(false),
    });
    let flusher = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("mailconf-log-flush".into())
            .spawn(move || {
                loop {
                    let mut state = shared.lock();
                    while state.0.is_empty() && !shared.stop.load(Ordering::SeqCst) {
                        state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
                    }
                    if shared.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    drop(state);
                    std::thread::sleep(DELAY);
                    Shared::write_out(&mut shared.lock());
                }
            })
            .ok()
    };
    (Batched { shared: shared.clone() }, Guard { shared, flusher })
}

impl<W: Write + Send + 'static> Write for Batched<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut state = self.shared.lock();
        let was_empty = state.0.is_empty();
        state.0.extend_from_slice(bytes);
        if state.0.len() >= CAP {
            Shared::write_out(&mut state);
        } else if was_empty {
            self.shared.wake.notify_one();
        }
        Ok(bytes.len())
    }

    /// The flusher thread decides when bytes leave.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write + Send + 'static> Drop for Guard<W> {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
        if let Some(f) = self.flusher.take() {
            let _ = f.join();
        }
        Shared::write_out(&mut self.shared.lock());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that records every write call.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().push(b.to_vec());
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_leave_in_order_in_few_writes_soon_and_at_the_end() {
        let sink = Sink::default();
        let (mut w, guard) = batched(sink.clone());
        let mut expected = Vec::new();
        for i in 0..2000 {
            let line = format!("line {i}\n");
            w.write_all(line.as_bytes()).unwrap();
            w.flush().unwrap();
            expected.extend_from_slice(line.as_bytes());
        }
        // A lone line after a pause is written within a few DELAYs, without another line.
        std::thread::sleep(DELAY * 5);
        w.write_all(b"alone\n").unwrap();
        expected.extend_from_slice(b"alone\n");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while sink.0.lock().unwrap().concat() != expected {
            assert!(std::time::Instant::now() < deadline, "lone line not written");
            std::thread::sleep(Duration::from_millis(5));
        }
        let writes = sink.0.lock().unwrap().len();
        assert!(writes <= 5, "{writes} writes for 2001 lines");
        // Whatever is pending at the end is written when the guard goes.
        w.write_all(b"last\n").unwrap();
        expected.extend_from_slice(b"last\n");
        drop(guard);
        assert_eq!(sink.0.lock().unwrap().concat(), expected);
    }
}
