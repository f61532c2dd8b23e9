//! Logins for the web pages: Argon2id password hashes, sessions kept in the store behind an
//! `HttpOnly` cookie, a CSRF token on every form, and a brake on guessing passwords.
//!
//! Sessions are our own small table rather than tower-sessions: its store adapters lag behind the
//! sqlx we use, and a session here is one row (token hash, user, CSRF token, two expiries) that
//! both databases keep through the same repository as everything else.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use store::SessionTimes;

/// A session ends after this long without a request…
pub const SESSION_IDLE: Duration = Duration::from_secs(8 * 60 * 60);
/// …or this long after login, whatever its use.
pub const SESSION_ABSOLUTE: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// How long the one-time set-up link printed on first start works.
pub const SETUP_LINK_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

pub const SESSION_TIMES: SessionTimes = SessionTimes {
    idle_millis: SESSION_IDLE.as_millis() as i64,
    absolute_millis: SESSION_ABSOLUTE.as_millis() as i64,
};

/// Passwords shorter than this are refused: the one rule NIST keeps for chosen passwords.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longer inputs are refused before hashing, so that a huge body cannot buy seconds of CPU.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A password as a PHC string (Argon2id with the library's recommended parameters and a random
/// salt).
pub fn hash_password(password: &str) -> Result<String, String> {
    check_password(password)?;
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| format!("the password could not be hashed: {e}"))
}

/// Why a new password is refused, in words for the person choosing it.
pub fn check_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password is too short: give at least {MIN_PASSWORD_CHARS} characters (a few words make a good one)"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "the password is too long: give at most {MAX_PASSWORD_BYTES} bytes"
        ));
    }
    Ok(())
}

/// A user name in one spelling: trimmed and in Unicode NFC, so that "alïce" typed with a
/// combining diaeresis is the same name as with the precomposed letter, both when the name is
/// made (its uniqueness) and when it logs in.
pub fn canonical_user_name(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.trim().nfc().collect()
}

/// Why a user name is refused.
pub fn check_user_name(name: &str) -> Result<String, String> {
    let name = canonical_user_name(name);
    let name = name.as_str();
    if name.is_empty() {
        return Err("the name is empty: give the name this person logs in with".into());
    }
    if name.chars().count() > 100 {
        return Err("the name is longer than 100 characters: give a shorter one".into());
    }
    if name.chars().any(char::is_control) {
        return Err("the name holds control characters: give printable text only".into());
    }
    Ok(name.to_string())
}

/// Whether `password` is the one `hash` was made from. A hash that does not parse never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Checked against when the name is unknown, so that an unknown name takes as long to refuse as
/// a wrong password and response times do not tell which names exist.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        Argon2::default()
            .hash_password(b"no user has this password")
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// 32 random bytes from the operating system, as URL-safe text.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // Without the OS's randomness no token may be made at all.
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the store keeps of a token.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

/// Compares two secrets in time that depends only on their lengths.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Failed logins allowed for one name from one client address within [`LIMIT_WINDOW`]…
pub const FAILURES_PER_NAME: usize = 5;
/// …and from one client address for any names (several names tried from one place).
pub const FAILURES_PER_ADDRESS: usize = 20;
pub const LIMIT_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Counts failed logins per (client address, name) and per client address over a sliding
/// window. A name alone is never the key: then anyone anywhere could lock the only admin out by
/// failing five times with their name. Kept in memory: a restart forgets it, which costs an
/// attacker a restart they cannot cause.
#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    fn address_key(address: Option<IpAddr>) -> String {
        address
            .map(|a| a.to_canonical().to_string())
            .unwrap_or_default()
    }

    /// The name as the store finds it, in any case: `ANA` and ` ana ` are tried as one name.
    fn name_key(name: &str, address: Option<IpAddr>) -> String {
        format!(
            "name:{}:{}",
            Self::address_key(address),
            canonical_user_name(name).to_lowercase()
        )
    }

    fn keys(name: &str, address: Option<IpAddr>) -> [(String, usize); 2] {
        [
            (Self::name_key(name, address), FAILURES_PER_NAME),
            (
                format!("address:{}", Self::address_key(address)),
                FAILURES_PER_ADDRESS,
            ),
        ]
    }

    /// `Some(wait)` when this name from this address, or this address, has failed too often
    /// lately.
    pub fn blocked(&self, name: &str, address: Option<IpAddr>, now: Instant) -> Option<Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = None;
        for (key, limit) in Self::keys(name, address) {
            if let Some(times) = failures.get_mut(&key) {
                while times
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= LIMIT_WINDOW)
                {
                    times.pop_front();
                }
                if times.len() >= limit
                    && let Some(oldest) = times.front()
                {
                    let left = LIMIT_WINDOW.saturating_sub(now.duration_since(*oldest));
                    wait = Some(wait.map_or(left, |w: Duration| w.max(left)));
                }
            }
        }
        wait
    }

    pub fn failed(&self, name: &str, address: Option<IpAddr>, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded memory: a flood of made-up names cannot grow the map without end.
        if failures.len() > 100_000 {
            failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < LIMIT_WINDOW)
            });
        }
        for (key, _) in Self::keys(name, address) {
            failures.entry(key).or_default().push_back(now);
        }
    }

    /// A good login forgets the failures of its name from its address (not the address's).
    pub fn succeeded(&self, name: &str, address: Option<IpAddr>) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(&Self::name_key(name, address));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_as_argon2id_and_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse battery!", &hash));
        assert!(!verify_password("anything", "not a hash"));
        assert!(!verify_password("anything", decoy_hash()));
    }

    #[test]
    fn short_and_huge_passwords_are_refused() {
        assert!(hash_password("short").unwrap_err().contains("at least 12"));
        assert!(
            check_password(&"x".repeat(2000))
                .unwrap_err()
                .contains("too long")
        );
    }

    #[test]
    fn tokens_are_random_and_kept_as_hashes() {
        let a = random_token();
        let b = random_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_ne!(token_hash(&a), a);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert!(same_secret(&a, &a.clone()));
        assert!(!same_secret(&a, &b));
        assert!(!same_secret("ab", "abc"));
    }

    #[test]
    fn names_are_trimmed_and_checked() {
        assert_eq!(check_user_name("  ana ").unwrap(), "ana");
        assert!(check_user_name(" ").is_err());
        assert!(check_user_name("a\u{7}b").is_err());
        // The same letter, composed or not, is one name.
        assert_eq!(
            check_user_name("al\u{69}\u{308}ce").unwrap(),
            check_user_name("al\u{ef}ce").unwrap()
        );
        assert_eq!(
            check_user_name("<script>alert(1)</script>").unwrap(),
            "<script>alert(1)</script>"
        );
    }

    #[test]
    fn the_limiter_blocks_a_name_from_one_address_after_five_failures_for_the_window() {
        let limiter = LoginLimiter::default();
        let start = Instant::now();
        let address: Option<IpAddr> = Some("192.0.2.1".parse().unwrap());
        let elsewhere: Option<IpAddr> = Some("198.51.100.7".parse().unwrap());
        for n in 0..FAILURES_PER_NAME {
            assert!(limiter.blocked("Ana", address, start).is_none());
            // Case and spaces do not make another name.
            limiter.failed(if n % 2 == 0 { "ana" } else { " ANA " }, address, start);
        }
        let wait = limiter
            .blocked("ANA", address, start)
            .expect("blocked by name and address");
        assert_eq!(wait, LIMIT_WINDOW);
        assert!(limiter.blocked("bob", address, start).is_none());
        assert!(
            limiter.blocked("ana", elsewhere, start).is_none(),
            "the same name from elsewhere is not locked out"
        );
        assert!(
            limiter
                .blocked("ana", address, start + LIMIT_WINDOW)
                .is_none(),
            "the window passed"
        );
        limiter.succeeded("ana", address);
        assert!(limiter.blocked("ana", address, start).is_none());
    }

    #[test]
    fn the_limiter_blocks_an_address_trying_many_names() {
        let limiter = LoginLimiter::default();
        let now = Instant::now();
        let address: Option<IpAddr> = Some("192.0.2.9".parse().unwrap());
        for n in 0..FAILURES_PER_ADDRESS {
            limiter.failed(&format!("user{n}"), address, now);
        }
        assert!(limiter.blocked("someone-else", address, now).is_some());
        assert!(limiter.blocked("someone-else", None, now).is_none());
    }
}
