//! What the usage reports and sign-in activity say of each user, as kept in their typed tables.
//!
//! Usage is one row per user per report, keyed `<report>:<upn>`, not one row per user holding
//! all three reports' columns: each report is downloaded and written on its own, so a report
//! that fails part way, or whose names are concealed, writes only rows of its own kind and can
//! never blank the columns another report filled. A wide row would have to be read and merged
//! before every write, and a plan comparing whole rows would see the other reports' columns as
//! changed to nothing.
//!
//! Sign-in activity is one row per user keyed by object id, the user's identity (DESIGN
//! invariant 2), with the UPN beside it.

use crate::rows::Keyed;

/// The usage report a row comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UsageReport {
    /// `getOffice365ActiveUserDetail`: licences held and last activity per workload.
    Activity,
    /// `getM365AppUserDetail`: which Microsoft 365 apps, on which platforms.
    Apps,
    /// `getEmailActivityUserDetail`: mail sent, received and read, meetings.
    Email,
}

impl UsageReport {
    pub const ALL: [UsageReport; 3] = [Self::Activity, Self::Apps, Self::Email];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Activity => "activity",
            Self::Apps => "apps",
            Self::Email => "email",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }
}

impl std::fmt::Display for UsageReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One user's row of one usage report. Only the columns of its own report are filled; the
/// others stay `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRecord {
    key: String,
    report: UsageReport,
    user_principal_name: String,
    /// Activity and email reports.
    pub is_deleted: Option<bool>,
    /// Apps and email reports: the last day of any activity they count.
    pub last_activity: Option<String>,
    pub exchange_last_activity: Option<String>,
    pub onedrive_last_activity: Option<String>,
    pub sharepoint_last_activity: Option<String>,
    pub teams_last_activity: Option<String>,
    pub yammer_last_activity: Option<String>,
    pub skype_last_activity: Option<String>,
    pub has_exchange_license: Option<bool>,
    pub has_onedrive_license: Option<bool>,
    pub has_sharepoint_license: Option<bool>,
    pub has_teams_license: Option<bool>,
    /// Product names, sorted and joined by `+` as the report joins them, so that the report
    /// listing them in another order is no change.
    pub assigned_products: Option<String>,
    pub last_activation: Option<String>,
    pub windows: Option<bool>,
    pub mac: Option<bool>,
    pub mobile: Option<bool>,
    pub web: Option<bool>,
    pub outlook: Option<bool>,
    pub word: Option<bool>,
    pub excel: Option<bool>,
    pub powerpoint: Option<bool>,
    pub onenote: Option<bool>,
    pub teams: Option<bool>,
    pub send_count: Option<i64>,
    pub receive_count: Option<i64>,
    pub read_count: Option<i64>,
    pub meeting_created_count: Option<i64>,
    pub meeting_interacted_count: Option<i64>,
}

impl UsageRecord {
    /// An empty row of `report` for a user; the UPN is compared case-insensitively, so it is
    /// kept folded to lower case.
    pub fn new(report: UsageReport, user_principal_name: &str) -> Self {
        let upn = user_principal_name.trim().to_lowercase();
        Self {
            key: Self::key_of(report, &upn),
            report,
            user_principal_name: upn,
            is_deleted: None,
            last_activity: None,
            exchange_last_activity: None,
            onedrive_last_activity: None,
            sharepoint_last_activity: None,
            teams_last_activity: None,
            yammer_last_activity: None,
            skype_last_activity: None,
            has_exchange_license: None,
            has_onedrive_license: None,
            has_sharepoint_license: None,
            has_teams_license: None,
            assigned_products: None,
            last_activation: None,
            windows: None,
            mac: None,
            mobile: None,
            web: None,
            outlook: None,
            word: None,
            excel: None,
            powerpoint: None,
            onenote: None,
            teams: None,
            send_count: None,
            receive_count: None,
            read_count: None,
            meeting_created_count: None,
            meeting_interacted_count: None,
        }
    }

    /// The key of a user's row of a report: `activity:ann@contoso.com`.
    pub fn key_of(report: UsageReport, user_principal_name: &str) -> String {
        format!("{report}:{}", user_principal_name.to_lowercase())
    }

    pub fn report(&self) -> UsageReport {
        self.report
    }

    pub fn user_principal_name(&self) -> &str {
        &self.user_principal_name
    }

    /// `Microsoft 365 E3+Power BI Pro` from the report's names in any order and spacing;
    /// `None` when it names none.
    pub fn products(raw: Option<&str>) -> Option<String> {
        let mut products: Vec<&str> = raw
            .unwrap_or_default()
            .split('+')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        products.sort_unstable();
        products.dedup();
        (!products.is_empty()).then(|| products.join("+"))
    }
}

impl Keyed for UsageRecord {
    fn key(&self) -> &str {
        &self.key
    }
}

/// When a user last signed in, as Graph's `signInActivity` gives it (ISO 8601, UTC; `None` for
/// a user who never did, or before Microsoft recorded it).
#[derive(Debug, Clone, PartialEq)]
pub struct SignInRecord {
    /// The user's object id, lower-case as `ObjectId` writes it.
    pub object_id: String,
    /// Folded to lower case, as contacts are found by it.
    pub user_principal_name: Option<String>,
    pub last_sign_in: Option<String>,
    pub last_non_interactive_sign_in: Option<String>,
    pub last_successful_sign_in: Option<String>,
}

impl Keyed for SignInRecord {
    fn key(&self) -> &str {
        &self.object_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_keyed_by_its_report_and_the_folded_upn() {
        let row = UsageRecord::new(UsageReport::Apps, " Ann@Contoso.COM ");
        assert_eq!(row.key(), "apps:ann@contoso.com");
        assert_eq!(row.user_principal_name(), "ann@contoso.com");
        assert_eq!(row.report(), UsageReport::Apps);
        for report in UsageReport::ALL {
            assert_eq!(UsageReport::parse(report.as_str()), Some(report));
        }
        assert_eq!(UsageReport::parse("sign_in"), None);
    }

    #[test]
    fn products_in_another_order_are_the_same_products() {
        assert_eq!(
            UsageRecord::products(Some("OFFICE 365 E3 + Microsoft Teams+")),
            UsageRecord::products(Some("Microsoft Teams+OFFICE 365 E3"))
        );
        assert_eq!(UsageRecord::products(Some("B+A")).as_deref(), Some("A+B"));
        assert_eq!(UsageRecord::products(Some(" + ")), None);
        assert_eq!(UsageRecord::products(None), None);
    }
}
