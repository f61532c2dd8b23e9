//! Standard output for commands' results. Every result goes through [`stdout`], directly or by
//! `out!`, so that a write to a reader that has gone (`m365sync runs | head -1`) comes back as an
//! error rather than the panic of `println!`, and is remembered: `main` then ends quietly with
//! exit code 0, whichever writer (csv, serde_json, a `BufWriter`) wrapped the error on its way up.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static READER_GONE: AtomicBool = AtomicBool::new(false);

/// Writes one line to standard output (as `println!` does) and returns `io::Result<()>`.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!($crate::output::stdout(), $($arg)*)
    }};
}

/// Writes one line to standard error, where notes and errors go. A standard error that is closed
/// or full (a log on a full disk) must not stop the work or panic, so a failure is ignored.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Standard output, locked while the value lives.
pub struct Stdout(io::StdoutLock<'static>);

pub fn stdout() -> Stdout {
    Stdout(io::stdout().lock())
}

/// Whether a write to standard output found its reader gone: nothing more can be said to anyone,
/// and it is not a failure of ours. A broken pipe elsewhere (a socket to Microsoft) does not count.
pub fn reader_gone() -> bool {
    READER_GONE.load(Ordering::Relaxed)
}

fn noted<T>(result: io::Result<T>) -> io::Result<T> {
    if let Err(e) = &result
        && e.kind() == io::ErrorKind::BrokenPipe
    {
        READER_GONE.store(true, Ordering::Relaxed);
    }
    result
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        noted(self.0.write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        noted(self.0.write_all(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        noted(self.0.flush())
    }
}
