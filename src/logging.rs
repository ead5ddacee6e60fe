//! Log output: while `logging.redact` is on (the default), every log line passes the secret
//! redactor before it reaches stderr or the TUI's log file.
//!
//! The switch is process-wide because logging is: `main` installs the writer before the
//! configuration is read (lines until then are redacted), and the engine sets the switch
//! from each configuration it loads, so `logging.redact = false` takes effect at start and
//! on every reload.

use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

use tracing_subscriber::fmt::MakeWriter;

use crate::secrets::{self, redact};

static REDACT: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(true)));

/// Install the process's logger: `verbose` 0 warn, 1 info, 2 debug, more trace (`RUST_LOG`
/// wins); to `file` (created 0600 in a 0700 directory) or else stderr; every line through
/// [`Redacting`].
pub fn init(verbose: u8, file: Option<&Path>, ansi: bool) -> io::Result<()> {
    use crate::platform::create_mode;
    use tracing_subscriber::EnvFilter;
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let installed = match file {
        Some(path) => {
            if let Some(dir) = path.parent() {
                crate::files::create_private_dir_all(dir)?;
            }
            let file = create_mode(std::fs::OpenOptions::new().create(true).append(true), 0o600)
                .open(path)?;
            builder
                .with_ansi(false)
                .with_writer(Redacting::new(std::sync::Mutex::new(file)))
                .try_init()
        }
        None => builder
            .with_ansi(ansi)
            .with_writer(Redacting::new(std::io::stderr))
            .try_init(),
    };
    installed.map_err(io::Error::other)
}

/// Turn log redaction on or off for the whole process (`logging.redact`).
pub fn set_redact(on: bool) {
    REDACT.store(on, Ordering::SeqCst);
}

/// Whether log lines are redacted now.
pub fn redacts() -> bool {
    REDACT.load(Ordering::SeqCst)
}

/// A log line as it may be written: the secret shapes of the SafetyLayer
/// ([`redact::redact`]) and, as in fix diffs, literal values of secret-named keys and
/// passwords and query values in URLs ([`secrets::redact_assignments`]).
pub fn redact_line(line: &str) -> String {
    secrets::redact_assignments(&redact::redact(line))
}

/// A `MakeWriter` that redacts each log event as a whole before the inner writer sees it.
pub struct Redacting<M> {
    inner: M,
    switch: Arc<AtomicBool>,
}

impl<M> Redacting<M> {
    /// Following [`set_redact`].
    pub fn new(inner: M) -> Self {
        Self {
            inner,
            switch: REDACT.clone(),
        }
    }

    /// Following its own switch (tests).
    pub fn with_switch(inner: M, switch: Arc<AtomicBool>) -> Self {
        Self { inner, switch }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = Event<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        Event {
            inner: self.inner.make_writer(),
            buf: Vec::new(),
            redact: self.switch.load(Ordering::SeqCst),
        }
    }
}

/// One event's writer: with redaction on, the event is collected and written redacted when
/// the formatter drops it, so a secret split over several writes is still one text.
pub struct Event<W: Write> {
    inner: W,
    buf: Vec<u8>,
    redact: bool,
}

impl<W: Write> Write for Event<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.redact {
            self.buf.extend_from_slice(bytes);
            Ok(bytes.len())
        } else {
            self.inner.write(bytes)
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.redact {
            // The line is written whole on drop.
            Ok(())
        } else {
            self.inner.flush()
        }
    }
}

impl<W: Write> Drop for Event<W> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let shown = redact_line(&String::from_utf8_lossy(&self.buf));
        // A log line that cannot be written has nowhere else to go.
        let _ = self.inner.write_all(shown.as_bytes());
        let _ = self.inner.flush();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn logged(on: bool) -> String {
        let capture = Capture::default();
        let sink = capture.clone();
        let switch = Arc::new(AtomicBool::new(on));
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(Redacting::with_switch(move || sink.clone(), switch))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(
                detail = "AKIAABCDEFGHIJKLMNOP",
                "provider said: token ghp_abcdefghijklmnopqrstuvwxyz0123456789 and \
                 https://bob:hunter2@example.com/?api_key=zzQUERYzz"
            );
        });
        let bytes = capture.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn lines_are_redacted_when_on_and_untouched_when_off() {
        let on = logged(true);
        for secret in ["ghp_", "AKIAABCD", "hunter2", "zzQUERYzz"] {
            assert!(!on.contains(secret), "{secret} in: {on}");
        }
        assert!(on.contains("[REDACTED:github_token]"), "{on}");
        assert!(on.contains("[REDACTED:aws_access_key]"), "{on}");
        assert!(on.ends_with('\n'), "one whole line: {on:?}");
        let off = logged(false);
        assert!(
            off.contains("ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
            "{off}"
        );
        assert!(off.contains("hunter2"), "{off}");
    }
}
