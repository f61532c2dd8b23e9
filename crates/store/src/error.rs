//! What can go wrong in the store, each with what to do about it.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database could not be opened at {location}: {source}. {fix}")]
    Open {
        location: String,
        fix: String,
        source: sqlx::Error,
    },

    #[error("database error while {action}: {source}")]
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
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

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
