//! Counts of what this process's clients asked Microsoft and heard back: answers by status code,
//! requests that got no answer, retry waits and pacing waits, per label (the connection a client
//! works for). Read by the `/metrics` page; kept here because only the client sees every answer.
//!
//! Cheap by design, because the sync path is benchmarked: a client holds its label's counters
//! and each answer is one relaxed atomic add into a fixed array indexed by status code. The
//! registry's lock is taken only when a client is built and when the counters are read.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// HTTP status codes run from 100 to 599; anything else Microsoft sends is counted as 0.
const STATUS_SLOTS: usize = 600;

/// One label's counters.
pub struct RequestCounters {
    by_status: Box<[AtomicU64]>,
    unanswered: AtomicU64,
    retry_waits: AtomicU64,
    retry_wait_micros: AtomicU64,
    pacing_waits: AtomicU64,
    pacing_wait_micros: AtomicU64,
}

impl RequestCounters {
    fn new() -> Self {
        Self {
            by_status: (0..STATUS_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            unanswered: AtomicU64::new(0),
            retry_waits: AtomicU64::new(0),
            retry_wait_micros: AtomicU64::new(0),
            pacing_waits: AtomicU64::new(0),
            pacing_wait_micros: AtomicU64::new(0),
        }
    }

    /// An answer with this status (a `$batch` reply's inner answers are counted each).
    pub(crate) fn answered(&self, status: u16) {
        let slot = usize::from(status);
        let slot = if slot < STATUS_SLOTS { slot } else { 0 };
        self.by_status[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// A request that got no answer: the connection failed or timed out.
    pub(crate) fn unanswered(&self) {
        self.unanswered.fetch_add(1, Ordering::Relaxed);
    }

    /// A wait before sending again, after a 429, a 5xx or a lost connection.
    pub(crate) fn retry_wait(&self, wait: Duration) {
        self.retry_waits.fetch_add(1, Ordering::Relaxed);
        self.retry_wait_micros
            .fetch_add(micros(wait), Ordering::Relaxed);
    }

    /// A wait to keep within Microsoft's budgets before a request.
    pub(crate) fn pacing_wait(&self, wait: Duration) {
        self.pacing_waits.fetch_add(1, Ordering::Relaxed);
        self.pacing_wait_micros
            .fetch_add(micros(wait), Ordering::Relaxed);
    }

    fn read(&self) -> RequestCounts {
        let by_status = self
            .by_status
            .iter()
            .enumerate()
            .filter_map(|(status, count)| {
                let count = count.load(Ordering::Relaxed);
                (count > 0).then_some((status as u16, count))
            })
            .collect();
        RequestCounts {
            by_status,
            unanswered: self.unanswered.load(Ordering::Relaxed),
            retry_waits: self.retry_waits.load(Ordering::Relaxed),
            retry_wait_seconds: self.retry_wait_micros.load(Ordering::Relaxed) as f64 / 1e6,
            pacing_waits: self.pacing_waits.load(Ordering::Relaxed),
            pacing_wait_seconds: self.pacing_wait_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

fn micros(wait: Duration) -> u64 {
    u64::try_from(wait.as_micros()).unwrap_or(u64::MAX)
}

/// What one label's clients have counted since the process started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestCounts {
    /// Answers by HTTP status (0: a status outside 100–599).
    pub by_status: BTreeMap<u16, u64>,
    /// Requests that got no answer at all.
    pub unanswered: u64,
    pub retry_waits: u64,
    pub retry_wait_seconds: f64,
    pub pacing_waits: u64,
    pub pacing_wait_seconds: f64,
}

impl RequestCounts {
    /// Answers that were 429 Too Many Requests.
    pub fn throttled(&self) -> u64 {
        self.by_status.get(&429).copied().unwrap_or(0)
    }

    /// Answers of every status, and requests with none.
    pub fn requests(&self) -> u64 {
        self.by_status.values().sum::<u64>() + self.unanswered
    }

    /// What was counted after `earlier` (a reading of the same label): one run's share of a
    /// process's counts, since one connection runs one run at a time.
    pub fn since(&self, earlier: &RequestCounts) -> RequestCounts {
        let by_status = self
            .by_status
            .iter()
            .filter_map(|(status, count)| {
                let before = earlier.by_status.get(status).copied().unwrap_or(0);
                let added = count.saturating_sub(before);
                (added > 0).then_some((*status, added))
            })
            .collect();
        RequestCounts {
            by_status,
            unanswered: self.unanswered.saturating_sub(earlier.unanswered),
            retry_waits: self.retry_waits.saturating_sub(earlier.retry_waits),
            retry_wait_seconds: (self.retry_wait_seconds - earlier.retry_wait_seconds).max(0.0),
            pacing_waits: self.pacing_waits.saturating_sub(earlier.pacing_waits),
            pacing_wait_seconds: (self.pacing_wait_seconds - earlier.pacing_wait_seconds).max(0.0),
        }
    }
}

fn registry() -> &'static Mutex<BTreeMap<String, Arc<RequestCounters>>> {
    static REGISTRY: OnceLock<Mutex<BTreeMap<String, Arc<RequestCounters>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// The counters of `label`, shared by every client built for it.
pub fn counters(label: &str) -> Arc<RequestCounters> {
    let mut registry = registry().lock().unwrap_or_else(|e| e.into_inner());
    Arc::clone(
        registry
            .entry(label.to_string())
            .or_insert_with(|| Arc::new(RequestCounters::new())),
    )
}

/// What the clients of `label` have counted so far (nothing, for a label no client used).
pub fn request_counts_of(label: &str) -> RequestCounts {
    let registry = registry().lock().unwrap_or_else(|e| e.into_inner());
    registry
        .get(label)
        .map(|counters| counters.read())
        .unwrap_or_default()
}

/// Every label's counts, by label, for the labels whose clients sent or waited for something:
/// a client is built before it is named for its connection, and one that never sent anything
/// would otherwise show as a connection called "".
pub fn request_counts() -> BTreeMap<String, RequestCounts> {
    let registry = registry().lock().unwrap_or_else(|e| e.into_inner());
    registry
        .iter()
        .map(|(label, counters)| (label.clone(), counters.read()))
        .filter(|(_, counts)| {
            counts.requests() > 0 || counts.retry_waits > 0 || counts.pacing_waits > 0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_whose_clients_sent_nothing_is_not_listed() {
        let idle = counters("observe-test: idle");
        let busy = counters("observe-test: busy");
        busy.answered(200);
        let listed = request_counts();
        assert!(!listed.contains_key("observe-test: idle"));
        assert_eq!(listed["observe-test: busy"].requests(), 1);
        idle.pacing_wait(std::time::Duration::from_millis(5));
        assert!(request_counts().contains_key("observe-test: idle"));
    }

    #[test]
    fn answers_are_counted_by_status_and_odd_statuses_apart() {
        let counters = counters("observe-unit-test");
        counters.answered(200);
        counters.answered(200);
        counters.answered(429);
        counters.answered(999);
        counters.unanswered();
        counters.retry_wait(Duration::from_millis(1500));
        counters.pacing_wait(Duration::from_millis(250));
        let counts = &request_counts()["observe-unit-test"];
        assert_eq!(
            counts.by_status,
            BTreeMap::from([(0, 1), (200, 2), (429, 1)])
        );
        assert_eq!(counts.throttled(), 1);
        assert_eq!(counts.unanswered, 1);
        assert_eq!(counts.retry_waits, 1);
        assert!((counts.retry_wait_seconds - 1.5).abs() < 1e-9);
        assert_eq!(counts.pacing_waits, 1);
        assert!((counts.pacing_wait_seconds - 0.25).abs() < 1e-9);
    }

    #[test]
    fn a_later_reading_less_an_earlier_is_what_happened_between() {
        let counters = counters("observe-since-test");
        counters.answered(200);
        counters.answered(429);
        let before = request_counts_of("observe-since-test");
        counters.answered(200);
        counters.answered(503);
        counters.answered(503);
        counters.unanswered();
        counters.retry_wait(Duration::from_secs(2));
        let between = request_counts_of("observe-since-test").since(&before);
        assert_eq!(between.by_status, BTreeMap::from([(200, 1), (503, 2)]));
        assert_eq!(between.requests(), 4);
        assert_eq!(between.throttled(), 0);
        assert_eq!(between.retry_waits, 1);
        assert!((between.retry_wait_seconds - 2.0).abs() < 1e-9);
        assert_eq!(
            request_counts_of("no client used this label"),
            RequestCounts::default()
        );
    }
}
