//! Where log lines go: stderr, in batches.
//!
//! One write(2) per line cost a fifth of the request throughput. [`Batched`] gathers lines in a
//! buffer (each line is one `write` call, so lines never interleave) that a flusher thread
//! writes out [`DELAY`] after the first line lands in an empty buffer, or that the writer of a
//! line writes out at once when the buffer holds [`CAP`] bytes (so a stuck stderr holds logging
//! back instead of growing memory: nothing is dropped). Order is kept: a batch is taken from the
//! buffer only under the sink's lock, and written before that lock is let go; lines go on
//! gathering meanwhile. The last lines are written when the [`Guard`] is dropped.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long a line may wait for company before it is written.
pub const DELAY: Duration = Duration::from_millis(20);
/// Buffer size that is written at once.
pub const CAP: usize = 64 * 1024;

struct Shared<W> {
    /// Pending bytes. Held only to append or to swap the batch out.
    pending: Mutex<Vec<u8>>,
    /// The sink and a spare buffer; held while a batch is written, so batches leave in order.
    sink: Mutex<(W, Vec<u8>)>,
    wake: Condvar,
    stop: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<W: Write> Shared<W> {
    /// Write out whatever is pending.
    fn write_out(&self) {
        let mut sink = lock(&self.sink);
        let (out, spare) = &mut *sink;
        std::mem::swap(&mut *lock(&self.pending), spare);
        if !spare.is_empty() {
            // Nowhere to report a failing stderr; drop the batch rather than grow forever.
            let _ = out.write_all(spare).and_then(|()| out.flush());
            spare.clear();
        }
    }
}

/// The writer log lines are handed to; clones share the buffer.
pub struct Batched<W: Write + Send + 'static> {
    shared: Arc<Shared<W>>,
}

impl<W: Write + Send + 'static> Clone for Batched<W> {
    fn clone(&self) -> Self {
        Batched {
            shared: self.shared.clone(),
        }
    }
}

/// Writes out what is left when dropped.
pub struct Guard<W: Write + Send + 'static> {
    shared: Arc<Shared<W>>,
    flusher: Option<std::thread::JoinHandle<()>>,
}

/// A batching writer over `sink`, and the guard that ends it.
pub fn batched<W: Write + Send + 'static>(sink: W) -> (Batched<W>, Guard<W>) {
    let shared = Arc::new(Shared {
        pending: Mutex::new(Vec::with_capacity(CAP)),
        sink: Mutex::new((sink, Vec::with_capacity(CAP))),
        wake: Condvar::new(),
        stop: AtomicBool::new(false),
    });
    let flusher = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("mailconf-log-flush".into())
            .spawn(move || {
                loop {
                    let mut pending = lock(&shared.pending);
                    while pending.is_empty() && !shared.stop.load(Ordering::SeqCst) {
                        pending = shared.wake.wait(pending).unwrap_or_else(|e| e.into_inner());
                    }
                    if shared.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    drop(pending);
                    std::thread::sleep(DELAY);
                    shared.write_out();
                }
            })
            .ok()
    };
    (Batched { shared: shared.clone() }, Guard { shared, flusher })
}

impl<W: Write + Send + 'static> Batched<W> {
    /// Append one whole line (or several); never split from other writers' bytes.
    pub fn write_line(&self, bytes: &[u8]) {
        let mut pending = lock(&self.shared.pending);
        let was_empty = pending.is_empty();
        pending.extend_from_slice(bytes);
        let full = pending.len() >= CAP;
        drop(pending);
        if full {
            self.shared.write_out();
        } else if was_empty {
            self.shared.wake.notify_one();
        }
    }
}

impl<W: Write + Send + 'static> Write for Batched<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.write_line(bytes);
        Ok(bytes.len())
    }

    /// The flusher thread decides when bytes leave.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write + Send + 'static> Drop for Guard<W> {
    fn drop(&mut self) {
        {
            // Under the lock the flusher waits with, so the wake-up cannot slip between its
            // check and its wait.
            let _pending = lock(&self.shared.pending);
            self.shared.stop.store(true, Ordering::SeqCst);
        }
        self.shared.wake.notify_one();
        if let Some(f) = self.flusher.take() {
            let _ = f.join();
        }
        self.shared.write_out();
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
