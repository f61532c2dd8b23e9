//! Tenant-wide inventories: Graph payloads → normalised documents, and the warnings they raise.
//!
//! Documents use our own snake_case names; Microsoft's enums arrive PascalCase in payloads and
//! camelCase in its documentation, so both are folded to camelCase.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::InventoryItem;
use domain::groups::{GroupChange, GroupRecord};
use domain::usage::SignInRecord;
use graph::models::{
    Agreement, Application, Domain, ItemBody, ServiceHealth, ServiceHealthIssue,
    ServiceUpdateMessage,
};
use serde_json::{Value, json};
use store::RunWarning;

/// Days before a credential's end date from which a run warns.
pub const CREDENTIAL_WARNING_DAYS: i64 = 30;

/// `ServiceOperational` and `serviceOperational` both become `serviceOperational`.
pub fn enum_value(raw: &Option<String>) -> Value {
    match raw.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        None => Value::Null,
        Some(v) => {
            let mut chars = v.chars();
            let first = chars
                .next()
                .map(|c| c.to_ascii_lowercase().to_string())
                .unwrap_or_default();
            Value::String(first + chars.as_str())
        }
    }
}

fn body(b: &Option<ItemBody>) -> Value {
    match b {
        None => Value::Null,
        Some(b) => json!({ "content_type": enum_value(&b.content_type), "content": b.content }),
    }
}

fn name_or_key(name: &Option<String>, key: &str) -> String {
    name.as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(key)
        .to_string()
}

pub fn domain_item(d: &Domain) -> InventoryItem {
    let name = d.id.trim().to_lowercase();
    let mut services = d.supported_services.clone();
    services.sort();
    InventoryItem {
        key: name.clone(),
        name: name.clone(),
        document: json!({
            "name": name,
            "authentication_type": enum_value(&d.authentication_type),
            "is_default": d.is_default,
            "is_initial": d.is_initial,
            "is_root": d.is_root,
            "is_verified": d.is_verified,
            "is_admin_managed": d.is_admin_managed,
            "supported_services": services,
            "password_validity_period_in_days": d.password_validity_period_in_days,
            "password_notification_window_in_days": d.password_notification_window_in_days,
        }),
    }
}

pub fn service_health_item(s: &ServiceHealth) -> InventoryItem {
    InventoryItem {
        key: format!("service:{}", s.id),
        name: name_or_key(&s.service, &s.id),
        document: json!({ "kind": "service", "id": s.id, "service": s.service, "status": enum_value(&s.status) }),
    }
}

pub fn service_issue_item(i: &ServiceHealthIssue) -> InventoryItem {
    let posts: Vec<Value> = i
        .posts
        .iter()
        .map(|p| json!({ "created": p.created_date_time, "post_type": enum_value(&p.post_type), "description": body(&p.description) }))
        .collect();
    InventoryItem {
        key: format!("issue:{}", i.id),
        name: name_or_key(&i.title, &i.id),
        document: json!({
            "kind": "issue",
            "id": i.id,
            "title": i.title,
            "service": i.service,
            "feature": i.feature,
            "feature_group": i.feature_group,
            "impact_description": i.impact_description,
            "classification": enum_value(&i.classification),
            "origin": enum_value(&i.origin),
            "status": enum_value(&i.status),
            "is_resolved": i.is_resolved,
            "start": i.start_date_time,
            "end": i.end_date_time,
            "last_modified": i.last_modified_date_time,
            "posts": posts,
        }),
    }
}

pub fn service_message_item(m: &ServiceUpdateMessage) -> InventoryItem {
    InventoryItem {
        key: m.id.clone(),
        name: name_or_key(&m.title, &m.id),
        document: json!({
            "id": m.id,
            "title": m.title,
            "category": enum_value(&m.category),
            "severity": enum_value(&m.severity),
            "services": m.services,
            "tags": m.tags,
            "is_major_change": m.is_major_change,
            "action_required_by": m.action_required_by_date_time,
            "start": m.start_date_time,
            "end": m.end_date_time,
            "last_modified": m.last_modified_date_time,
            "body": body(&m.body),
        }),
    }
}

pub fn application_item(a: &Application) -> InventoryItem {
    let secrets: Vec<Value> = a
        .password_credentials
        .iter()
        .map(|c| json!({ "key_id": c.key_id, "display_name": c.display_name, "hint": c.hint, "start": c.start_date_time, "end": c.end_date_time }))
        .collect();
    let certificates: Vec<Value> = a
        .key_credentials
        .iter()
        .map(|c| json!({ "key_id": c.key_id, "display_name": c.display_name, "type": c.kind, "usage": c.usage, "start": c.start_date_time, "end": c.end_date_time }))
        .collect();
    InventoryItem {
        key: a.id.clone(),
        name: name_or_key(&a.display_name, &a.id),
        document: json!({
            "id": a.id,
            "app_id": a.app_id,
            "display_name": a.display_name,
            "sign_in_audience": a.sign_in_audience,
            "created": a.created_date_time,
            "secrets": secrets,
            "certificates": certificates,
        }),
    }
}

pub fn agreement_item(a: &Agreement) -> InventoryItem {
    InventoryItem {
        key: a.id.clone(),
        name: name_or_key(&a.display_name, &a.id),
        document: json!({
            "id": a.id,
            "display_name": a.display_name,
            "is_per_device_acceptance_required": a.is_per_device_acceptance_required,
            "is_viewing_before_acceptance_required": a.is_viewing_before_acceptance_required,
            "terms_expiration": a.terms_expiration.as_ref().map(|t| json!({ "start": t.start_date_time, "frequency": t.frequency })),
            "user_reaccept_required_frequency": a.user_reaccept_required_frequency,
        }),
    }
}

/// Warnings for every secret or certificate that has expired or expires within
/// [`CREDENTIAL_WARNING_DAYS`]. The connection's own app is named as such: when its secret
/// lapses, m365sync itself stops working.
pub fn credential_warnings(
    app: &Application,
    own_client_id: &str,
    now: DateTime<Utc>,
) -> Vec<RunWarning> {
    let who = match app.app_id.as_deref() {
        Some(id) if id.eq_ignore_ascii_case(own_client_id) => {
            format!(
                "m365sync's own app registration '{}'",
                name_or_key(&app.display_name, &app.id)
            )
        }
        Some(id) => format!(
            "app registration '{}' ({id})",
            name_or_key(&app.display_name, &app.id)
        ),
        None => format!(
            "app registration '{}'",
            name_or_key(&app.display_name, &app.id)
        ),
    };
    let secrets = app
        .password_credentials
        .iter()
        .map(|c| ("secret", &c.display_name, &c.end_date_time));
    let certificates = app
        .key_credentials
        .iter()
        .map(|c| ("certificate", &c.display_name, &c.end_date_time));
    secrets
        .chain(certificates)
        .filter_map(|(kind, label, end)| {
            let end = DateTime::parse_from_rfc3339(end.as_deref()?).ok()?.with_timezone(&Utc);
            let days = (end - now).num_days();
            let label = label.as_deref().map(|l| format!(" '{l}'")).unwrap_or_default();
            let date = end.format("%Y-%m-%d");
            if end <= now {
                Some(RunWarning { code: "credential_expired".into(), message: format!("the {kind}{label} of {who} expired on {date}") })
            } else if days <= CREDENTIAL_WARNING_DAYS {
                Some(RunWarning {
                    code: "credential_expiring".into(),
                    message: format!("the {kind}{label} of {who} expires in {days} days, on {date}; add a new one before then"),
                })
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audit_record_keeps_its_common_fields_as_columns_and_the_rest_whole() {
        let sent = json!({
            "Id": "5E6F7A8B-0000-4000-8000-00000000000A", "RecordType": 15,
            "CreationTime": "2026-11-30T09:15:02", "Operation": "UserLoggedIn",
            "Workload": "AzureActiveDirectory", "UserId": "Adele@Contoso.example", "UserType": 0,
            "ClientIP": "203.0.113.7", "ResultStatus": "Succeeded", "ObjectId": "portal",
            "ExtendedProperties": [{ "Name": "UserAgent", "Value": "Edge" }],
        });
        let record = audit_record(&sent, "Audit.AzureActiveDirectory").unwrap();
        assert_eq!(record.id, "5e6f7a8b-0000-4000-8000-00000000000a");
        assert_eq!(record.creation_time.as_deref(), Some("2026-11-30T09:15:02"));
        assert_eq!(record.operation.as_deref(), Some("UserLoggedIn"));
        assert_eq!(record.workload.as_deref(), Some("AzureActiveDirectory"));
        assert_eq!(record.record_type, Some(15));
        assert_eq!(record.user_id.as_deref(), Some("adele@contoso.example"));
        assert_eq!(record.user_type, Some(0));
        assert_eq!(record.client_ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(record.result_status.as_deref(), Some("Succeeded"));
        assert_eq!(record.object_id.as_deref(), Some("portal"));
        assert_eq!(
            record.content_type.as_deref(),
            Some("Audit.AzureActiveDirectory")
        );
        assert_eq!(record.record, sent);
    }

    #[test]
    fn a_client_address_is_kept_without_its_port_from_whichever_field_carries_it() {
        let ip = |fields: Value| {
            let mut record = json!({ "Id": "1", "Operation": "MailItemsAccessed" });
            for (k, v) in fields.as_object().unwrap() {
                record[k] = v.clone();
            }
            audit_record(&record, "Audit.Exchange").unwrap().client_ip
        };
        assert_eq!(
            ip(json!({ "ClientIP": "203.0.113.7:50325" })).as_deref(),
            Some("203.0.113.7")
        );
        assert_eq!(
            ip(json!({ "ClientIP": "[2001:DB8::7]:443" })).as_deref(),
            Some("2001:db8::7")
        );
        assert_eq!(
            ip(json!({ "ClientIP": "[2001:db8::7]" })).as_deref(),
            Some("2001:db8::7")
        );
        assert_eq!(
            ip(json!({ "ClientIPAddress": "198.51.100.4" })).as_deref(),
            Some("198.51.100.4")
        );
        assert_eq!(
            ip(json!({ "ClientIP": null, "ActorIpAddress": "198.51.100.9" })).as_deref(),
            Some("198.51.100.9")
        );
        assert_eq!(
            ip(json!({ "ClientIP": "not an address" })).as_deref(),
            Some("not an address")
        );
        assert_eq!(ip(json!({})), None);
    }

    #[test]
    fn an_audit_record_of_the_wrong_shape_loses_fields_not_itself() {
        let sent = json!({
            "Id": "b1", "RecordType": "fifteen", "UserType": 1.5, "Operation": 7,
            "CreationTime": "yesterday", "UserId": "",
        });
        let record = audit_record(&sent, "Audit.General").unwrap();
        assert_eq!(record.id, "b1");
        assert_eq!(
            (
                record.record_type,
                record.user_type,
                record.operation,
                record.creation_time,
                record.user_id
            ),
            (None, None, None, None, None)
        );
        assert_eq!(record.record, sent);
        for nameless in [
            json!({ "Operation": "x" }),
            json!({ "Id": 5 }),
            json!({ "Id": " " }),
            json!([]),
            json!(null),
        ] {
            assert_eq!(audit_record(&nameless, "Audit.General"), None, "{nameless}");
        }
    }

    #[test]
    fn an_audit_time_with_a_zone_is_brought_to_utc_and_one_without_kept_as_sent() {
        assert_eq!(
            audit_time("2026-11-30T09:15:02").as_deref(),
            Some("2026-11-30T09:15:02")
        );
        assert_eq!(
            audit_time("2026-11-30T09:15:02.125").as_deref(),
            Some("2026-11-30T09:15:02.125")
        );
        assert_eq!(
            audit_time("2026-11-30T09:15:02Z").as_deref(),
            Some("2026-11-30T09:15:02")
        );
        assert_eq!(
            audit_time("2026-11-30T10:15:02+01:00").as_deref(),
            Some("2026-11-30T09:15:02")
        );
        assert_eq!(audit_time("30/11/2026"), None);
    }

    #[test]
    fn enums_fold_to_camel_case() {
        assert_eq!(
            enum_value(&Some("ServiceOperational".into())),
            json!("serviceOperational")
        );
        assert_eq!(enum_value(&Some("advisory".into())), json!("advisory"));
        assert_eq!(enum_value(&Some(" ".into())), Value::Null);
    }

    #[test]
    fn credentials_warn_when_expired_or_close() {
        let app: Application = serde_json::from_value(json!({
            "id": "obj", "appId": "client-1", "displayName": "Payroll",
            "passwordCredentials": [
                {"displayName": "old", "endDateTime": "2026-01-01T00:00:00Z"},
                {"displayName": "soon", "endDateTime": "2026-12-03T10:00:00.0000000Z"},
                {"displayName": "later", "endDateTime": "2027-06-01T00:00:00Z"}
            ],
            "keyCredentials": [{"displayName": "cert", "endDateTime": "2026-11-30T00:00:00Z"}]
        }))
        .unwrap();
        let now = DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let warnings = credential_warnings(&app, "CLIENT-1", now);
        let codes: Vec<&str> = warnings.iter().map(|w| w.code.as_str()).collect();
        assert_eq!(
            codes,
            vec![
                "credential_expired",
                "credential_expiring",
                "credential_expiring"
            ]
        );
        assert!(
            warnings[0]
                .message
                .contains("m365sync's own app registration 'Payroll'")
        );
        assert!(warnings[1].message.contains("in 10 days, on 2026-12-03"));
        assert!(warnings[2].message.contains("certificate 'cert'"));
    }

    fn entry(value: Value) -> graph::models::GroupDelta {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn group_entries_merge_into_one_change_per_group() {
        let mut changes = BTreeMap::new();
        merge_group_entry(
            &mut changes,
            entry(json!({
                "id": "G-1", "displayName": "Staff", "groupTypes": ["Unified", "DynamicMembership"],
                "visibility": "Private", "securityEnabled": false, "mailEnabled": true,
                "members@delta": [
                    {"@odata.type": "#microsoft.graph.user", "id": "U-1"},
                    {"@odata.type": "#microsoft.graph.device", "id": "d-1"},
                    {"id": ""}
                ]
            })),
        );
        // A later page: only member changes, no properties.
        merge_group_entry(
            &mut changes,
            entry(json!({
                "id": "g-1",
                "members@delta": [
                    {"id": "u-2"},
                    {"@odata.type": "#microsoft.graph.user", "id": "u-1", "@removed": {"reason": "deleted"}}
                ]
            })),
        );
        merge_group_entry(
            &mut changes,
            entry(json!({"id": "g-2", "@removed": {"reason": "changed"}})),
        );
        merge_group_entry(&mut changes, entry(json!({"id": " "})));
        assert_eq!(changes.len(), 2);
        let staff = &changes["g-1"];
        let properties = staff.properties.as_ref().unwrap();
        assert_eq!(properties.object_id, "g-1");
        assert_eq!(properties.group_types, ["DynamicMembership", "Unified"]);
        assert_eq!(properties.visibility.as_deref(), Some("private"));
        assert_eq!(
            staff.joined,
            BTreeMap::from([
                ("d-1".to_string(), Some("device".to_string())),
                ("u-2".to_string(), None)
            ])
        );
        assert_eq!(staff.left.iter().collect::<Vec<_>>(), ["u-1"]);
        assert!(!staff.removed);
        assert!(changes["g-2"].removed);
    }
}

/// The usage reports' rows as typed rows, one per user per report.
pub mod usage {
    use domain::ids::is_concealed_name;
    use domain::usage::{UsageRecord, UsageReport};
    use graph::models::{ActiveUserRow, AppUserRow, EmailActivityRow};

    /// Why a row was not kept.
    #[derive(Debug, PartialEq, Eq)]
    pub enum Skip {
        Concealed,
        NoName,
    }

    fn named(report: UsageReport, raw: &Option<String>) -> Result<UsageRecord, Skip> {
        let raw = raw.as_deref().map(str::trim).unwrap_or_default();
        if is_concealed_name(raw) {
            return Err(Skip::Concealed);
        }
        if !raw.contains('@') {
            return Err(Skip::NoName);
        }
        Ok(UsageRecord::new(report, raw))
    }

    /// A report's day, `None` when the cell is empty (never active).
    fn day(raw: &Option<String>) -> Option<String> {
        raw.as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(String::from)
    }

    pub fn activity(row: &ActiveUserRow) -> Result<UsageRecord, Skip> {
        let mut record = named(UsageReport::Activity, &row.user_principal_name)?;
        record.is_deleted = row.is_deleted;
        record.exchange_last_activity = day(&row.exchange_last_activity);
        record.onedrive_last_activity = day(&row.onedrive_last_activity);
        record.sharepoint_last_activity = day(&row.sharepoint_last_activity);
        record.teams_last_activity = day(&row.teams_last_activity);
        record.yammer_last_activity = day(&row.yammer_last_activity);
        record.skype_last_activity = day(&row.skype_last_activity);
        record.has_exchange_license = row.has_exchange_license;
        record.has_onedrive_license = row.has_onedrive_license;
        record.has_sharepoint_license = row.has_sharepoint_license;
        record.has_teams_license = row.has_teams_license;
        record.assigned_products = UsageRecord::products(row.assigned_products.as_deref());
        Ok(record)
    }

    pub fn apps(row: &AppUserRow) -> Result<UsageRecord, Skip> {
        let mut record = named(UsageReport::Apps, &row.user_principal_name)?;
        record.last_activation = day(&row.last_activation_date);
        record.last_activity = day(&row.last_activity_date);
        record.windows = row.windows;
        record.mac = row.mac;
        record.mobile = row.mobile;
        record.web = row.web;
        record.outlook = row.outlook;
        record.word = row.word;
        record.excel = row.excel;
        record.powerpoint = row.powerpoint;
        record.onenote = row.onenote;
        record.teams = row.teams;
        Ok(record)
    }

    pub fn email(row: &EmailActivityRow) -> Result<UsageRecord, Skip> {
        let mut record = named(UsageReport::Email, &row.user_principal_name)?;
        record.is_deleted = row.is_deleted;
        record.last_activity = day(&row.last_activity_date);
        record.send_count = row.send_count;
        record.receive_count = row.receive_count;
        record.read_count = row.read_count;
        record.meeting_created_count = row.meeting_created_count;
        record.meeting_interacted_count = row.meeting_interacted_count;
        Ok(record)
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use domain::rows::Keyed;

        #[test]
        fn rows_are_keyed_by_report_and_upn_and_fill_only_their_columns() {
            let row = ActiveUserRow {
                user_principal_name: Some(" Ann@Contoso.example ".into()),
                assigned_products: Some("Office 365 E3+Microsoft Teams".into()),
                exchange_last_activity: Some("".into()),
                teams_last_activity: Some("2026-11-20".into()),
                has_teams_license: Some(true),
                ..ActiveUserRow::default()
            };
            let record = activity(&row).unwrap();
            assert_eq!(record.key(), "activity:ann@contoso.example");
            assert_eq!(
                record.assigned_products.as_deref(),
                Some("Microsoft Teams+Office 365 E3")
            );
            assert_eq!(record.exchange_last_activity, None);
            assert_eq!(record.teams_last_activity.as_deref(), Some("2026-11-20"));
            assert_eq!(record.send_count, None);

            let mail = email(&EmailActivityRow {
                user_principal_name: Some("ann@contoso.example".into()),
                send_count: Some(4),
                ..EmailActivityRow::default()
            })
            .unwrap();
            assert_eq!(mail.key(), "email:ann@contoso.example");
            assert_eq!(mail.send_count, Some(4));
            assert_eq!(mail.has_teams_license, None);
        }

        #[test]
        fn concealed_and_nameless_rows_are_not_kept() {
            let concealed = AppUserRow {
                user_principal_name: Some("FE7CC8C15246EDCCA289C9A4022762F7".into()),
                ..AppUserRow::default()
            };
            assert_eq!(apps(&concealed).unwrap_err(), Skip::Concealed);
            assert_eq!(apps(&AppUserRow::default()).unwrap_err(), Skip::NoName);
        }
    }
}

fn members_json(members: &[graph::models::DirectoryObject]) -> Vec<Value> {
    let mut list: Vec<Value> = members
        .iter()
        .map(|m| {
            let kind = m.odata_type.as_deref().map(|t| t.trim_start_matches("#microsoft.graph.").to_string());
            json!({ "id": m.id, "type": kind, "display_name": m.display_name, "user_principal_name": m.user_principal_name })
        })
        .collect();
    list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    list
}

/// A group's properties as kept, keyed by its object id in lower case (as contacts key users).
pub fn group_record(g: &graph::models::Group) -> GroupRecord {
    let mut group_types: Vec<String> = g
        .group_types
        .iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    group_types.sort();
    group_types.dedup();
    GroupRecord {
        object_id: g.id.trim().to_lowercase(),
        display_name: g.display_name.clone(),
        description: g.description.clone(),
        mail: g.mail.clone(),
        mail_enabled: g.mail_enabled,
        security_enabled: g.security_enabled,
        group_types,
        visibility: enum_value(&g.visibility).as_str().map(str::to_string),
        created: g.created_date_time.clone(),
    }
}

/// Folds one entry of a groups delta round into what the round says of its group: a group's
/// members can arrive over several entries, on several pages. An entry or member without an id
/// names nothing and is passed over.
pub fn merge_group_entry(
    changes: &mut BTreeMap<String, GroupChange>,
    entry: graph::models::GroupDelta,
) {
    let key = entry.group.id.trim().to_lowercase();
    if key.is_empty() {
        return;
    }
    let change = changes.entry(key).or_default();
    if entry.removed.is_some() {
        change.group_removed();
        return;
    }
    // An entry that only carries member changes names no properties: what is stored stays.
    let properties = entry
        .group
        .display_name
        .is_some()
        .then(|| group_record(&entry.group));
    change.group_seen(properties);
    for member in entry.members_delta {
        let id = member.id.trim().to_lowercase();
        if id.is_empty() {
            continue;
        }
        if member.removed.is_some() {
            change.member_left(id);
        } else {
            let kind = member
                .odata_type
                .as_deref()
                .map(|t| t.trim_start_matches("#microsoft.graph.").to_string())
                .filter(|t| !t.is_empty());
            change.member_joined(id, kind);
        }
    }
}

pub fn directory_role_item(
    r: &graph::models::DirectoryRole,
    members: &[graph::models::DirectoryObject],
) -> InventoryItem {
    InventoryItem {
        key: r.id.clone(),
        name: name_or_key(&r.display_name, &r.id),
        document: json!({
            "id": r.id, "display_name": r.display_name, "description": r.description, "role_template_id": r.role_template_id,
            "member_count": members.len(), "members": members_json(members),
        }),
    }
}

/// A user's last sign-ins, keyed by object id. A user whose id is not an object id is left
/// out: it could be kept under no identity.
pub fn sign_in_record(u: &graph::models::UserSignIns) -> Option<SignInRecord> {
    let object_id = domain::ObjectId::parse(&u.id).ok()?;
    let activity = u.sign_in_activity.clone().unwrap_or_default();
    let time = |raw: Option<String>| raw.filter(|t| !t.trim().is_empty());
    Some(SignInRecord {
        object_id: object_id.to_string(),
        user_principal_name: u
            .user_principal_name
            .as_deref()
            .map(str::trim)
            .filter(|upn| !upn.is_empty())
            .map(str::to_lowercase),
        last_sign_in: time(activity.last_sign_in_date_time),
        last_non_interactive_sign_in: time(activity.last_non_interactive_sign_in_date_time),
        last_successful_sign_in: time(activity.last_successful_sign_in_date_time),
    })
}

/// A piece of software found on devices, with the devices that have it.
pub fn detected_app_item(
    a: &graph::models::DetectedApp,
    mut device_ids: Vec<String>,
) -> InventoryItem {
    device_ids.sort();
    InventoryItem {
        key: a.id.clone(),
        name: name_or_key(&a.display_name, &a.id),
        document: json!({
            "id": a.id, "display_name": a.display_name, "version": a.version, "publisher": a.publisher,
            "platform": enum_value(&a.platform), "size_bytes": a.size_in_byte, "device_count": a.device_count,
            "device_ids": device_ids,
        }),
    }
}

/// An audit record: its common schema fields as columns, and the whole record as it came.
/// Records without an `Id` cannot be told apart and are dropped; a common field of the wrong
/// type is left empty rather than losing the record (the record keeps it as sent).
pub fn audit_record(record: &Value, content_type: &str) -> Option<domain::AuditRecord> {
    let text = |field: &str| {
        record[field]
            .as_str()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let number = |field: &str| record[field].as_i64();
    let id = text("Id")?.to_lowercase();
    Some(domain::AuditRecord {
        id,
        creation_time: text("CreationTime").and_then(|t| audit_time(&t)),
        operation: text("Operation"),
        workload: text("Workload"),
        record_type: number("RecordType"),
        user_id: text("UserId").map(|u| u.to_lowercase()),
        user_type: number("UserType"),
        // The common field first; some workloads write the address only under their own name
        // (Exchange mailbox auditing's ClientIPAddress, Entra ID's ActorIpAddress).
        client_ip: ["ClientIP", "ClientIPAddress", "ActorIpAddress"]
            .into_iter()
            .find_map(&text)
            .map(|ip| client_address(&ip)),
        result_status: text("ResultStatus"),
        object_id: text("ObjectId"),
        content_type: Some(content_type.to_string()),
        record: record.clone(),
    })
}

/// The address of a client as the audit log writes it, without the port some workloads add
/// ("203.0.113.7:50325", "[2001:db8::7]:443"), so that one address is one value to search; a
/// value that is no address is kept as sent.
fn client_address(raw: &str) -> String {
    if let Ok(ip) = raw.parse::<std::net::IpAddr>() {
        return ip.to_string();
    }
    match raw.parse::<std::net::SocketAddr>() {
        Ok(socket) => socket.ip().to_string(),
        Err(_) => raw
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .and_then(|inner| inner.parse::<std::net::IpAddr>().ok())
            .map_or_else(|| raw.to_string(), |ip| ip.to_string()),
    }
}

/// A `CreationTime` as the common schema writes it: UTC without a zone, kept as sent; one
/// with a zone is brought to that form, so that times compare as text. Not a time: `None`.
fn audit_time(raw: &str) -> Option<String> {
    if chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f").is_ok() {
        return Some(raw.to_string());
    }
    DateTime::parse_from_rfc3339(raw).ok().map(|t| {
        t.with_timezone(&Utc)
            .naive_utc()
            .format("%Y-%m-%dT%H:%M:%S%.f")
            .to_string()
    })
}
