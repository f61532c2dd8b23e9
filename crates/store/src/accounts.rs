//! Delegated accounts and the bookings made with them. Owns each account's sealed refresh token
//! and its rotation (the new token replaces the old in one statement that checks the generation
//! read, so that of two concurrent refreshes only one keeps its token), the "needs reconnect"
//! state, the bookings' transaction ids, and the per-mailbox booking lock.

use domain::accounts::{AccountState, RefreshToken};
use serde::Serialize;

use crate::backend::{on_pool, on_tx, write_on_pool};
use crate::error::{Context, Executed, Result, StoreError};
use crate::{Store, now_millis};

/// A connected account, as `account list` shows it. It never carries the token.
#[derive(Debug, Clone, Serialize)]
pub struct DelegatedAccount {
    pub id: i64,
    pub connection_id: i64,
    pub connection_name: String,
    pub tenant_id: String,
    pub object_id: String,
    pub username: String,
    pub display_name: Option<String>,
    pub scopes: Vec<String>,
    pub state: AccountState,
    pub problem: Option<String>,
    pub connected_at: i64,
    pub last_used_at: Option<i64>,
    pub last_refreshed_at: i64,
    #[serde(skip)]
    pub token_generation: i64,
}

/// Who signed in, from the validated id token, and the refresh token they gave.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub connection_id: i64,
    pub tenant_id: String,
    pub object_id: String,
    pub username: String,
    pub display_name: Option<String>,
    pub scopes: Vec<String>,
    pub refresh_token: RefreshToken,
}

/// A booking made through m365sync.
#[derive(Debug, Clone, Serialize)]
pub struct BookingRow {
    pub id: i64,
    pub connection_id: i64,
    pub account_id: Option<i64>,
    pub mailbox: String,
    pub transaction_id: String,
    pub event_id: Option<String>,
    pub subject: String,
    pub start_at: i64,
    pub end_at: i64,
    pub state: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// What was asked (slot, subject, attendees…), as `sync` compares a retry with it.
    #[serde(skip)]
    pub request: Option<String>,
    /// Why the attempt failed, or why its outcome is unknown.
    pub problem: Option<String>,
    /// The mailbox's time zone (IANA) when it was booked.
    pub time_zone: Option<String>,
    /// The connected account that made it, by name; kept when the account is removed (and
    /// `account_id` becomes `None`). `None` for a booking made with the connection's app.
    pub account_username: Option<String>,
}

/// A sign-in sent to Microsoft from the web pages and not yet answered. The nonce and verifier
/// are sealed at rest.
#[derive(Clone)]
pub struct PendingSignInRow {
    pub state: String,
    pub session_hash: String,
    pub connection_id: i64,
    pub tenant: Option<String>,
    pub redirect_uri: String,
    pub reconnecting: Option<i64>,
    pub url: String,
    pub nonce: String,
    pub verifier: String,
    pub started_at: i64,
}

impl std::fmt::Debug for PendingSignInRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSignInRow")
            .field("connection_id", &self.connection_id)
            .field("started_at", &self.started_at)
            .finish_non_exhaustive()
    }
}

fn sign_in_binding(state: &str, what: &str) -> String {
    format!("pending_sign_ins.{what}:{state}")
}

type SignInTuple = (
    String,
    String,
    i64,
    Option<String>,
    String,
    Option<i64>,
    String,
    String,
    String,
    i64,
);

/// A booking about to be written.
#[derive(Debug, Clone)]
pub struct NewBooking<'a> {
    pub connection_id: i64,
    pub account_id: Option<i64>,
    pub mailbox: &'a str,
    pub transaction_id: &'a str,
    pub request: &'a str,
    pub subject: &'a str,
    pub start_at: i64,
    pub end_at: i64,
    pub time_zone: &'a str,
}

fn binding(id: i64) -> String {
    format!("delegated_accounts.refresh_token:{id}")
}

const SELECT_ACCOUNTS: &str = "SELECT a.id, a.connection_id, c.name, a.tenant_id, a.object_id, a.username, a.display_name, a.scopes, a.state, a.problem, a.connected_at, a.last_used_at, a.last_refreshed_at, a.token_generation FROM delegated_accounts a JOIN connections c ON c.id = a.connection_id";

type AccountTuple = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
    i64,
    i64,
);

fn account_from(row: AccountTuple) -> Result<DelegatedAccount> {
    let state = AccountState::parse(&row.8).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "delegated account {} has an unknown state '{}'",
            row.0, row.8
        ))
    })?;
    Ok(DelegatedAccount {
        id: row.0,
        connection_id: row.1,
        connection_name: row.2,
        tenant_id: row.3,
        object_id: row.4,
        username: row.5,
        display_name: row.6,
        scopes: row.7.split_whitespace().map(str::to_string).collect(),
        state,
        problem: row.9,
        connected_at: row.10,
        last_used_at: row.11,
        last_refreshed_at: row.12,
        token_generation: row.13,
    })
}

type BookingTuple = (
    i64,
    i64,
    Option<i64>,
    String,
    String,
    Option<String>,
    String,
    i64,
    i64,
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

const SELECT_BOOKINGS: &str = "SELECT id, connection_id, account_id, mailbox, transaction_id, event_id, subject, start_at, end_at, state, created_at, updated_at, request, problem, time_zone, account_username FROM calendar_bookings";

fn booking_from(r: BookingTuple) -> BookingRow {
    BookingRow {
        id: r.0,
        connection_id: r.1,
        account_id: r.2,
        mailbox: r.3,
        transaction_id: r.4,
        event_id: r.5,
        subject: r.6,
        start_at: r.7,
        end_at: r.8,
        state: r.9,
        created_at: r.10,
        updated_at: r.11,
        request: r.12,
        problem: r.13,
        time_zone: r.14,
        account_username: r.15,
    }
}

impl Store {
    /// Keeps a newly connected account, or, when the same person connects again through the same
    /// connection, replaces its token and makes it active again.
    pub async fn save_account(&self, new: NewAccount) -> Result<DelegatedAccount> {
        let now = now_millis();
        let scopes = new.scopes.join(" ");
        let mut tx = self.begin().await?;
        let existing: Option<i64> = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
            "SELECT id FROM delegated_accounts WHERE connection_id = $1 AND tenant_id = $2 AND object_id = $3"
        )
        .bind(new.connection_id)
        .bind(&new.tenant_id)
        .bind(&new.object_id)
        .fetch_optional(&mut *c)
        .await
        .doing("looking for an account connected before")
        })?;
        let id = match existing {
            Some(id) => id,
            None => on_tx!(&mut tx, |c| {
                sqlx::query_scalar(
                "INSERT INTO delegated_accounts (connection_id, tenant_id, object_id, username, scopes, refresh_token, connected_at, last_refreshed_at) VALUES ($1, $2, $3, $4, $5, '', $6, $6) RETURNING id"
            )
            .bind(new.connection_id)
            .bind(&new.tenant_id)
            .bind(&new.object_id)
            .bind(&new.username)
            .bind(&scopes)
            .bind(now)
            .fetch_one(&mut *c)
            .await
            .doing("saving a connected account")
            })?,
        };
        let sealed = self.cipher.seal(new.refresh_token.expose(), &binding(id))?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
            "UPDATE delegated_accounts SET username = $1, display_name = $2, scopes = $3, refresh_token = $4, token_generation = token_generation + 1, state = 'active', problem = NULL, connected_at = $5, last_refreshed_at = $5 WHERE id = $6"
        )
        .bind(&new.username)
        .bind(&new.display_name)
        .bind(&scopes)
        .bind(&sealed)
        .bind(now)
        .bind(id)
        .execute(&mut *c)
        .await
        .done("saving a connected account's token")
        })?;
        tx.commit().await?;
        self.account_by_id(id).await?.ok_or_else(|| {
            StoreError::NotFound(format!("the account {id} vanished while it was saved"))
        })
    }

    pub async fn accounts(&self) -> Result<Vec<DelegatedAccount>> {
        let sql = format!("{SELECT_ACCOUNTS} ORDER BY c.name, a.username");
        let rows: Vec<AccountTuple> = on_pool!(&self.pool, |p| sqlx::query_as(
            sqlx::AssertSqlSafe(sql.as_str())
        )
        .fetch_all(p)
        .await
        .doing("listing connected accounts"))?;
        rows.into_iter().map(account_from).collect()
    }

    pub async fn account_by_id(&self, id: i64) -> Result<Option<DelegatedAccount>> {
        let sql = format!("{SELECT_ACCOUNTS} WHERE a.id = $1");
        let row: Option<AccountTuple> = on_pool!(&self.pool, |p| sqlx::query_as(
            sqlx::AssertSqlSafe(sql.as_str())
        )
        .bind(id)
        .fetch_optional(p)
        .await
        .doing("reading a connected account"))?;
        row.map(account_from).transpose()
    }

    /// An account by its number or its user name (case-insensitive). A user name connected
    /// through two connections is ambiguous: the error lists the numbers to use instead.
    pub async fn account(&self, key: &str) -> Result<DelegatedAccount> {
        let key = key.trim();
        if let Ok(id) = key.parse::<i64>()
            && let Some(account) = self.account_by_id(id).await?
        {
            return Ok(account);
        }
        let matches: Vec<DelegatedAccount> = self
            .accounts()
            .await?
            .into_iter()
            .filter(|a| a.username.eq_ignore_ascii_case(key))
            .collect();
        match matches.len() {
            1 => Ok(matches
                .into_iter()
                .next()
                .ok_or_else(|| StoreError::NotFound(format!("no connected account '{key}'")))?),
            0 => Err(StoreError::NotFound(format!(
                "there is no connected account '{key}'; `m365sync account list` shows them, `m365sync account connect` adds one"
            ))),
            _ => Err(StoreError::Conflict(format!(
                "'{key}' is connected through several connections (accounts {}); name the account by its number",
                matches
                    .iter()
                    .map(|a| a.id.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// The account's refresh token, unsealed, with the generation it belongs to: pass both back
    /// to `rotate_account_token`.
    pub async fn account_refresh_token(
        &self,
        account: &DelegatedAccount,
    ) -> Result<(RefreshToken, i64)> {
        let row: Option<(String, i64)> = on_pool!(&self.pool, |p| sqlx::query_as(
            "SELECT refresh_token, token_generation FROM delegated_accounts WHERE id = $1"
        )
        .bind(account.id)
        .fetch_optional(p)
        .await
        .doing("reading a connected account's token"))?;
        let (sealed, generation) = row.ok_or_else(|| {
            StoreError::NotFound(format!(
                "the account {} was removed meanwhile",
                account.username
            ))
        })?;
        let plain = self.cipher.open(&sealed, &binding(account.id))?;
        let token = RefreshToken::new(plain).map_err(|_| {
            StoreError::Corrupt(format!(
                "the stored token of account {} is empty",
                account.username
            ))
        })?;
        Ok((token, generation))
    }

    /// Replaces the refresh token read at `generation` by the one a refresh returned. Returns
    /// false, changing nothing, when another refresh rotated it first.
    pub async fn rotate_account_token(
        &self,
        account_id: i64,
        generation: i64,
        token: &RefreshToken,
        now: i64,
    ) -> Result<bool> {
        let sealed = self.cipher.seal(token.expose(), &binding(account_id))?;
        let changed = write_on_pool!(self, |p| {
            sqlx::query(
            "UPDATE delegated_accounts SET refresh_token = $1, token_generation = token_generation + 1, last_refreshed_at = $2, state = 'active', problem = NULL WHERE id = $3 AND token_generation = $4"
        )
        .bind(&sealed)
        .bind(now)
        .bind(account_id)
        .bind(generation)
        .execute(p)
        .await
        .done("rotating a connected account's token")
        })?;
        Ok(changed == 1)
    }

    pub async fn mark_account_used(&self, account_id: i64, now: i64) -> Result<()> {
        write_on_pool!(self, |p| sqlx::query(
            "UPDATE delegated_accounts SET last_used_at = $1 WHERE id = $2"
        )
        .bind(now)
        .bind(account_id)
        .execute(p)
        .await
        .done("keeping when an account was used"))?;
        Ok(())
    }

    /// Turns an account to "needs reconnect" with why, in words and with the fix. The token is
    /// kept until the account is removed or reconnected: it is useless now, but removing it is
    /// the person's choice.
    pub async fn mark_account_needs_reconnect(&self, account_id: i64, problem: &str) -> Result<()> {
        write_on_pool!(self, |p| sqlx::query(
            "UPDATE delegated_accounts SET state = 'needs_reconnect', problem = $1 WHERE id = $2"
        )
        .bind(problem)
        .bind(account_id)
        .execute(p)
        .await
        .done("marking an account as needing to reconnect"))?;
        Ok(())
    }

    /// Removes an account and its tokens. Its bookings stay, without it.
    pub async fn remove_account(&self, account_id: i64) -> Result<()> {
        let removed = write_on_pool!(self, |p| sqlx::query(
            "DELETE FROM delegated_accounts WHERE id = $1"
        )
        .bind(account_id)
        .execute(p)
        .await
        .done("removing a connected account"))?;
        if removed == 0 {
            return Err(StoreError::NotFound(format!(
                "there is no connected account {account_id}"
            )));
        }
        Ok(())
    }

    /// Records a booking about to be written, or returns the one already recorded under the
    /// same transaction id (a retry, which the caller compares with what it asks now).
    pub async fn begin_booking(&self, new: &NewBooking<'_>) -> Result<BookingRow> {
        if let Some(existing) = self.booking_by_transaction(new.transaction_id).await? {
            return Ok(existing);
        }
        let now = now_millis();
        write_on_pool!(self, |p| {
            sqlx::query(
            "INSERT INTO calendar_bookings (connection_id, account_id, mailbox, transaction_id, subject, start_at, end_at, state, created_at, updated_at, request, time_zone, account_username) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $8, $9, $10, (SELECT username FROM delegated_accounts WHERE id = $2))"
        )
        .bind(new.connection_id)
        .bind(new.account_id)
        .bind(new.mailbox.to_ascii_lowercase())
        .bind(new.transaction_id)
        .bind(new.subject)
        .bind(new.start_at)
        .bind(new.end_at)
        .bind(now)
        .bind(new.request)
        .bind(new.time_zone)
        .execute(p)
        .await
        .done("recording a booking")
        })?;
        self.booking_by_transaction(new.transaction_id)
            .await?
            .ok_or_else(|| StoreError::NotFound("the booking vanished while it was saved".into()))
    }

    /// Gives a failed booking's transaction id to a new attempt: the row takes what is asked now
    /// and is pending again. False when it is no longer failed (another attempt took it first).
    pub async fn restart_failed_booking(&self, id: i64, new: &NewBooking<'_>) -> Result<bool> {
        let changed = write_on_pool!(self, |p| {
            sqlx::query(
            "UPDATE calendar_bookings SET connection_id = $1, account_id = $2, account_username = (SELECT username FROM delegated_accounts WHERE id = $2), mailbox = $3, subject = $4, start_at = $5, end_at = $6, request = $7, time_zone = $8, state = 'pending', problem = NULL, updated_at = $9 WHERE id = $10 AND state = 'failed'"
        )
        .bind(new.connection_id)
        .bind(new.account_id)
        .bind(new.mailbox.to_ascii_lowercase())
        .bind(new.subject)
        .bind(new.start_at)
        .bind(new.end_at)
        .bind(new.request)
        .bind(new.time_zone)
        .bind(now_millis())
        .bind(id)
        .execute(p)
        .await
        .done("restarting a failed booking")
        })?;
        Ok(changed == 1)
    }

    /// Keeps why a booking attempt did not book: `failed` when nothing was written to Outlook,
    /// `pending` when Microsoft's answer was lost and the event may exist.
    pub async fn booking_problem(&self, id: i64, state: &str, problem: &str) -> Result<()> {
        write_on_pool!(self, |p| {
            sqlx::query(
                "UPDATE calendar_bookings SET state = $1, problem = $2, updated_at = $3 WHERE id = $4",
            )
            .bind(state)
            .bind(problem)
            .bind(now_millis())
            .bind(id)
            .execute(p)
            .await
            .done("recording why a booking failed")
        })?;
        Ok(())
    }

    pub async fn booking_by_transaction(&self, transaction_id: &str) -> Result<Option<BookingRow>> {
        let sql = format!("{SELECT_BOOKINGS} WHERE transaction_id = $1");
        let row: Option<BookingTuple> = on_pool!(&self.pool, |p| sqlx::query_as(
            sqlx::AssertSqlSafe(sql.as_str())
        )
        .bind(transaction_id)
        .fetch_optional(p)
        .await
        .doing("reading a booking"))?;
        Ok(row.map(booking_from))
    }

    pub async fn booking(&self, id: i64) -> Result<BookingRow> {
        let sql = format!("{SELECT_BOOKINGS} WHERE id = $1");
        let row: Option<BookingTuple> = on_pool!(&self.pool, |p| sqlx::query_as(
            sqlx::AssertSqlSafe(sql.as_str())
        )
        .bind(id)
        .fetch_optional(p)
        .await
        .doing("reading a booking"))?;
        row.map(booking_from)
            .ok_or_else(|| StoreError::NotFound(format!("there is no booking {id}")))
    }

    pub async fn bookings(&self) -> Result<Vec<BookingRow>> {
        let sql = format!("{SELECT_BOOKINGS} ORDER BY start_at, id");
        let rows: Vec<BookingTuple> = on_pool!(&self.pool, |p| sqlx::query_as(
            sqlx::AssertSqlSafe(sql.as_str())
        )
        .fetch_all(p)
        .await
        .doing("listing bookings"))?;
        Ok(rows.into_iter().map(booking_from).collect())
    }

    /// Sets a booking's state (`booked`, `cancelled`, `failed`), its event id and times.
    pub async fn update_booking(
        &self,
        id: i64,
        state: &str,
        event_id: Option<&str>,
        start_at: i64,
        end_at: i64,
    ) -> Result<()> {
        write_on_pool!(self, |p| {
            sqlx::query(
            "UPDATE calendar_bookings SET state = $1, event_id = COALESCE($2, event_id), start_at = $3, end_at = $4, updated_at = $5, problem = NULL WHERE id = $6"
        )
        .bind(state)
        .bind(event_id)
        .bind(start_at)
        .bind(end_at)
        .bind(now_millis())
        .bind(id)
        .execute(p)
        .await
        .done("updating a booking")
        })?;
        Ok(())
    }

    /// Takes the booking lock of `mailbox` for `holder` until `until`, if it is free or lapsed.
    pub async fn lock_mailbox(
        &self,
        mailbox: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool> {
        let mailbox = mailbox.to_ascii_lowercase();
        let mut tx = self.begin().await?;
        let taken = on_tx!(&mut tx, |c| {
            sqlx::query(
            "INSERT INTO calendar_locks (mailbox, holder, until_at) VALUES ($1, $2, $3) ON CONFLICT (mailbox) DO UPDATE SET holder = excluded.holder, until_at = excluded.until_at WHERE calendar_locks.until_at < $4 OR calendar_locks.holder = $2"
        )
        .bind(&mailbox)
        .bind(holder)
        .bind(until)
        .bind(now)
        .execute(&mut *c)
        .await
        .done("taking a mailbox's booking lock")
        })?;
        tx.commit().await?;
        Ok(taken == 1)
    }

    pub async fn unlock_mailbox(&self, mailbox: &str, holder: &str) -> Result<()> {
        write_on_pool!(self, |p| sqlx::query(
            "DELETE FROM calendar_locks WHERE mailbox = $1 AND holder = $2"
        )
        .bind(mailbox.to_ascii_lowercase())
        .bind(holder)
        .execute(p)
        .await
        .done("releasing a mailbox's booking lock"))?;
        Ok(())
    }

    /// Keeps a sign-in waiting for Microsoft's answer. Sign-ins started before `oldest_kept` are
    /// dropped first, and beyond `most_waiting` the oldest ones, so that a flood of started
    /// sign-ins cannot grow the table without end.
    pub async fn save_pending_sign_in(
        &self,
        row: &PendingSignInRow,
        oldest_kept: i64,
        most_waiting: i64,
    ) -> Result<()> {
        let nonce = self
            .cipher
            .seal(&row.nonce, &sign_in_binding(&row.state, "nonce"))?;
        let verifier = self
            .cipher
            .seal(&row.verifier, &sign_in_binding(&row.state, "verifier"))?;
        let mut tx = self.begin().await?;
        on_tx!(&mut tx, |c| {
            sqlx::query("DELETE FROM pending_sign_ins WHERE started_at < $1")
                .bind(oldest_kept)
                .execute(&mut *c)
                .await
                .done("dropping sign-ins left too long")
        })?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
            "DELETE FROM pending_sign_ins WHERE started_at < (SELECT started_at FROM pending_sign_ins ORDER BY started_at DESC LIMIT 1 OFFSET $1)"
        )
            // Room for the one about to be kept: the newest `most_waiting - 1` stay.
            .bind((most_waiting - 2).max(0))
            .execute(&mut *c)
            .await
            .done("dropping the oldest waiting sign-ins")
        })?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
            "INSERT INTO pending_sign_ins (state, session_hash, connection_id, tenant, redirect_uri, reconnecting, url, nonce, verifier, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )
            .bind(&row.state)
            .bind(&row.session_hash)
            .bind(row.connection_id)
            .bind(&row.tenant)
            .bind(&row.redirect_uri)
            .bind(row.reconnecting)
            .bind(&row.url)
            .bind(&nonce)
            .bind(&verifier)
            .bind(row.started_at)
            .execute(&mut *c)
            .await
            .done("keeping a sign-in in progress")
        })?;
        tx.commit().await?;
        Ok(())
    }

    /// The sign-in waiting under `state`, if any (it stays waiting).
    pub async fn pending_sign_in(&self, state: &str) -> Result<Option<PendingSignInRow>> {
        let row: Option<SignInTuple> = on_pool!(&self.pool, |p| {
            sqlx::query_as(
            "SELECT state, session_hash, connection_id, tenant, redirect_uri, reconnecting, url, nonce, verifier, started_at FROM pending_sign_ins WHERE state = $1"
        )
        .bind(state)
        .fetch_optional(p)
        .await
        .doing("reading a sign-in in progress")
        })?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(PendingSignInRow {
            nonce: self.cipher.open(&r.7, &sign_in_binding(&r.0, "nonce"))?,
            verifier: self.cipher.open(&r.8, &sign_in_binding(&r.0, "verifier"))?,
            state: r.0,
            session_hash: r.1,
            connection_id: r.2,
            tenant: r.3,
            redirect_uri: r.4,
            reconnecting: r.5,
            url: r.6,
            started_at: r.9,
        }))
    }

    /// Takes the sign-in waiting under `state`: true for the one call that removed it, so that
    /// of two answers (two servers, a replay) only one is used.
    pub async fn take_pending_sign_in(&self, state: &str) -> Result<bool> {
        let removed = write_on_pool!(self, |p| sqlx::query(
            "DELETE FROM pending_sign_ins WHERE state = $1"
        )
        .bind(state)
        .execute(p)
        .await
        .done("taking a sign-in in progress"))?;
        Ok(removed == 1)
    }
}
