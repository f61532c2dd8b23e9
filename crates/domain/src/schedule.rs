//! When a connection syncs on its own: every fixed interval, or on a cron pattern read in a time
//! zone. Owns parsing the schedule a person types, its canonical text (what the store keeps and
//! what `connection list` shows), and the pure "what is due" rule the scheduler applies, given
//! the time now; nothing here reads a clock.
//!
//! Times are milliseconds since 1970, as the store keeps them.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::InputError;

/// Syncing more often than this would spend a tenant's Graph budget on little news.
pub const SHORTEST_INTERVAL_SECS: u64 = 5 * 60;

/// How many coming occurrences of a cron pattern are looked at to find one closer than
/// [`SHORTEST_INTERVAL_SECS`] to the next.
const CRON_GAPS_CHECKED: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Every `seconds`, counted from when the schedule was set.
    Every { seconds: u64 },
    /// Whenever the pattern matches on the wall clock of `zone`.
    Cron { pattern: String, zone: Tz },
}

/// What one scheduler tick decides for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// A run is due now.
    pub queue: bool,
    /// When the schedule comes due next; `None` when a cron pattern never matches again.
    pub next_run_at: Option<i64>,
}

impl Schedule {
    /// An interval such as `1h`, `30m`, `1d` or `1h30m`, at least five minutes.
    pub fn every(raw: &str) -> Result<Self, InputError> {
        let seconds = parse_duration("schedule", raw)?;
        if seconds < SHORTEST_INTERVAL_SECS {
            return Err(InputError::new(
                "schedule",
                format!(
                    "'{}' is shorter than the shortest schedule, every {}",
                    raw.trim(),
                    format_duration(SHORTEST_INTERVAL_SECS)
                ),
                "Choose 5m or more; a person can still sync at any time with `m365sync sync NAME`",
            ));
        }
        Ok(Self::Every { seconds })
    }

    /// A five-field cron pattern (minute hour day-of-month month day-of-week) read on the wall
    /// clock of an IANA time zone (UTC when none is given). `now` is only used to check that the
    /// pattern comes due again, and never more often than every five minutes.
    pub fn cron(pattern: &str, zone: Option<&str>, now: i64) -> Result<Self, InputError> {
        let zone = match zone.map(str::trim).filter(|z| !z.is_empty()) {
            None => Tz::UTC,
            Some(name) => Tz::from_str(name).map_err(|_| {
                InputError::new(
                    "time zone",
                    format!("'{name}' is not a time zone"),
                    "Give an IANA name such as Europe/Paris, America/New_York or UTC",
                )
            })?,
        };
        let pattern = pattern.split_whitespace().collect::<Vec<_>>().join(" ");
        let cron = parse_cron(&pattern)?;
        let schedule = Self::Cron {
            pattern: pattern.clone(),
            zone,
        };
        let mut at = schedule.occurrence_after(&cron, now).ok_or_else(|| {
            InputError::new(
                "schedule",
                format!("cron \"{pattern}\" never comes due"),
                "Check the day of month and month: e.g. 30 February never happens",
            )
        })?;
        for _ in 0..CRON_GAPS_CHECKED {
            let Some(next) = schedule.occurrence_after(&cron, at) else {
                break;
            };
            if next - at < (SHORTEST_INTERVAL_SECS * 1000) as i64 {
                return Err(InputError::new(
                    "schedule",
                    format!(
                        "cron \"{pattern}\" comes due more often than every {}",
                        format_duration(SHORTEST_INTERVAL_SECS)
                    ),
                    "Space the runs 5 minutes or more apart, e.g. \"*/15 * * * *\"",
                ));
            }
            at = next;
        }
        Ok(schedule)
    }

    /// A schedule as [`fmt::Display`] writes it (and as `connection schedule` is typed):
    /// `every 1h`, `30m`, or `cron "0 */4 * * *" Europe/Paris`.
    pub fn parse(raw: &str, now: i64) -> Result<Self, InputError> {
        let raw = raw.trim();
        if let Some(rest) = raw.strip_prefix("cron") {
            let rest = rest.trim_start();
            let (pattern, zone) = match rest.strip_prefix('"') {
                Some(quoted) => match quoted.split_once('"') {
                    Some((pattern, zone)) => (pattern, zone.trim()),
                    None => (quoted, ""),
                },
                None => (rest, ""),
            };
            return Self::cron(pattern, Some(zone), now);
        }
        Self::every(raw.strip_prefix("every").unwrap_or(raw))
    }

    /// The first time it comes due after it is set at `now`.
    pub fn first_run_after(&self, now: i64) -> Option<i64> {
        match self {
            Self::Every { seconds } => Some(now.saturating_add(millis(*seconds))),
            Self::Cron { pattern, .. } => {
                let cron = parse_cron(pattern).ok()?;
                self.occurrence_after(&cron, now)
            }
        }
    }

    /// What the scheduler does at `now` for a connection whose schedule next comes due at
    /// `next_run_at`. A due schedule queues one run, however many times it came due while no
    /// scheduler ran, and moves on to its first time after `now`: an interval keeps its cadence
    /// (the times it was set for, plus whole intervals), a cron pattern its next match.
    pub fn tick(&self, next_run_at: Option<i64>, now: i64) -> Tick {
        match next_run_at {
            // A schedule without a next time (its pattern found none before) is given one.
            None => Tick {
                queue: false,
                next_run_at: self.first_run_after(now),
            },
            Some(due) if due > now => Tick {
                queue: false,
                next_run_at: Some(due),
            },
            Some(due) => Tick {
                queue: true,
                next_run_at: match self {
                    Self::Every { seconds } => {
                        let step = millis(*seconds).max(1);
                        let missed = (now - due) / step + 1;
                        Some(due.saturating_add(missed.saturating_mul(step)))
                    }
                    Self::Cron { pattern, .. } => {
                        let cron = parse_cron(pattern).ok();
                        cron.and_then(|cron| self.occurrence_after(&cron, now))
                    }
                },
            },
        }
    }

    /// The pattern's first match strictly after `after`, on the zone's wall clock.
    fn occurrence_after(&self, cron: &Cron, after: i64) -> Option<i64> {
        let Self::Cron { zone, .. } = self else {
            return None;
        };
        let start: DateTime<Tz> = zone.from_utc_datetime(&utc(after)?.naive_utc());
        let next = cron.find_next_occurrence(&start, false).ok()?;
        Some(next.with_timezone(&Utc).timestamp_millis())
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Every { seconds } => write!(f, "every {}", format_duration(*seconds)),
            Self::Cron { pattern, zone } => write!(f, "cron \"{pattern}\" {}", zone.name()),
        }
    }
}

fn parse_cron(pattern: &str) -> Result<Cron, InputError> {
    if pattern.split_whitespace().count() != 5 {
        return Err(InputError::new(
            "schedule",
            format!("cron \"{pattern}\" does not have five fields"),
            "Write minute hour day-of-month month day-of-week, e.g. \"0 */4 * * *\" for every four hours",
        ));
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(pattern)
        .map_err(|e| {
            InputError::new(
                "schedule",
                format!("cron \"{pattern}\" is not a cron pattern: {e}"),
                "Write minute hour day-of-month month day-of-week, e.g. \"0 */4 * * *\" for every four hours",
            )
        })
}

fn utc(at: i64) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_millis(at)
}

fn millis(seconds: u64) -> i64 {
    i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// A length of time as typed: whole numbers with a unit each, `s`, `m`, `h` or `d`
/// (`90m`, `1h30m`, `1d`); a bare `0` is none.
pub fn parse_duration(field: &'static str, raw: &str) -> Result<u64, InputError> {
    let text = raw.trim().to_ascii_lowercase();
    let bad = || {
        InputError::new(
            field,
            format!("'{}' is not a length of time", raw.trim()),
            "Write a number and a unit: 30m, 1h, 12h, 1d or 1h30m (s, m, h, d)",
        )
    };
    if text == "0" {
        return Ok(0);
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        number.clear();
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
    }
    if !number.is_empty() || text.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

/// A length of time in the largest units that write it exactly: `1d`, `12h`, `1h30m`, `0`.
pub fn format_duration(seconds: u64) -> String {
    if seconds == 0 {
        return "0".into();
    }
    let mut left = seconds;
    let mut text = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if left >= size {
            text.push_str(&format!("{}{unit}", left / size));
            left %= size;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Milliseconds of a UTC wall-clock time.
    fn at(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
            .timestamp_millis()
    }

    fn show(millis: i64) -> String {
        utc(millis)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }

    const NOW: &str = "2026-11-30T10:00:00Z";

    #[test]
    fn intervals_parse_and_print_in_their_largest_units() {
        for (typed, shown) in [
            ("every 1h", "every 1h"),
            ("30m", "every 30m"),
            ("1d", "every 1d"),
            ("90m", "every 1h30m"),
            ("  every 2H ", "every 2h"),
            ("300s", "every 5m"),
        ] {
            let schedule = Schedule::parse(typed, at(NOW)).unwrap();
            assert_eq!(schedule.to_string(), shown, "{typed}");
            assert_eq!(Schedule::parse(shown, at(NOW)).unwrap(), schedule);
        }
    }

    #[test]
    fn bad_intervals_say_why() {
        for (typed, says) in [
            ("4m", "shorter than the shortest schedule"),
            ("every 59s", "shorter"),
            ("0", "shorter"),
            ("1 hour", "not a length of time"),
            ("h", "not a length of time"),
            ("12", "not a length of time"),
            ("", "not a length of time"),
        ] {
            let error = Schedule::parse(typed, at(NOW)).unwrap_err();
            assert!(error.problem.contains(says), "{typed}: {error:?}");
        }
    }

    #[test]
    fn cron_patterns_keep_their_zone_and_refuse_what_cannot_be() {
        let schedule = Schedule::cron("0  */4 * * *", Some("Europe/Paris"), at(NOW)).unwrap();
        assert_eq!(schedule.to_string(), "cron \"0 */4 * * *\" Europe/Paris");
        assert_eq!(
            Schedule::parse(&schedule.to_string(), at(NOW)).unwrap(),
            schedule
        );
        assert_eq!(
            Schedule::cron("15 3 * * *", None, at(NOW))
                .unwrap()
                .to_string(),
            "cron \"15 3 * * *\" UTC"
        );
        for (pattern, zone, says) in [
            ("0 */4 * * *", Some("Europe/Parsi"), "not a time zone"),
            ("0 */4 * *", None, "five fields"),
            ("0 0 */4 * * *", None, "five fields"),
            ("61 * * * *", None, "not a cron pattern"),
            ("* * * * *", None, "more often than every 5m"),
            ("*/2 * * * *", None, "more often"),
            ("0,3 9 * * *", None, "more often"),
            ("0 0 30 2 *", None, "never comes due"),
        ] {
            let error = Schedule::cron(pattern, zone, at(NOW)).unwrap_err();
            assert!(error.problem.contains(says), "{pattern}: {error:?}");
        }
        assert!(Schedule::cron("*/5 * * * *", None, at(NOW)).is_ok());
    }

    #[test]
    fn an_interval_comes_due_once_and_keeps_its_cadence() {
        let schedule = Schedule::every("1h").unwrap();
        let set = at(NOW);
        let first = schedule.first_run_after(set).unwrap();
        assert_eq!(show(first), "2026-11-30T11:00:00Z");
        // Not due a minute before.
        let early = schedule.tick(Some(first), first - 60_000);
        assert_eq!(
            early,
            Tick {
                queue: false,
                next_run_at: Some(first)
            }
        );
        // Due on the minute and seen 20 s late: the next is still on the hour.
        let due = schedule.tick(Some(first), first + 20_000);
        assert!(due.queue);
        assert_eq!(show(due.next_run_at.unwrap()), "2026-11-30T12:00:00Z");
        // The same tick again, after the first moved the time on, queues nothing.
        let again = schedule.tick(due.next_run_at, first + 20_000);
        assert!(!again.queue);
        // A scheduler that was down for five hours queues one run, not five.
        let late = schedule.tick(Some(first), at("2026-11-30T16:10:00Z"));
        assert!(late.queue);
        assert_eq!(show(late.next_run_at.unwrap()), "2026-11-30T17:00:00Z");
        // A schedule that has no next time yet is given one, without a run.
        let fresh = schedule.tick(None, set);
        assert_eq!(
            fresh,
            Tick {
                queue: false,
                next_run_at: Some(first)
            }
        );
    }

    #[test]
    fn cron_follows_the_zone_wall_clock_across_daylight_saving() {
        let nine = Schedule::cron("0 9 * * *", Some("Europe/Paris"), at(NOW)).unwrap();
        // 09:00 in Paris is 08:00 UTC in winter (CET) and 07:00 UTC in summer (CEST); the clocks
        // went forward on 29 March 2026.
        let friday = nine.first_run_after(at("2026-03-27T00:00:00Z")).unwrap();
        assert_eq!(show(friday), "2026-03-27T08:00:00Z");
        let saturday = nine.tick(Some(friday), friday).next_run_at.unwrap();
        assert_eq!(show(saturday), "2026-03-28T08:00:00Z");
        let sunday = nine.tick(Some(saturday), saturday).next_run_at.unwrap();
        assert_eq!(show(sunday), "2026-03-29T07:00:00Z");
        // They went back on 25 October.
        let october = nine.first_run_after(at("2026-10-24T12:00:00Z")).unwrap();
        assert_eq!(show(october), "2026-10-25T08:00:00Z");
        assert_eq!(
            show(nine.first_run_after(at("2026-10-23T12:00:00Z")).unwrap()),
            "2026-10-24T07:00:00Z"
        );
    }

    #[test]
    fn cron_in_the_hour_daylight_saving_skips_or_repeats_runs_at_most_once() {
        let schedule = Schedule::cron("30 2 * * *", Some("Europe/Paris"), at(NOW)).unwrap();
        // 02:30 does not exist in Paris on 29 March 2026: that day runs at most once.
        let mut due = schedule
            .first_run_after(at("2026-03-28T12:00:00Z"))
            .unwrap();
        let mut seen = Vec::new();
        while due < at("2026-03-31T00:00:00Z") {
            seen.push(show(due));
            due = schedule.tick(Some(due), due).next_run_at.unwrap();
        }
        assert!(seen.len() == 2 || seen.len() == 3, "{seen:?}");
        assert!(seen.iter().filter(|s| s.starts_with("2026-03-29")).count() <= 1);
        assert_eq!(seen.last().unwrap(), "2026-03-30T00:30:00Z");
        // 02:30 happens twice on 25 October (CEST, then CET): the run comes once that day.
        let mut due = schedule
            .first_run_after(at("2026-10-24T12:00:00Z"))
            .unwrap();
        let mut seen = Vec::new();
        while due < at("2026-10-27T00:00:00Z") {
            seen.push(show(due));
            due = schedule.tick(Some(due), due).next_run_at.unwrap();
        }
        assert_eq!(
            seen.iter().filter(|s| s.starts_with("2026-10-25")).count(),
            1,
            "{seen:?}"
        );
        assert_eq!(seen.last().unwrap(), "2026-10-26T01:30:00Z");
    }

    #[test]
    fn durations_read_and_write_their_units() {
        assert_eq!(parse_duration("lifetime", "12h").unwrap(), 12 * 3600);
        assert_eq!(parse_duration("lifetime", "1h30m").unwrap(), 5400);
        assert_eq!(parse_duration("lifetime", "0").unwrap(), 0);
        assert_eq!(parse_duration("lifetime", "15M").unwrap(), 900);
        assert!(parse_duration("lifetime", "1.5h").is_err());
        assert!(parse_duration("lifetime", "-1h").is_err());
        assert!(parse_duration("lifetime", "99999999999999999999d").is_err());
        assert_eq!(format_duration(86_400), "1d");
        assert_eq!(format_duration(90_061), "1d1h1m1s");
        assert_eq!(format_duration(900), "15m");
    }
}
