//! API tokens: the bearer tokens programs present to the REST API, each with a name and a role.
//!
//! A token is 32 bytes from the operating system's random source, written as
//! `m365s_` + base64url. It is shown once, when it is issued; the store keeps only its SHA-256.
//! A fast hash is enough here, unlike for passwords: a token carries 256 bits of chance, so no
//! amount of guessing against a stolen hash can find it, and a slow hash would only slow every
//! API request. Looking a token up by its hash also keeps the comparison out of the program's
//! hands (no timing to measure on a secret).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::OsRng;
use chacha20poly1305::aead::rand_core::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::backend::{Columns, on_pool, write_on_pool};
use crate::error::{Context, Executed, Result, StoreError};
use crate::{Store, now_millis};

/// What every token starts with, so that one pasted in the wrong place is recognised (and
/// secret scanners can find one committed by mistake).
pub const TOKEN_PREFIX: &str = "m365s_";

/// How many characters of a token are kept to tell it apart in a list: the prefix and 4 more.
const SHOWN_CHARS: usize = TOKEN_PREFIX.len() + 4;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiRole {
    /// Read and change everything.
    Admin,
    /// Read everything; change nothing.
    Viewer,
}

impl ApiRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "admin" => Some(Self::Admin),
            "viewer" => Some(Self::Viewer),
            _ => None,
        }
    }
}

impl std::fmt::Display for ApiRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token as kept: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub role: ApiRole,
    /// The token's first characters (`m365s_AbCd`), to tell it apart.
    pub shown: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A token just issued: the only moment its text exists outside the program that holds it.
pub struct IssuedToken {
    pub token: ApiToken,
    /// The bearer token itself; show it once, keep it nowhere.
    pub secret: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// The SHA-256 of a token, as kept.
pub fn token_hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a token's name: what a person types to revoke it.
fn checked_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(StoreError::Conflict(format!(
            "'{}' is not a token name: give 1 to 64 characters, no control characters, e.g. prometheus or backup-script",
            name.escape_debug()
        )));
    }
    Ok(name.to_string())
}

fn token_from(row: &impl Columns) -> Result<ApiToken> {
    let role = row.text_req("role")?;
    Ok(ApiToken {
        id: row.int_req("id")?,
        name: row.text_req("name")?,
        role: ApiRole::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("API token role '{role}'")))?,
        shown: row.text_req("token_prefix")?,
        created_at: row.int_req("created_at")?,
        last_used_at: row.int("last_used_at")?,
        revoked_at: row.int("revoked_at")?,
    })
}

const SELECT_TOKENS: &str =
    "SELECT id, name, token_prefix, role, created_at, last_used_at, revoked_at FROM api_tokens";

/// How often a token's last use is written: at most once a minute per token, so that a busy
/// client does not turn every read into a write.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

impl Store {
    /// Makes a token named `name` with `role`. Refused when a live token has that name.
    pub async fn issue_api_token(&self, name: &str, role: ApiRole) -> Result<IssuedToken> {
        let name = checked_name(name)?;
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        let secret = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        let hash = token_hash(&secret);
        let shown: String = secret.chars().take(SHOWN_CHARS).collect();
        let now = now_millis();
        let inserted: std::result::Result<i64, sqlx::Error> = write_on_pool!(self, |p| {
            sqlx::query_scalar(
                "INSERT INTO api_tokens (name, name_key, token_hash, token_prefix, role, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(name.as_str())
            .bind(name.to_lowercase())
            .bind(hash.as_str())
            .bind(shown.as_str())
            .bind(role.as_str())
            .bind(now)
            .fetch_one(p)
            .await
        });
        let id = match inserted {
            Ok(id) => id,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StoreError::Conflict(format!(
                    "a token named '{name}' exists already; revoke it first (`m365sync token revoke '{name}'`) or choose another name"
                )));
            }
            Err(source) => {
                return Err(StoreError::Database {
                    action: "issuing an API token",
                    source,
                });
            }
        };
        Ok(IssuedToken {
            token: ApiToken {
                id,
                name,
                role,
                shown,
                created_at: now,
                last_used_at: None,
                revoked_at: None,
            },
            secret,
        })
    }

    /// Every token, live and revoked, oldest first.
    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>> {
        on_pool!(&self.pool, |p| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT_TOKENS} ORDER BY id")))
                .fetch_all(p)
                .await
                .doing("listing API tokens")?;
            rows.iter().map(token_from).collect()
        })
    }

    /// The live token whose text is `secret`, its last use noted; `None` for an unknown or
    /// revoked token.
    pub async fn authenticate_api_token(&self, secret: &str) -> Result<Option<ApiToken>> {
        if !secret.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let hash = token_hash(secret);
        let found = on_pool!(&self.pool, |p| {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "{SELECT_TOKENS} WHERE token_hash = $1 AND revoked_at IS NULL"
            )))
            .bind(hash.as_str())
            .fetch_optional(p)
            .await
            .doing("checking an API token")?;
            row.as_ref().map(token_from).transpose()
        })?;
        let Some(mut token) = found else {
            return Ok(None);
        };
        let now = now_millis();
        if token
            .last_used_at
            .is_none_or(|at| now.saturating_sub(at) >= LAST_USED_RESOLUTION_MS)
        {
            write_on_pool!(self, |p| {
                sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(token.id)
                    .execute(p)
                    .await
                    .done("noting an API token's use")
            })?;
            token.last_used_at = Some(now);
        }
        Ok(Some(token))
    }

    /// Revokes the live token named `name` (any case): it is refused from now on, and stays
    /// listed as revoked.
    pub async fn revoke_api_token(&self, name: &str) -> Result<ApiToken> {
        let key = name.trim().to_lowercase();
        let now = now_millis();
        let revoked = write_on_pool!(self, |p| {
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = $1 WHERE name_key = $2 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(key.as_str())
            .execute(p)
            .await
            .done("revoking an API token")
        })?;
        if revoked == 0 {
            return Err(StoreError::NotFound(format!(
                "there is no live token named '{}'; `m365sync token list` shows them",
                name.trim()
            )));
        }
        let tokens = self.api_tokens().await?;
        tokens
            .into_iter()
            .rev()
            .find(|t| t.name.to_lowercase() == key && t.revoked_at == Some(now))
            .ok_or_else(|| StoreError::Corrupt("a revoked API token vanished".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_read_as_written() {
        for role in [ApiRole::Admin, ApiRole::Viewer] {
            assert_eq!(ApiRole::parse(role.as_str()), Some(role));
        }
        assert_eq!(ApiRole::parse(" Viewer "), Some(ApiRole::Viewer));
        assert_eq!(ApiRole::parse("root"), None);
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(checked_name("  prometheus ").unwrap(), "prometheus");
        for bad in ["", "   ", "a\nb", &"x".repeat(65)] {
            assert!(checked_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_hash_is_sha256_in_hex() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
