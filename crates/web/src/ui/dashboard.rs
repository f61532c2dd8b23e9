//! The dashboard: each connection's state, last and next run, and everything that needs a
//! person, each with its fix.

use super::PageQuery as Query;
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use domain::{RunStatus, TenantState};
use store::RunRow;

use super::connections::NoticeQuery;
use super::format::{time, time_or};
use super::{Frame, UiState, Viewer, charts, page, store_failure};

pub(crate) struct Attention {
    pub(crate) what: String,
    pub(crate) fix: String,
    pub(crate) href: Option<String>,
    pub(crate) link: String,
}

pub(crate) struct ConnectionCard {
    name: String,
    state: &'static str,
    state_class: &'static str,
    last_run: String,
    last_run_href: Option<String>,
    next_run: String,
    last_test: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    frame: Frame,
    attention: Vec<Attention>,
    connections: Vec<ConnectionCard>,
    runs_chart: Option<String>,
}

/// A day in milliseconds: certificates expiring within 30 of them are flagged.
const DAY: i64 = 24 * 60 * 60 * 1000;

fn warning_fix(code: &str) -> String {
    match code {
        "report_names_concealed" => format!(
            "In the Microsoft 365 admin center, turn off \"{}\" (Settings › Org settings › Reports), then sync again.",
            sync::CONCEALED_SETTING
        ),
        "credential_expired" | "credential_expiring" => {
            "In Entra ID › App registrations, add a new secret or certificate to that app before the old one ends, and put it where it is used.".into()
        }
        _ => "Read the run's log for what happened, then sync again.".into(),
    }
}

pub(crate) async fn show(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let store = &ui.store;
    let loaded = async {
        Ok::<_, store::StoreError>((
            store.connections().await?,
            store.runs(None, 200).await?,
            store.schedules().await?,
            // Counts only: what waits is listed on its own page.
            store.tenant_counts().await?,
            store.review_items_page(false, 0, 0).await?.1,
        ))
    }
    .await;
    let (connections, runs, schedules, tenant_counts, held) = match loaded {
        Ok(all) => all,
        Err(e) => return store_failure(&viewer, e),
    };
    let now = store::now_millis();
    let mut attention = Vec::new();
    let mut cards = Vec::new();
    for c in &connections {
        let name = c.name.to_string();
        let last: Option<&RunRow> = runs
            .iter()
            .find(|r| r.connection_name == name && !matches!(r.status, RunStatus::Queued));
        let schedule = schedules.iter().find(|s| s.connection_id == c.id);
        let page_of = format!("/connections/{name}");
        match c.last_test_passed {
            None => attention.push(Attention {
                what: format!("Connection {name} has never been tested."),
                fix: "Test it: the test says what is missing (consent, permissions, a wrong secret).".into(),
                href: Some(page_of.clone()),
                link: "Open the connection".into(),
            }),
            Some(false) => attention.push(Attention {
                what: format!("Connection {name} failed its last test."),
                fix: "Test it again and follow the diagnosis (missing permissions, consent or credential).".into(),
                href: Some(page_of.clone()),
                link: "Open the connection".into(),
            }),
            Some(true) => {}
        }
        if let Some(cert) = &c.certificate {
            let expires = cert.expires_at * 1000;
            if expires <= now {
                attention.push(Attention {
                    what: format!("The certificate of connection {name} expired on {}.", super::format::day(expires)),
                    fix: "Make a new certificate, upload it to the app registration, and give it to the connection (Edit).".into(),
                    href: Some(format!("{page_of}/edit")),
                    link: "Edit the connection".into(),
                });
            } else if expires - now < 30 * DAY {
                attention.push(Attention {
                    what: format!("The certificate of connection {name} expires on {}.", super::format::day(expires)),
                    fix: "Upload a new certificate to the app registration before then, and give it to the connection (Edit).".into(),
                    href: Some(format!("{page_of}/edit")),
                    link: "Edit the connection".into(),
                });
            }
        }
        if let Some(run) = last {
            if matches!(run.status, RunStatus::Failed | RunStatus::Partial) {
                attention.push(Attention {
                    what: format!(
                        "The last run of {name} (run {}) {}{}",
                        run.id,
                        if run.status == RunStatus::Failed { "failed" } else { "was partial" },
                        run.message.as_deref().map(|m| format!(": {m}")).unwrap_or_else(|| ".".into())
                    ),
                    fix: "Read the run's log for the failed steps and their cause, fix it, then sync again.".into(),
                    href: Some(format!("/runs/{}", run.id)),
                    link: "Read the run's log".into(),
                });
            }
            for warning in &run.warnings {
                attention.push(Attention {
                    what: format!("Run {} of {name}: {}", run.id, warning.message),
                    fix: warning_fix(&warning.code),
                    href: Some(format!("/runs/{}", run.id)),
                    link: "Read the run's log".into(),
                });
            }
        }
        let (state, state_class) = match (last.map(|r| r.status), c.last_test_passed) {
            (_, Some(false)) => ("test failed", "bad"),
            (Some(RunStatus::Failed), _) => ("failing", "bad"),
            (Some(RunStatus::Partial), _) => ("partial", "warn"),
            (Some(RunStatus::Running), _) => ("syncing", "warn"),
            (Some(RunStatus::Succeeded), _) => ("ok", "good"),
            (Some(RunStatus::Cancelled), _) => ("cancelled", "warn"),
            _ => ("not synced yet", ""),
        };
        cards.push(ConnectionCard {
            name: name.clone(),
            state,
            state_class,
            last_run: last
                .map(|r| {
                    format!(
                        "{} · run {} · {}",
                        r.status,
                        r.id,
                        time_or(r.started_at, "not started")
                    )
                })
                .unwrap_or_else(|| "none yet".into()),
            last_run_href: last.map(|r| format!("/runs/{}", r.id)),
            next_run: match schedule {
                Some(s) if s.schedule.is_some() => time_or(s.next_run_at, "not due again"),
                _ => "when asked (no schedule)".into(),
            },
            last_test: match (c.last_tested_at, c.last_test_passed) {
                (Some(at), Some(true)) => format!("passed {}", time(at)),
                (Some(at), _) => format!("failed {}", time(at)),
                _ => "never".into(),
            },
        });
    }
    let waiting: i64 = tenant_counts
        .iter()
        .filter(|(state, _)| matches!(state, TenantState::Unmatched | TenantState::Suggested))
        .map(|(_, n)| n)
        .sum();
    if waiting > 0 {
        attention.push(Attention {
            what: format!("{waiting} tenant(s) await a decision on their organisation."),
            fix: "Accept a suggestion, match each to an organisation, create one, or ignore the tenant.".into(),
            href: Some("/tenants?state=unmatched".into()),
            link: "Open Tenants".into(),
        });
    }
    if held > 0 {
        attention.push(Attention {
            what: format!(
                "{held} user(s) were held because more than one contact could be theirs."
            ),
            fix: "Link each to the right contact, or create a new one.".into(),
            href: Some("/review".into()),
            link: "Open the review queue".into(),
        });
    }
    if connections.is_empty() {
        attention.push(Attention {
            what: "There is no connection yet, so nothing is synced.".into(),
            fix:
                "Add a connection with the tenant ID, client ID and secret of an app registration."
                    .into(),
            href: viewer.is_admin().then(|| "/connections/new".into()),
            link: "Add a connection".into(),
        });
    }
    match store.accounts().await {
        Ok(accounts) => attention.extend(super::accounts::attention(&accounts, now)),
        Err(e) => return store_failure(&viewer, e),
    }
    let runs_chart = (!runs.is_empty()).then(|| charts::runs_over_time(&runs));
    page(&Dashboard {
        frame: viewer
            .frame("Dashboard", "dashboard")
            .with_notice(query.notice),
        attention,
        connections: cards,
        runs_chart,
    })
}
