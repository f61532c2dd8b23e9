//! Audit records of the unified audit log and how long they are kept.
//!
//! A record is keyed within its tenant by its `Id` and never changes once written: the audit
//! trail is append-only. Its common schema fields are columns; the record itself is kept whole,
//! because records of different workloads share nothing beyond that schema. The one thing that
//! ever removes a record is its connection's retention period.

use serde_json::Value;

use crate::InputError;
use crate::rows::Keyed;

/// One audit record as it is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// The record's `Id`, in lower case (Microsoft writes GUIDs in either case).
    pub id: String,
    /// `CreationTime`, in UTC as the common schema writes it (`2026-11-30T10:15:00`, no zone).
    pub creation_time: Option<String>,
    pub operation: Option<String>,
    pub workload: Option<String>,
    pub record_type: Option<i64>,
    /// `UserId` in lower case, as user principal names compare; the record keeps it as sent.
    pub user_id: Option<String>,
    pub user_type: Option<i64>,
    pub client_ip: Option<String>,
    pub result_status: Option<String>,
    pub object_id: Option<String>,
    /// The feed's content type it came from (`Audit.Exchange`); unknown for records kept
    /// before audit records had a table of their own.
    pub content_type: Option<String>,
    /// The whole record as Microsoft sent it.
    pub record: Value,
}

impl Keyed for AuditRecord {
    fn key(&self) -> &str {
        &self.id
    }
}

impl AuditRecord {
    /// Whether the record was created before `cutoff` (a UTC time written as the common schema
    /// writes it). Such times compare as text; a record without a time is never older.
    pub fn created_before(&self, cutoff: &str) -> bool {
        self.creation_time.as_deref().is_some_and(|t| t < cutoff)
    }
}

/// How long a connection keeps audit records, in days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditRetention(u32);

impl AuditRetention {
    /// What Microsoft keeps for most licences, and so what a store keeps unless told otherwise.
    pub const DEFAULT_DAYS: u32 = 180;
    /// Ten years: Microsoft's longest audit retention.
    pub const MAX_DAYS: u32 = 3_650;

    pub fn days(self) -> u32 {
        self.0
    }

    /// A number of days as typed by a person: a whole number from 1 to ten years.
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let fix = format!(
            "give a whole number of days from 1 to {}, e.g. 365",
            Self::MAX_DAYS
        );
        let days: u32 = raw.trim().parse().map_err(|_| {
            InputError::new(
                "audit retention",
                format!("'{raw}' is not a whole number of days"),
                fix.clone(),
            )
        })?;
        Self::from_days(days).ok_or_else(|| {
            InputError::new(
                "audit retention",
                format!("{days} days is out of range"),
                fix,
            )
        })
    }

    /// A number of days as stored; `None` when out of range.
    pub fn from_days(days: u32) -> Option<Self> {
        (1..=Self::MAX_DAYS).contains(&days).then_some(Self(days))
    }
}

impl Default for AuditRetention {
    fn default() -> Self {
        Self(Self::DEFAULT_DAYS)
    }
}

impl std::fmt::Display for AuditRetention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} days", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(at: Option<&str>) -> AuditRecord {
        AuditRecord {
            id: "a".into(),
            creation_time: at.map(str::to_string),
            operation: None,
            workload: None,
            record_type: None,
            user_id: None,
            user_type: None,
            client_ip: None,
            result_status: None,
            object_id: None,
            content_type: None,
            record: Value::Null,
        }
    }

    #[test]
    fn retention_is_a_whole_number_of_days_within_ten_years() {
        assert_eq!(AuditRetention::parse("365").unwrap().days(), 365);
        assert_eq!(AuditRetention::parse(" 1 ").unwrap().days(), 1);
        assert_eq!(AuditRetention::parse("3650").unwrap().days(), 3_650);
        for bad in ["0", "-5", "3651", "1.5", "ninety", "", "99999999999"] {
            let error = AuditRetention::parse(bad).unwrap_err();
            assert_eq!(error.field, "audit retention", "{bad}");
            assert!(error.fix.contains("from 1 to 3650"), "{bad}: {error}");
        }
        assert_eq!(AuditRetention::default().days(), 180);
        assert_eq!(AuditRetention::from_days(0), None);
    }

    #[test]
    fn age_compares_utc_times_as_written_and_a_record_without_one_is_never_old() {
        let cutoff = "2026-06-01T00:00:00";
        assert!(created(Some("2026-05-31T23:59:59")).created_before(cutoff));
        assert!(!created(Some("2026-06-01T00:00:00")).created_before(cutoff));
        assert!(!created(Some("2026-06-01T00:00:00.5")).created_before(cutoff));
        assert!(!created(None).created_before(cutoff));
    }
}
