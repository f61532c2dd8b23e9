//! Delegated accounts: a person's own Microsoft 365 account connected by OAuth, the health of
//! its refresh token, and when it must be refreshed so that Microsoft's inactivity limit never
//! lapses unseen.

use std::fmt;

use serde::Serialize;

use crate::InputError;

/// Microsoft revokes a refresh token unused for this long.
pub const INACTIVITY_LIMIT_DAYS: i64 = 90;
/// The scheduler refreshes an account whose token is older than this: well inside the limit,
/// so that a few missed days of the scheduler do not matter.
pub const REFRESH_AFTER_DAYS: i64 = 7;
/// A token this old means refreshes have been failing or not running: warn while there is time.
pub const WARN_AFTER_DAYS: i64 = 60;
const DAY_MILLIS: i64 = 86_400_000;

/// A refresh token's value. Never printed; only the store (sealed) and the token request see it.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl RefreshToken {
    pub fn new(value: impl Into<String>) -> Result<Self, InputError> {
        let value = value.into();
        if value.trim().is_empty() {
            return Err(InputError::new(
                "refresh_token",
                "Microsoft returned no refresh token",
                "Ask for the offline_access permission when connecting the account",
            ));
        }
        Ok(Self(value))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(<redacted>)")
    }
}

/// Whether an account can still act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    Active,
    /// Microsoft refused its refresh token (revoked, password reset, idle too long, consent
    /// withdrawn): only the person signing in again brings it back.
    NeedsReconnect,
}

impl AccountState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::NeedsReconnect => "needs_reconnect",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "active" => Some(Self::Active),
            "needs_reconnect" => Some(Self::NeedsReconnect),
            _ => None,
        }
    }
}

/// How an account's refresh token stands, as `account list` and the dashboard show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "health", rename_all = "snake_case")]
pub enum TokenHealth {
    /// Refreshed recently; Microsoft would revoke it after `days_left` more idle days.
    Healthy {
        days_left: i64,
    },
    /// Not refreshed for a long time: the scheduler is not running or its refreshes fail.
    Stale {
        days_left: i64,
    },
    /// Past Microsoft's inactivity limit: the next refresh will fail.
    Expired,
    NeedsReconnect,
}

impl TokenHealth {
    pub fn of(state: AccountState, last_refreshed_at: i64, now: i64) -> Self {
        if state == AccountState::NeedsReconnect {
            return Self::NeedsReconnect;
        }
        let idle_days = (now - last_refreshed_at).max(0) / DAY_MILLIS;
        let days_left = INACTIVITY_LIMIT_DAYS - idle_days;
        if days_left <= 0 {
            Self::Expired
        } else if idle_days >= WARN_AFTER_DAYS {
            Self::Stale { days_left }
        } else {
            Self::Healthy { days_left }
        }
    }

    /// In words, with what to do where something must be done.
    pub fn describe(&self) -> String {
        match self {
            Self::Healthy { days_left } => format!("healthy ({days_left} days left if unused)"),
            Self::Stale { days_left } => format!(
                "stale: not refreshed for {} days, Microsoft revokes it in {days_left}; run `m365sync account refresh` or keep `m365sync serve` running",
                INACTIVITY_LIMIT_DAYS - days_left
            ),
            Self::Expired => "expired: unused past Microsoft's 90-day limit; reconnect with `m365sync account connect`".into(),
            Self::NeedsReconnect => "needs reconnect: sign in again with `m365sync account connect`".into(),
        }
    }

    /// Whether it should be refreshed now.
    pub fn due_for_refresh(state: AccountState, last_refreshed_at: i64, now: i64) -> bool {
        state == AccountState::Active && now - last_refreshed_at >= REFRESH_AFTER_DAYS * DAY_MILLIS
    }
}

/// The delegated permissions a connected account is asked for: sign-in, a refresh token, and
/// the calendar (its own, and the calendars shared with it).
pub const CALENDAR_SCOPES: &[&str] = &["Calendars.ReadWrite", "Calendars.ReadWrite.Shared"];
pub const SIGN_IN_SCOPES: &[&str] = &["openid", "profile", "offline_access"];

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = DAY_MILLIS;

    #[test]
    fn health_follows_the_days_since_the_last_refresh() {
        let now = 1_000 * DAY;
        assert_eq!(
            TokenHealth::of(AccountState::Active, now - DAY, now),
            TokenHealth::Healthy { days_left: 89 }
        );
        assert_eq!(
            TokenHealth::of(AccountState::Active, now - 61 * DAY, now),
            TokenHealth::Stale { days_left: 29 }
        );
        assert_eq!(
            TokenHealth::of(AccountState::Active, now - 90 * DAY, now),
            TokenHealth::Expired
        );
        assert_eq!(
            TokenHealth::of(AccountState::NeedsReconnect, now, now),
            TokenHealth::NeedsReconnect
        );
    }

    #[test]
    fn refresh_is_due_after_a_week_and_never_for_an_account_that_needs_reconnecting() {
        let now = 1_000 * DAY;
        assert!(!TokenHealth::due_for_refresh(
            AccountState::Active,
            now - 6 * DAY,
            now
        ));
        assert!(TokenHealth::due_for_refresh(
            AccountState::Active,
            now - 7 * DAY,
            now
        ));
        assert!(!TokenHealth::due_for_refresh(
            AccountState::NeedsReconnect,
            now - 30 * DAY,
            now
        ));
    }

    #[test]
    fn a_refresh_token_never_shows_in_debug_output() {
        let token = RefreshToken::new("1.AR-very-secret").unwrap();
        assert!(!format!("{token:?}").contains("very-secret"));
        assert!(RefreshToken::new(" ").is_err());
    }
}
