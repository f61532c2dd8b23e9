//! What can go wrong in the store, each with what to do about it.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database could not be opened at {location}: {source}. {fix}")]
    Open {
        location: String,
        fix: String,
        source: sqlx::Error,
    },

    #[error("database error while {action}: {source}{}", advice(source))]
    Database {
        action: &'static str,
        source: sqlx::Error,
    },

    #[error("{0}")]
    Location(String),

    #[error("{0}")]
    Conflict(String),

    #[error("{0}")]
    NotFound(String),

    #[error("{0}")]
    Secret(String),

    #[error("stored data is not readable ({0}); it was not changed")]
    Corrupt(String),

    #[error(
        "the store stayed busy ({0}): wait for the write going on to finish, then run the command again"
    )]
    Busy(String),

    #[error(
        "run {run_id} is no longer this worker's: its lease expired and the run was closed or taken over, so nothing more is written for it"
    )]
    LeaseLost { run_id: i64 },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// Whether the store ran out of room (a full disk, or a SQLite size ceiling).
    pub fn is_full(&self) -> bool {
        let source = match self {
            Self::Database { source, .. } | Self::Open { source, .. } => source,
            _ => return false,
        };
        matches!(kind_of(source), Some(Kind::Full | Kind::Io))
    }
}

enum Kind {
    Full,
    /// SQLite's I/O error, which a full disk also gives where a file cannot grow.
    Io,
    Busy,
    NoConnection,
    BadText,
}

fn kind_of(error: &sqlx::Error) -> Option<Kind> {
    let database = error.as_database_error()?;
    let code = database.code()?;
    // SQLite reports extended result codes (the primary code is the low byte); PostgreSQL
    // reports SQLSTATEs, some of which are all digits too: tell them apart by the driver.
    if database
        .try_downcast_ref::<sqlx::sqlite::SqliteError>()
        .is_some()
    {
        return match code.parse::<i64>().ok()? & 0xff {
            13 => Some(Kind::Full),
            10 => Some(Kind::Io),
            5 | 6 => Some(Kind::Busy),
            _ => None,
        };
    }
    match code.as_ref() {
        "53100" => Some(Kind::Full),
        "53300" => Some(Kind::NoConnection),
        "22021" | "22P05" => Some(Kind::BadText),
        _ => None,
    }
}

/// What to do when a store cannot be opened because of the disk, if that is why.
pub(crate) fn open_advice(error: &sqlx::Error) -> Option<&'static str> {
    matches!(kind_of(error), Some(Kind::Full | Kind::Io))
        .then(|| advice(error).trim_start_matches(". "))
}

/// What to do about the database errors a person can act on.
fn advice(error: &sqlx::Error) -> &'static str {
    match kind_of(error) {
        Some(Kind::Full) => {
            ". The disk that holds the store is full: free space there (old backups, logs) or move the store, then run the command again; what was stored before is intact"
        }
        Some(Kind::Io) => {
            ". The disk that holds the store failed a read or write; it may be full: free space there (old backups, logs) and check the disk, then run the command again"
        }
        Some(Kind::Busy) => {
            ". Another process kept the store locked for too long: wait for it to finish, or stop it, then run the command again"
        }
        Some(Kind::NoConnection) => {
            ". PostgreSQL has no free connection: stop idle clients or raise its max_connections"
        }
        Some(Kind::BadText) => {
            ". A text value held a character the database cannot store; report it with the run's log"
        }
        None => "",
    }
}

/// Names the action a database call was doing, for the error message.
pub(crate) trait Context<T> {
    fn doing(self, action: &'static str) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, sqlx::Error> {
    fn doing(self, action: &'static str) -> Result<T> {
        self.map_err(|source| StoreError::Database { action, source })
    }
}

/// Turns either backend's query result into the number of rows it touched.
pub(crate) trait Executed {
    fn done(self, action: &'static str) -> Result<u64>;
}

impl Executed for std::result::Result<sqlx::sqlite::SqliteQueryResult, sqlx::Error> {
    fn done(self, action: &'static str) -> Result<u64> {
        self.map(|r| r.rows_affected()).doing(action)
    }
}

impl Executed for std::result::Result<sqlx::postgres::PgQueryResult, sqlx::Error> {
    fn done(self, action: &'static str) -> Result<u64> {
        self.map(|r| r.rows_affected()).doing(action)
    }
}
