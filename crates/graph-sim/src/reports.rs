//! Usage reports: a 302 to a pre-authenticated download on a second listener, which, like
//! Microsoft's download host, has no use for a bearer token (it refuses one, so a client that
//! leaks its token fails the tests).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::stream;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::SimState;
use crate::api::{REPORT_ROLES, authorize, graph_error};
use crate::catalog::SKUS;
use crate::people::{SimUser, hash3, mix};
use crate::state::{Report, ReportKind, civil_date, lock};

const DOWNLOAD_LIFETIME: Duration = Duration::from_secs(300);
const ROWS_PER_CHUNK: usize = 2_000;

const ACTIVE_USER_HEADER: &str = "Report Refresh Date,User Principal Name,Display Name,Is Deleted,Deleted Date,Has Exchange License,Has OneDrive License,Has SharePoint License,Has Skype For Business License,Has Yammer License,Has Teams License,Exchange Last Activity Date,OneDrive Last Activity Date,SharePoint Last Activity Date,Skype For Business Last Activity Date,Yammer Last Activity Date,Teams Last Activity Date,Exchange License Assign Date,OneDrive License Assign Date,SharePoint License Assign Date,Skype For Business License Assign Date,Yammer License Assign Date,Teams License Assign Date,Assigned Products";
const APP_USER_HEADER: &str = "Report Refresh Date,User Principal Name,Last Activation Date,Last Activity Date,Report Period,Windows,Mac,Mobile,Web,Outlook,Word,Excel,PowerPoint,OneNote,Teams";
const EMAIL_HEADER: &str = "Report Refresh Date,User Principal Name,Display Name,Is Deleted,Deleted Date,Last Activity Date,Send Count,Receive Count,Read Count,Meeting Created Count,Meeting Interacted Count,Assigned Products,Report Period";

/// How the active-user report names a SKU in its `Assigned Products` column.
fn product_label(part_number: &str) -> &'static str {
    match part_number {
        "SPE_E3" => "MICROSOFT 365 E3",
        "ENTERPRISEPACK" => "OFFICE 365 E3",
        "O365_BUSINESS_PREMIUM" => "MICROSOFT 365 BUSINESS STANDARD",
        "SPB" => "MICROSOFT 365 BUSINESS PREMIUM",
        "EXCHANGESTANDARD" => "EXCHANGE ONLINE (PLAN 1)",
        "POWER_BI_STANDARD" => "POWER BI (FREE)",
        "FLOW_FREE" => "MICROSOFT POWER AUTOMATE FREE",
        _ => "MICROSOFT TEAMS PREMIUM",
    }
}

const MAILBOX_HEADER: &str = "Report Refresh Date,User Principal Name,Display Name,Is Deleted,Deleted Date,Created Date,Last Activity Date,Item Count,Storage Used (Byte),Issue Warning Quota (Byte),Prohibit Send Quota (Byte),Prohibit Send/Receive Quota (Byte),Deleted Item Count,Deleted Item Size (Byte),Deleted Item Quota (Byte),Has Archive,Recipient Type,Report Period";

pub(crate) async fn report(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    Path(function): Path<String>,
) -> Response {
    let Some(kind) = parse_function(&function) else {
        return graph_error(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Resource not found for the segment '{function}'."),
        );
    };
    let kind = match kind {
        Ok(k) => k,
        Err(message) => {
            return graph_error(
                &state,
                &headers,
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &message,
            );
        }
    };
    let tenant = match authorize(&state, &headers, REPORT_ROLES) {
        Ok(t) => t,
        Err(r) => return r,
    };
    state.count(|s| s.report_requests += 1);
    let token = state.request_id().replace('-', "");
    lock(&state.downloads).insert(
        token.clone(),
        (state.tenant_position(tenant), kind, Instant::now()),
    );
    let location = format!("{}/data/download/{token}", state.download_url);
    (
        StatusCode::FOUND,
        [
            ("location", location.as_str()),
            ("content-type", "text/plain"),
        ],
        "",
    )
        .into_response()
}

/// `getMailboxUsageDetail(period='D7')` → the report, or an error message for a bad period.
fn parse_function(function: &str) -> Option<Result<ReportKind, String>> {
    let (name, args) = function.split_once('(')?;
    let args = args.strip_suffix(')')?;
    let report = match name {
        "getMailboxUsageDetail" => Report::MailboxUsage,
        "getOffice365ActiveUserDetail" => Report::ActiveUser,
        "getM365AppUserDetail" => Report::AppUser,
        "getEmailActivityUserDetail" => Report::EmailActivity,
        _ => return None,
    };
    let period = args
        .strip_prefix("period=")
        .map(|p| p.trim_matches('\''))
        .unwrap_or_default();
    let period_days = match period {
        "D7" => 7,
        "D30" => 30,
        "D90" => 90,
        "D180" => 180,
        other => {
            return Some(Err(format!(
                "Invalid value '{other}' for period. Allowed values are D7, D30, D90 and D180."
            )));
        }
    };
    Some(Ok(ReportKind {
        report,
        period_days,
    }))
}

pub(crate) fn download_router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/data/download/{token}", get(download))
        .with_state(state)
}

async fn download(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    if headers.contains_key("authorization") {
        return (
            StatusCode::BAD_REQUEST,
            "This download is pre-authenticated; an Authorization header must not be sent here.",
        )
            .into_response();
    }
    let entry = lock(&state.downloads).get(&token).copied();
    let Some((tenant_position, kind, created)) = entry else {
        return (StatusCode::NOT_FOUND, "The download link is unknown.").into_response();
    };
    if created.elapsed() > DOWNLOAD_LIFETIME {
        return (StatusCode::NOT_FOUND, "The download link has expired.").into_response();
    }
    state.count(|s| s.downloads += 1);
    let rows = MailboxRows {
        state: state.clone(),
        tenant_position,
        next: 0,
        period_days: kind.period_days,
        report: kind.report,
        header_sent: false,
    };
    let body = Body::from_stream(stream::unfold(rows, |mut rows| async move {
        let chunk = rows.next_chunk()?;
        Some((Ok::<_, std::convert::Infallible>(chunk), rows))
    }));
    (
        StatusCode::OK,
        [("content-type", "application/octet-stream")],
        body,
    )
        .into_response()
}

/// Produces the mailbox report a chunk at a time: the state of the tenant is read as the file
/// is written, like a real export running while the directory changes.
struct MailboxRows {
    state: Arc<SimState>,
    tenant_position: usize,
    next: u64,
    period_days: u32,
    report: Report,
    header_sent: bool,
}

impl MailboxRows {
    fn next_chunk(&mut self) -> Option<String> {
        let tenant = &self.state.tenants[self.tenant_position];
        let mut out = String::new();
        if !self.header_sent {
            self.header_sent = true;
            // Microsoft's CSV files begin with a byte-order mark and end lines with CRLF.
            out.push('\u{feff}');
            out.push_str(match self.report {
                Report::MailboxUsage => MAILBOX_HEADER,
                Report::ActiveUser => ACTIVE_USER_HEADER,
                Report::AppUser => APP_USER_HEADER,
                Report::EmailActivity => EMAIL_HEADER,
            });
            out.push_str("\r\n");
        }
        let end = tenant.index_space();
        if self.next >= end {
            return (!out.is_empty()).then_some(out);
        }
        let concealed = tenant.concealed.load(std::sync::atomic::Ordering::SeqCst);
        let (users, next) = tenant.users_from(self.next, ROWS_PER_CHUNK);
        let first = self.next;
        self.next = next.unwrap_or(end);
        if self.report != Report::MailboxUsage {
            for user in &users {
                self.push_usage_row(&mut out, user, concealed);
            }
            return Some(out);
        }
        for user in users.iter().filter(|u| u.has_mailbox) {
            self.push_row(&mut out, user, concealed);
        }
        // Mailboxes of people who left: deleted in the directory, still in the report.
        for index in first..self.next {
            if index % 97 == 96 {
                self.push_deleted_row(&mut out, index, &tenant.custom_domain, concealed);
            }
        }
        Some(out)
    }

    /// A row of one of the usage reports, for a licensed user (the reports list who holds a
    /// licence or had a mailbox in the period).
    fn push_usage_row(&self, out: &mut String, user: &SimUser, concealed: bool) {
        if user.licenses.is_empty() && !user.has_mailbox {
            return;
        }
        let r = hash3(0x05a6e, user.id.as_u128() as u64, 0);
        let day = self.state.report_day;
        let date = |salt: u64, idle: bool| {
            if idle {
                String::new()
            } else {
                civil_date(day - (mix(r ^ salt) % 28) as i64)
            }
        };
        let yes = |salt: u64| {
            if mix(r ^ salt).is_multiple_of(3) {
                "No"
            } else {
                "Yes"
            }
        };
        let (upn, name) = names(&user.upn.to_lowercase(), &user.display_name, concealed);
        let refresh = civil_date(day);
        let idle = r.is_multiple_of(13);
        let line = match self.report {
            Report::ActiveUser => {
                let products: Vec<&str> = user
                    .licenses
                    .iter()
                    .map(|(sku, _)| product_label(SKUS[*sku].part_number))
                    .collect();
                let has = |service: &str| {
                    if user.licenses.iter().any(|(sku, _)| {
                        SKUS[*sku].plans.iter().any(|p| p.name.starts_with(service))
                    }) {
                        "True"
                    } else {
                        "False"
                    }
                };
                format!(
                    "{refresh},{},{},False,,{},{},{},False,False,{},{},{},{},,,{},,,,,,,{}",
                    csv_field(&upn),
                    csv_field(&name),
                    has("EXCHANGE"),
                    has("SHAREPOINT"),
                    has("SHAREPOINT"),
                    has("TEAMS"),
                    date(1, idle || !user.has_mailbox),
                    date(2, idle),
                    date(3, idle),
                    date(4, idle),
                    csv_field(&products.join("+")),
                )
            }
            Report::AppUser => format!(
                "{refresh},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                csv_field(&upn),
                date(5, false),
                date(6, idle),
                self.period_days,
                yes(7),
                yes(8),
                yes(9),
                yes(10),
                yes(11),
                yes(12),
                yes(13),
                yes(14),
                yes(15),
                yes(16),
            ),
            Report::EmailActivity => {
                if !user.has_mailbox {
                    return;
                }
                format!(
                    "{refresh},{},{},False,,{},{},{},{},{},{},,{}",
                    csv_field(&upn),
                    csv_field(&name),
                    date(17, idle),
                    mix(r ^ 18) % 300,
                    mix(r ^ 19) % 900,
                    mix(r ^ 20) % 800,
                    mix(r ^ 21) % 20,
                    mix(r ^ 22) % 40,
                    self.period_days,
                )
            }
            Report::MailboxUsage => return,
        };
        out.push_str(&line);
        out.push_str("\r\n");
    }

    fn push_row(&self, out: &mut String, user: &SimUser, concealed: bool) {
        let r = hash3(0x3a11, user.id.as_u128() as u64, 0);
        let big = user
            .licenses
            .iter()
            .any(|(sku, _)| matches!(SKUS[*sku].part_number, "SPE_E3" | "ENTERPRISEPACK"));
        let (warn, send, send_receive): (i64, i64, i64) = if big {
            (105_226_698_752, 106_300_440_576, 107_374_182_400)
        } else {
            (52_613_349_376, 53_150_220_288, 53_687_091_200)
        };
        let used = (r % 40_000) as i64 * 1_000_000 + (mix(r) % 1_000_000) as i64;
        let items = (mix(r ^ 1) % 150_000) as i64;
        let day = self.state.report_day;
        let created = civil_date(day - 30 - (r % 3_000) as i64);
        let last_activity = if r.is_multiple_of(11) {
            String::new()
        } else {
            civil_date(day - (r % 20) as i64)
        };
        let (upn, name) = names(&user.upn.to_lowercase(), &user.display_name, concealed);
        let deleted_items = (mix(r ^ 2) % 5_000) as i64;
        out.push_str(&format!(
            "{},{},{},False,,{created},{last_activity},{items},{used},{warn},{send},{send_receive},{deleted_items},{},{},{},{},{}\r\n",
            civil_date(day),
            csv_field(&upn),
            csv_field(&name),
            deleted_items * 40_000,
            32_212_254_720i64,
            if big && r.is_multiple_of(4) { "True" } else { "False" },
            if user.kind == crate::people::Kind::SharedMailbox { "Shared" } else { "User" },
            self.period_days,
        ));
    }

    fn push_deleted_row(&self, out: &mut String, index: u64, domain: &str, concealed: bool) {
        let day = self.state.report_day;
        let (upn, name) = names(
            &format!("former.staff{index}@{domain}"),
            &format!("Former Staff {index}"),
            concealed,
        );
        out.push_str(&format!(
            "{},{},{},True,{},{},,0,1048576,52613349376,53150220288,53687091200,0,0,32212254720,False,User,{}\r\n",
            civil_date(day),
            csv_field(&upn),
            csv_field(&name),
            civil_date(day - 3),
            civil_date(day - 900),
            self.period_days,
        ));
    }
}

/// With names concealed, both UPN and display name become 32 upper-case hex characters.
fn names(upn: &str, display_name: &str, concealed: bool) -> (String, String) {
    if !concealed {
        return (upn.to_string(), display_name.to_string());
    }
    let pseudonym = |s: &str| {
        Sha256::digest(s.as_bytes())
            .iter()
            .take(16)
            .map(|b| format!("{b:02X}"))
            .collect::<String>()
    };
    (pseudonym(upn), pseudonym(&format!("name:{upn}")))
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

/// `/admin/reportSettings`: whether reports conceal user, group and site names.
pub(crate) async fn report_settings(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
) -> Response {
    let tenant = match crate::api::authorize(
        &state,
        &headers,
        &["ReportSettings.Read.All", "ReportSettings.ReadWrite.All"],
    ) {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let body = json!({
        "@odata.context": format!("{}/v1.0/$metadata#admin/reportSettings/$entity", state.base_url),
        "id": "",
        "displayConcealedNames": tenant.concealed.load(std::sync::atomic::Ordering::SeqCst),
    });
    crate::api::graph_ok(&state, &headers, body.to_string())
}

/// `PATCH /admin/reportSettings`: an administrator turns concealment on or off.
pub(crate) async fn update_report_settings(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let tenant = match crate::api::authorize(&state, &headers, &["ReportSettings.ReadWrite.All"]) {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let parsed: Option<serde_json::Map<String, Value>> = serde_json::from_slice(&body).ok();
    let Some(concealed) = parsed
        .as_ref()
        .filter(|m| {
            m.keys()
                .all(|k| k == "displayConcealedNames" || k.starts_with("@odata"))
        })
        .and_then(|m| m.get("displayConcealedNames"))
        .and_then(Value::as_bool)
    else {
        return crate::api::graph_error(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The request body must be {\"displayConcealedNames\": true|false}.",
        );
    };
    tenant
        .concealed
        .store(concealed, std::sync::atomic::Ordering::SeqCst);
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_functions_and_periods() {
        assert!(matches!(
            parse_function("getMailboxUsageDetail(period='D30')"),
            Some(Ok(ReportKind {
                report: Report::MailboxUsage,
                period_days: 30
            }))
        ));
        assert!(matches!(
            parse_function("getMailboxUsageDetail(period='D8')"),
            Some(Err(_))
        ));
        assert!(parse_function("getSomethingElse(period='D7')").is_none());
    }

    #[test]
    fn concealed_names_are_hex() {
        let (upn, name) = names("ann@contoso.example", "Ann", true);
        assert_eq!(upn.len(), 32);
        assert!(
            upn.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
        assert_ne!(upn, name);
        assert_eq!(csv_field("O'Brien, Ann"), "\"O'Brien, Ann\"");
    }
}
