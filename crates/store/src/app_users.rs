//! The people who log in to the web pages, their sessions and the one-time set-up link.
//!
//! The store keeps only what cannot let anyone in if read: a password as the PHC string its
//! caller hashed, a session or set-up token as its SHA-256. It keeps one rule of its own, because
//! only a transaction can keep it: there is always an admin once there has been one.

use serde::Serialize;

use crate::Store;
use crate::backend::{Tx, on_pool, on_tx, write_on_pool};
use crate::error::{Context, Executed, Result, StoreError};
use crate::now_millis;

/// What a person may do in the web pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppRole {
    /// Reads everything, changes everything: connections, matching, runs and the people.
    Admin,
    /// Reads every page and changes nothing.
    Viewer,
}

impl AppRole {
    pub fn as_str(self) -> &'static str {
        match self {
            AppRole::Admin => "admin",
            AppRole::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "admin" => Some(AppRole::Admin),
            "viewer" => Some(AppRole::Viewer),
            _ => None,
        }
    }
}

impl std::fmt::Display for AppRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person who may log in (never with the password hash: see [`Store::app_user_credentials`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppUser {
    pub id: i64,
    pub name: String,
    pub role: AppRole,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

/// A live session: who it is, and the token its forms must carry.
#[derive(Clone, PartialEq, Eq)]
pub struct AppSession {
    pub user: AppUser,
    pub csrf_token: String,
}

impl std::fmt::Debug for AppSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSession")
            .field("user", &self.user)
            .field("csrf_token", &"(redacted)")
            .finish()
    }
}

/// When a new session ends.
#[derive(Debug, Clone, Copy)]
pub struct SessionTimes {
    /// Ends this long after its last use (milliseconds).
    pub idle_millis: i64,
    /// Ends this long after it began, however it is used (milliseconds).
    pub absolute_millis: i64,
}

/// The name a user is found by, whichever way it was typed: trimmed, in Unicode NFC (one
/// spelling of "ï", precomposed or with a combining mark) and in lower case.
fn name_key(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.trim().nfc().collect::<String>().to_lowercase()
}

fn role_from(text: &str) -> Result<AppRole> {
    AppRole::parse(text).ok_or_else(|| StoreError::Corrupt(format!("unknown role '{text}'")))
}

macro_rules! user_from {
    ($row:expr) => {{
        use sqlx::Row as _;
        let row = $row;
        AppUser {
            id: row.try_get("id").doing("reading a user")?,
            name: row.try_get("name").doing("reading a user")?,
            role: role_from(&row.try_get::<String, _>("role").doing("reading a user")?)?,
            created_at: row.try_get("created_at").doing("reading a user")?,
            last_login_at: row.try_get("last_login_at").doing("reading a user")?,
        }
    }};
}

macro_rules! select_users {
    ($tail:literal) => {
        concat!(
            "SELECT id, name, role, created_at, last_login_at, password_hash FROM app_users",
            $tail
        )
    };
}

impl Store {
    /// Adds a person. `password_hash` is a PHC string the caller made; a name already taken
    /// (whatever its case) is refused.
    pub async fn create_app_user(
        &self,
        name: &str,
        password_hash: &str,
        role: AppRole,
    ) -> Result<AppUser> {
        let mut tx = self.begin().await?;
        let user = insert_user(&mut tx, name, password_hash, role).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Everyone who may log in, by name.
    pub async fn app_users(&self) -> Result<Vec<AppUser>> {
        on_pool!(&self.pool, |p| {
            let rows = sqlx::query(select_users!(" ORDER BY name_key"))
                .fetch_all(p)
                .await
                .doing("listing users")?;
            rows.iter()
                .map(|row| Ok(user_from!(row)))
                .collect::<Result<Vec<_>>>()
        })
    }

    /// How many admins there are: none means the set-up link is still needed.
    pub async fn admin_count(&self) -> Result<i64> {
        on_pool!(&self.pool, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM app_users WHERE role = 'admin'"
        )
        .fetch_one(p)
        .await
        .doing("counting admins"))
    }

    /// The person with this name (any case) and their password hash, for checking a login.
    pub async fn app_user_credentials(&self, name: &str) -> Result<Option<(AppUser, String)>> {
        on_pool!(&self.pool, |p| {
            let row = sqlx::query(select_users!(" WHERE name_key = $1"))
                .bind(name_key(name))
                .fetch_optional(p)
                .await
                .doing("reading a user")?;
            match row {
                None => Ok(None),
                Some(row) => {
                    use sqlx::Row as _;
                    let hash: String = row.try_get("password_hash").doing("reading a user")?;
                    Ok(Some((user_from!(&row), hash)))
                }
            }
        })
    }

    /// Replaces a password; every session of that person ends.
    pub async fn set_app_user_password(&self, user_id: i64, password_hash: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        let changed = on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE app_users SET password_hash = $1, updated_at = $2 WHERE id = $3"
        )
        .bind(password_hash)
        .bind(now_millis())
        .bind(user_id)
        .execute(c)
        .await
        .done("changing a password"))?;
        if changed == 0 {
            return Err(no_user(user_id));
        }
        end_sessions_of(&mut tx, user_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Changes a person's role. The last admin stays an admin. Their sessions end, so that the
    /// new role holds from their next page on.
    pub async fn set_app_user_role(&self, user_id: i64, role: AppRole) -> Result<AppUser> {
        let mut tx = self.begin().await?;
        let user = user_in(&mut tx, user_id).await?;
        if user.role == AppRole::Admin && role != AppRole::Admin {
            keep_an_admin(&mut tx, &user).await?;
        }
        on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE app_users SET role = $1, updated_at = $2 WHERE id = $3"
        )
        .bind(role.as_str())
        .bind(now_millis())
        .bind(user_id)
        .execute(c)
        .await
        .done("changing a role"))?;
        if user.role != role {
            end_sessions_of(&mut tx, user_id).await?;
        }
        tx.commit().await?;
        Ok(AppUser { role, ..user })
    }

    /// Removes a person and their sessions. The last admin cannot be removed.
    pub async fn remove_app_user(&self, user_id: i64) -> Result<AppUser> {
        let mut tx = self.begin().await?;
        let user = user_in(&mut tx, user_id).await?;
        if user.role == AppRole::Admin {
            keep_an_admin(&mut tx, &user).await?;
        }
        on_tx!(&mut tx, |c| sqlx::query(
            "DELETE FROM app_users WHERE id = $1"
        )
        .bind(user_id)
        .execute(c)
        .await
        .done("removing a user"))?;
        tx.commit().await?;
        Ok(user)
    }

    /// Starts a session for a person who just proved who they are.
    pub async fn create_app_session(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf_token: &str,
        times: SessionTimes,
    ) -> Result<()> {
        let now = now_millis();
        write_on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO app_sessions (token_hash, user_id, csrf_token, created_at, last_seen_at, idle_expires_at, expires_at) VALUES ($1, $2, $3, $4, $4, $5, $6)",
            )
            .bind(token_hash)
            .bind(user_id)
            .bind(csrf_token)
            .bind(now)
            .bind(now + times.idle_millis)
            .bind(now + times.absolute_millis)
            .execute(p)
            .await
            .done("starting a session")?;
            sqlx::query("UPDATE app_users SET last_login_at = $1 WHERE id = $2")
                .bind(now)
                .bind(user_id)
                .execute(p)
                .await
                .done("keeping when a user logged in")
        })?;
        // Expired sessions are dropped as new ones start, so the table stays small.
        write_on_pool!(self, |p| sqlx::query(
            "DELETE FROM app_sessions WHERE expires_at <= $1 OR idle_expires_at <= $1"
        )
        .bind(now)
        .execute(p)
        .await
        .done("dropping expired sessions"))?;
        Ok(())
    }

    /// The live session with this token, its idle time renewed; `None` when there is none or it
    /// has expired.
    pub async fn app_session(
        &self,
        token_hash: &str,
        idle_millis: i64,
    ) -> Result<Option<AppSession>> {
        let now = now_millis();
        let found = on_pool!(&self.pool, |p| {
            let row = sqlx::query(
                "SELECT u.id, u.name, u.role, u.created_at, u.last_login_at, s.csrf_token, s.last_seen_at FROM app_sessions s JOIN app_users u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.idle_expires_at > $2",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(p)
            .await
            .doing("reading a session")?;
            match row {
                None => Ok::<_, StoreError>(None),
                Some(row) => {
                    use sqlx::Row as _;
                    let csrf_token: String =
                        row.try_get("csrf_token").doing("reading a session")?;
                    let seen: i64 = row.try_get("last_seen_at").doing("reading a session")?;
                    Ok(Some((user_from!(&row), csrf_token, seen)))
                }
            }
        })?;
        let Some((user, csrf_token, seen)) = found else {
            return Ok(None);
        };
        // Renewed at most once a minute: a page with many requests writes once.
        if now - seen > 60_000 {
            write_on_pool!(self, |p| {
                sqlx::query(
                "UPDATE app_sessions SET last_seen_at = $1, idle_expires_at = $2 WHERE token_hash = $3"
            )
            .bind(now)
            .bind(now + idle_millis)
            .bind(token_hash)
            .execute(p)
            .await
            .done("renewing a session")
            })?;
        }
        Ok(Some(AppSession { user, csrf_token }))
    }

    /// Ends a session (logging out).
    pub async fn end_app_session(&self, token_hash: &str) -> Result<()> {
        write_on_pool!(self, |p| sqlx::query(
            "DELETE FROM app_sessions WHERE token_hash = $1"
        )
        .bind(token_hash)
        .execute(p)
        .await
        .done("ending a session"))?;
        Ok(())
    }

    /// Keeps a one-time set-up link's token (as its hash) until `expires_at`.
    pub async fn create_setup_token(&self, token_hash: &str, expires_at: i64) -> Result<()> {
        write_on_pool!(self, |p| sqlx::query(
            "INSERT INTO app_setup_tokens (token_hash, created_at, expires_at) VALUES ($1, $2, $3)"
        )
        .bind(token_hash)
        .bind(now_millis())
        .bind(expires_at)
        .execute(p)
        .await
        .done("keeping a set-up link"))?;
        Ok(())
    }

    /// Whether a set-up token is unused and unexpired, and there is still no admin.
    pub async fn setup_token_usable(&self, token_hash: &str) -> Result<bool> {
        let found: i64 = on_pool!(&self.pool, |p| {
            sqlx::query_scalar(
            "SELECT COUNT(*) FROM app_setup_tokens WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2"
        )
        .bind(token_hash)
        .bind(now_millis())
        .fetch_one(p)
        .await
        .doing("reading a set-up link")
        })?;
        Ok(found > 0 && self.admin_count().await? == 0)
    }

    /// Makes the first admin through a set-up link, in one transaction: the link is used up, and
    /// refused if it was used, has expired, or an admin exists by now.
    pub async fn create_first_admin(
        &self,
        token_hash: &str,
        name: &str,
        password_hash: &str,
    ) -> Result<AppUser> {
        let now = now_millis();
        let mut tx = self.begin().await?;
        let used = on_tx!(&mut tx, |c| {
            sqlx::query(
            "UPDATE app_setup_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1"
        )
        .bind(now)
        .bind(token_hash)
        .execute(c)
        .await
        .done("using a set-up link")
        })?;
        if used == 0 {
            return Err(StoreError::Conflict(
                "this set-up link was used already or has expired; restart `m365sync serve` for a new one, or run `m365sync admin create NAME`".into(),
            ));
        }
        let admins: i64 = on_tx!(&mut tx, |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM app_users WHERE role = 'admin'"
        )
        .fetch_one(c)
        .await
        .doing("counting admins"))?;
        if admins > 0 {
            return Err(StoreError::Conflict(
                "an admin exists already, so set-up links no longer work; log in, or ask an admin to add you".into(),
            ));
        }
        let user = insert_user(&mut tx, name, password_hash, AppRole::Admin).await?;
        tx.commit().await?;
        Ok(user)
    }
}

async fn insert_user(
    tx: &mut Tx,
    name: &str,
    password_hash: &str,
    role: AppRole,
) -> Result<AppUser> {
    let key = name_key(name);
    let taken: i64 = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM app_users WHERE name_key = $1"
    )
    .bind(&key)
    .fetch_one(c)
    .await
    .doing("checking a user name"))?;
    if taken > 0 {
        return Err(StoreError::Conflict(format!(
            "a user named '{}' exists already; choose another name, or change that user's password or role",
            name.trim()
        )));
    }
    let now = now_millis();
    let id: i64 = on_tx!(tx, |c| {
        sqlx::query_scalar(
        "INSERT INTO app_users (name, name_key, password_hash, role, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING id"
    )
    .bind(name.trim())
    .bind(&key)
    .bind(password_hash)
    .bind(role.as_str())
    .bind(now)
    .fetch_one(c)
    .await
    .doing("adding a user")
    })?;
    Ok(AppUser {
        id,
        name: name.trim().to_string(),
        role,
        created_at: now,
        last_login_at: None,
    })
}

async fn user_in(tx: &mut Tx, user_id: i64) -> Result<AppUser> {
    on_tx!(tx, |c| {
        let row = sqlx::query(select_users!(" WHERE id = $1"))
            .bind(user_id)
            .fetch_optional(c)
            .await
            .doing("reading a user")?;
        match row {
            None => Err(no_user(user_id)),
            Some(row) => Ok(user_from!(&row)),
        }
    })
}

async fn keep_an_admin(tx: &mut Tx, user: &AppUser) -> Result<()> {
    let others: i64 = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM app_users WHERE role = 'admin' AND id <> $1"
    )
    .bind(user.id)
    .fetch_one(c)
    .await
    .doing("counting admins"))?;
    if others == 0 {
        return Err(StoreError::Conflict(format!(
            "'{}' is the only admin; make another person admin first, so that someone can still manage m365sync",
            user.name
        )));
    }
    Ok(())
}

async fn end_sessions_of(tx: &mut Tx, user_id: i64) -> Result<()> {
    on_tx!(tx, |c| sqlx::query(
        "DELETE FROM app_sessions WHERE user_id = $1"
    )
    .bind(user_id)
    .execute(c)
    .await
    .done("ending a user's sessions"))?;
    Ok(())
}

fn no_user(user_id: i64) -> StoreError {
    StoreError::NotFound(format!(
        "there is no user {user_id}; `m365sync admin list` lists them"
    ))
}
