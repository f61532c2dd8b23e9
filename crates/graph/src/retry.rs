//! When and how long to wait before trying a request again.
//!
//! Microsoft asks clients to honour `Retry-After` on 429, 503 and 504 (it may be fractional), and
//! to back off exponentially otherwise. The wait itself goes through a [`Sleeper`] so that tests
//! can record the waits instead of spending them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use crate::error::Excerpt;

/// The longest wait one `Retry-After` is granted by default. Graph asks for seconds, a few
/// minutes at most; anything longer is a fault on the way (a proxy, a typo, `1e20`) and is cut to
/// this rather than stalling a run for hours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

pub trait Sleeper: Send + Sync {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Sleeps for real.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

#[derive(Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured as given; longer ones are cut to this.
    pub max_retry_after: Duration,
    pub sleeper: Arc<dyn Sleeper>,
    /// The budgets each client paces itself to (Microsoft's documented limits by default);
    /// `None` sends every request as soon as it is asked for.
    pub pacing: Option<crate::Budgets>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            max_retry_after: MAX_RETRY_AFTER,
            sleeper: Arc::new(TokioSleeper),
            pacing: Some(crate::Budgets::microsoft()),
        }
    }
}

impl std::fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_attempts", &self.max_attempts)
            .field("base_delay", &self.base_delay)
            .field("max_delay", &self.max_delay)
            .field("pacing", &self.pacing)
            .finish_non_exhaustive()
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`: the server's word if it gave one (cut to
    /// `max_retry_after`), else full-jitter exponential backoff (a random wait up to
    /// base × 2^(attempt-1), capped).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(given) = retry_after {
            return given.min(self.max_retry_after);
        }
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let ceiling = exp.min(self.max_delay);
        Duration::try_from_secs_f64(ceiling.as_secs_f64() * fastrand::f64())
            .unwrap_or(ceiling)
            .min(ceiling)
            .max(Duration::from_millis(10))
    }

    /// [`delay`](Self::delay) after an answer from `url` (with `status`, if it had one) that
    /// asked to be retried; a `Retry-After` cut to the cap, or one that could not be read, is
    /// logged with what Microsoft sent.
    pub(crate) fn delay_after(
        &self,
        attempt: u32,
        retry_after: Option<&RetryAfter>,
        url: &str,
        status: Option<u16>,
    ) -> Duration {
        let asked = retry_after.and_then(|r| r.wait);
        let wait = self.delay(attempt, asked);
        if let Some(sent) = retry_after {
            let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
            match sent.wait {
                Some(asked) if asked > wait => warn!(
                    url,
                    ?status,
                    retry_after = %Excerpt(&sent.sent),
                    wait_ms,
                    "Microsoft asked for a longer wait than m365sync spends on one retry; waiting the longest allowed instead"
                ),
                None => warn!(
                    url,
                    ?status,
                    retry_after = %Excerpt(&sent.sent),
                    wait_ms,
                    "Microsoft's Retry-After is not a number of seconds; backing off instead"
                ),
                Some(_) => {}
            }
        }
        wait
    }

    pub(crate) async fn wait(&self, duration: Duration) {
        self.sleeper.sleep(duration).await;
    }
}

/// A `Retry-After` header as Microsoft sent it, and what it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RetryAfter {
    /// The header's text, for the log.
    pub sent: String,
    /// The wait asked for; `None` when it is not a number of seconds.
    pub wait: Option<Duration>,
}

impl RetryAfter {
    pub(crate) fn read(sent: impl Into<String>) -> Self {
        let sent = sent.into();
        let wait = parse_retry_after(&sent);
        Self { sent, wait }
    }
}

/// Reads a `Retry-After` value in seconds, whole or fractional. A value too large for a
/// `Duration` is read as the longest one (the policy then cuts it to its cap); a negative one, a
/// word (`inf`, `NaN`) or anything else that is not seconds is `None`.
///
/// An HTTP-date, which HTTP also allows, is `None` on purpose: Graph sends seconds, and a date
/// would make the wait depend on this machine's clock agreeing with Microsoft's (a skewed clock
/// turns it into hours, or into none). The caller then backs off exponentially with jitter, as
/// for a 503 without `Retry-After`.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let text = value.trim();
    // Seconds start with a digit or a point (".5"); this keeps out the signs and the words
    // (`inf`, `infinity`, `NaN`) that float parsing would otherwise take.
    if !text.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    if let Ok(whole) = text.parse::<u64>() {
        return Some(Duration::from_secs(whole));
    }
    let seconds: f64 = text.parse().ok()?;
    if seconds.is_nan() || seconds < 0.0 {
        return None;
    }
    // Beyond `Duration::MAX` (a long run of digits, `1e20`, `1e400` read as infinity).
    Some(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX))
}

pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 429 | 503 | 504)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn retry_after_accepts_whole_and_fractional_seconds() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 2.128 "),
            Some(Duration::from_millis(2128))
        );
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn huge_negative_and_odd_retry_afters_never_panic_and_huge_ones_wait_the_cap() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.max_retry_after, Duration::from_secs(600));
        for huge in [
            "1e20",
            "1E20",
            "1e400",
            "18446744073709551616",
            "184467440737095516150000.5",
            "99999999999999999999999999999999999999999",
        ] {
            assert_eq!(parse_retry_after(huge), Some(Duration::MAX), "{huge}");
            let wait = policy.delay_after(1, Some(&RetryAfter::read(huge)), "u", Some(429));
            assert_eq!(wait, MAX_RETRY_AFTER, "{huge}");
        }
        for odd in [
            "",
            " ",
            "-1",
            "-0.5",
            "-1e20",
            "+5",
            "inf",
            "Infinity",
            "NaN",
            ".",
            "1e",
            "٣",
            "5 seconds",
            "0x10",
            "Wed, 21 Oct 2015 07:28:00 GMT",
        ] {
            assert_eq!(parse_retry_after(odd), None, "{odd:?}");
            let wait = policy.delay_after(2, Some(&RetryAfter::read(odd)), "u", None);
            assert!(wait <= policy.max_delay, "{odd:?} backs off: {wait:?}");
        }
        assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(".5"), Some(Duration::from_millis(500)));
    }

    #[test]
    fn server_word_wins_and_backoff_stays_under_its_ceiling() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.delay(3, Some(Duration::from_millis(250))),
            Duration::from_millis(250)
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(3600))),
            MAX_RETRY_AFTER
        );
        for attempt in 1..12 {
            let d = policy.delay(attempt, None);
            let ceiling = policy
                .base_delay
                .saturating_mul(1 << (attempt - 1))
                .min(policy.max_delay);
            assert!(
                d <= ceiling.max(Duration::from_millis(10)),
                "attempt {attempt}: {d:?}"
            );
        }
        let unbounded = RetryPolicy {
            base_delay: Duration::MAX,
            max_delay: Duration::MAX,
            ..RetryPolicy::default()
        };
        for attempt in [0, 1, 17, u32::MAX] {
            unbounded.delay(attempt, None);
        }
    }

    proptest! {
        #[test]
        fn any_text_is_read_without_panicking_and_never_waits_past_the_cap(
            text in any::<String>(),
            attempt in any::<u32>(),
        ) {
            let policy = RetryPolicy::default();
            let sent = RetryAfter::read(text.clone());
            prop_assert_eq!(sent.wait, parse_retry_after(&text));
            let wait = policy.delay_after(attempt, Some(&sent), "u", Some(429));
            prop_assert!(wait <= policy.max_retry_after.max(policy.max_delay));
        }

        #[test]
        fn number_like_text_is_read_without_panicking(
            text in "[ ]?[-+]?[0-9]{0,30}(\\.[0-9]{0,20})?([eE][-+]?[0-9]{1,4})?[ ]?",
        ) {
            let policy = RetryPolicy::default();
            let wait = policy.delay(1, parse_retry_after(&text));
            prop_assert!(wait <= policy.max_retry_after.max(policy.max_delay));
        }

        #[test]
        fn whole_seconds_read_exactly_and_the_cap_holds(seconds in any::<u32>()) {
            let policy = RetryPolicy::default();
            let read = parse_retry_after(&seconds.to_string());
            prop_assert_eq!(read, Some(Duration::from_secs(seconds.into())));
            prop_assert_eq!(
                policy.delay(1, read),
                Duration::from_secs(seconds.into()).min(MAX_RETRY_AFTER)
            );
        }

        #[test]
        fn anything_above_the_cap_waits_the_cap(
            seconds in 601u64..,
            exponent in 3u32..400,
            fraction in 0u32..1000,
        ) {
            let policy = RetryPolicy::default();
            for text in [
                seconds.to_string(),
                format!("{seconds}.{fraction:03}"),
                format!("1e{exponent}"),
                format!("{seconds}e{exponent}"),
            ] {
                let wait = policy.delay_after(1, Some(&RetryAfter::read(text.clone())), "u", None);
                prop_assert_eq!(wait, MAX_RETRY_AFTER, "{}", text);
            }
        }

        #[test]
        fn fractional_seconds_read_to_the_millisecond(millis in 0u64..10_000_000) {
            let text = format!("{}.{:03}", millis / 1000, millis % 1000);
            let read = parse_retry_after(&text).map(|d| d.as_secs_f64());
            prop_assert!(
                read.is_some_and(|s| (s - millis as f64 / 1000.0).abs() < 1e-6),
                "{} read as {:?}", text, read
            );
        }

        #[test]
        fn negatives_are_not_waits(seconds in 0.0001f64..1e300) {
            prop_assert_eq!(parse_retry_after(&format!("-{seconds}")), None);
        }
    }
}
