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

/// Whether standard error may carry colour: a terminal, and `NO_COLOR` unset or empty
/// (<https://no-color.org>). A log file or a journal gets plain text.
pub fn colour_on_stderr() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && io::stderr().is_terminal()
}

/// Logging on standard error: warnings only by default (a retry or a wait is a detail, summed up
/// in the run's report), more with `-v`; `M365SYNC_LOG` overrides the filter. `json` writes one
/// object a line for a log collector.
pub fn init_logging(verbose: u8, format: crate::config::LogFormat) {
    let default = match verbose {
        0 => "warn,sqlx=error,rustls_platform_verifier=off",
        1 => "info,sqlx=warn",
        _ => "debug,sqlx=info,hyper=info,h2=info,reqwest=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("M365SYNC_LOG")
        .unwrap_or_else(|_| default.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_target(false);
    let _ = match format {
        crate::config::LogFormat::Text => builder.with_ansi(colour_on_stderr()).try_init(),
        crate::config::LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_ansi(false)
            .try_init(),
    };
}

/// Rows under a header, in aligned columns: what every list command prints for a person
/// (`--json` is for programs). Widths count characters, so a name with accents lines up.
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row: one cell per header, in order (missing cells are empty).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Prints the header and the rows; the last column is not padded.
    pub fn print(&self) -> io::Result<()> {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().take(columns).enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
            let mut text = String::new();
            for (i, cell) in cells.enumerate().take(columns) {
                if i + 1 == columns {
                    text.push_str(cell);
                } else {
                    text.push_str(cell);
                    let pad = widths[i].saturating_sub(cell.chars().count()) + 2;
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
            text.trim_end().to_string()
        };
        let mut out = stdout();
        writeln!(out, "{}", line(&mut self.header.iter().copied()))?;
        for row in &self.rows {
            let mut cells = row
                .iter()
                .map(String::as_str)
                .chain(std::iter::repeat(""))
                .take(columns);
            writeln!(out, "{}", line(&mut cells))?;
        }
        Ok(())
    }
}
