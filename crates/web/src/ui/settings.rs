//! Settings: the people who can log in and their roles, and the API tokens programs use (made
//! and revoked under the rules `m365sync token` follows: the token shown once, only its hash kept).

use super::PagePath as Path;
use super::PageQuery as Query;
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use store::AppRole;

use super::connections::NoticeQuery;
use super::format::{time, time_or};
use super::{Fields, Frame, UiState, Viewer, done, error_page, not_found, page, store_failure};
use crate::auth;

struct UserView {
    id: i64,
    name: String,
    role: &'static str,
    created: String,
    last_login: String,
}

struct TokenView {
    name: String,
    role: &'static str,
    starts_with: String,
    created: String,
    last_used: String,
    revoked: Option<String>,
}

/// A token just made: its text is on this one page and nowhere else.
struct IssuedView {
    name: String,
    role: &'static str,
    secret: String,
}

/// What one answer of the settings page carries besides the lists.
#[derive(Default)]
struct Extra {
    notice: Option<String>,
    /// The add-a-person form's problem and typed name.
    problem: Option<String>,
    name: String,
    /// The make-a-token form's problem and typed name.
    token_problem: Option<String>,
    token_name: String,
    issued: Option<IssuedView>,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    frame: Frame,
    users: Vec<UserView>,
    roles: Vec<&'static str>,
    problem: Option<String>,
    name: String,
    min_password: usize,
    tokens: Vec<TokenView>,
    token_problem: Option<String>,
    token_name: String,
    issued: Option<IssuedView>,
}

async fn settings_page(ui: &UiState, viewer: &Viewer, extra: Extra) -> Response {
    let users = match ui.store.app_users().await {
        Ok(u) => u,
        Err(e) => return store_failure(viewer, e),
    };
    let tokens = match ui.store.api_tokens().await {
        Ok(t) => t,
        Err(e) => return store_failure(viewer, e),
    };
    let Extra {
        notice,
        problem,
        name,
        token_problem,
        token_name,
        issued,
    } = extra;
    let status = if problem.is_some() || token_problem.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let body = SettingsPage {
        frame: Frame {
            // Already checked: a sealed notice from the address, or this server's own words.
            notice,
            ..viewer.frame("Settings", "settings")
        },
        users: users
            .into_iter()
            .map(|u| UserView {
                id: u.id,
                name: u.name,
                role: u.role.as_str(),
                created: time(u.created_at),
                last_login: time_or(u.last_login_at, "never"),
            })
            .collect(),
        roles: vec![AppRole::Admin.as_str(), AppRole::Viewer.as_str()],
        problem,
        name,
        min_password: auth::MIN_PASSWORD_CHARS,
        tokens: tokens
            .into_iter()
            .map(|t| TokenView {
                name: t.name,
                role: t.role.as_str(),
                starts_with: t.shown,
                created: time(t.created_at),
                last_used: time_or(t.last_used_at, "never"),
                revoked: t.revoked_at.map(time),
            })
            .collect(),
        token_problem,
        token_name,
        issued,
    };
    (status, page(&body)).into_response()
}

pub(crate) async fn show(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<NoticeQuery>,
) -> Response {
    settings_page(
        &ui,
        &viewer,
        Extra {
            notice: query
                .notice
                .as_deref()
                .and_then(|sealed| super::verified_notice(&viewer.path, sealed)),
            ..Extra::default()
        },
    )
    .await
}

pub(crate) async fn create_user(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    fields: Fields,
) -> Response {
    let typed = fields.get("name").to_string();
    let name = match auth::check_user_name(&typed) {
        Ok(name) => name,
        Err(problem) => {
            return settings_page(
                &ui,
                &viewer,
                Extra {
                    problem: Some(super::upper_first(&problem)),
                    name: typed,
                    ..Extra::default()
                },
            )
            .await;
        }
    };
    let Some(role) = AppRole::parse(fields.get("role")) else {
        return settings_page(
            &ui,
            &viewer,
            Extra {
                problem: Some("Choose the role: admin or viewer.".into()),
                name: typed,
                ..Extra::default()
            },
        )
        .await;
    };
    let password = fields.get("password").to_string();
    let hash = match tokio::task::spawn_blocking(move || auth::hash_password(&password)).await {
        Ok(Ok(hash)) => hash,
        Ok(Err(problem)) => {
            return settings_page(
                &ui,
                &viewer,
                Extra {
                    problem: Some(super::upper_first(&problem)),
                    name: typed,
                    ..Extra::default()
                },
            )
            .await;
        }
        Err(_) => {
            return settings_page(
                &ui,
                &viewer,
                Extra {
                    problem: Some("The password could not be hashed; try again.".into()),
                    name: typed,
                    ..Extra::default()
                },
            )
            .await;
        }
    };
    match ui.store.create_app_user(&name, &hash, role).await {
        Ok(user) => done(
            "/settings",
            &format!("Added {} as {}.", user.name, user.role),
        ),
        Err(store::StoreError::Conflict(problem)) => {
            settings_page(
                &ui,
                &viewer,
                Extra {
                    problem: Some(super::upper_first(&problem)),
                    name: typed,
                    ..Extra::default()
                },
            )
            .await
        }
        Err(e) => store_failure(&viewer, e),
    }
}

fn user_id(id: &str) -> Option<i64> {
    id.parse::<i64>().ok()
}

pub(crate) async fn set_role(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    fields: Fields,
) -> Response {
    let Some(id) = user_id(&id) else {
        return not_found(&viewer, "user");
    };
    let Some(role) = AppRole::parse(fields.get("role")) else {
        return error_page(
            Some(&viewer),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose the role: admin or viewer.",
        );
    };
    match ui.store.set_app_user_role(id, role).await {
        Ok(user) => done("/settings", &format!("{} is now {}.", user.name, user.role)),
        Err(e) => store_failure(&viewer, e),
    }
}

pub(crate) async fn set_password(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    fields: Fields,
) -> Response {
    let Some(id) = user_id(&id) else {
        return not_found(&viewer, "user");
    };
    let password = fields.get("password").to_string();
    let hash = match tokio::task::spawn_blocking(move || auth::hash_password(&password)).await {
        Ok(Ok(hash)) => hash,
        Ok(Err(problem)) => {
            return error_page(
                Some(&viewer),
                StatusCode::UNPROCESSABLE_ENTITY,
                super::upper_first(&problem),
            );
        }
        Err(_) => {
            return error_page(
                Some(&viewer),
                StatusCode::INTERNAL_SERVER_ERROR,
                "The password could not be hashed; try again.",
            );
        }
    };
    match ui.store.set_app_user_password(id, &hash).await {
        Ok(()) => done(
            "/settings",
            "Password changed; that person's sessions have ended.",
        ),
        Err(e) => store_failure(&viewer, e),
    }
}

pub(crate) async fn remove_user(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Response {
    let Some(id) = user_id(&id) else {
        return not_found(&viewer, "user");
    };
    match ui.store.remove_app_user(id).await {
        Ok(user) => done("/settings", &format!("Removed {}.", user.name)),
        Err(e) => store_failure(&viewer, e),
    }
}

/// Makes an API token and shows it on this answer only (pages are sent `no-store`).
pub(crate) async fn create_token(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    fields: Fields,
) -> Response {
    let typed = fields.get("name").to_string();
    let refuse = |problem: String| Extra {
        token_problem: Some(problem),
        token_name: typed.clone(),
        ..Extra::default()
    };
    let Some(role) = store::ApiRole::parse(fields.get("role")) else {
        return settings_page(
            &ui,
            &viewer,
            refuse("Choose the token's role: viewer or admin.".into()),
        )
        .await;
    };
    match ui.store.issue_api_token(&typed, role).await {
        Ok(issued) => {
            let notice = format!(
                "Token '{}' made. It is shown below this once: copy it into the program's secret store now.",
                issued.token.name
            );
            settings_page(
                &ui,
                &viewer,
                Extra {
                    notice: Some(notice),
                    issued: Some(IssuedView {
                        name: issued.token.name.clone(),
                        role: issued.token.role.as_str(),
                        secret: issued.secret.clone(),
                    }),
                    ..Extra::default()
                },
            )
            .await
        }
        Err(store::StoreError::Conflict(problem)) => {
            settings_page(&ui, &viewer, refuse(super::upper_first(&problem))).await
        }
        Err(e) => store_failure(&viewer, e),
    }
}

/// Revokes a live token by its name: requests with it are refused from now on.
pub(crate) async fn revoke_token(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    fields: Fields,
) -> Response {
    match ui.store.revoke_api_token(fields.get("name")).await {
        Ok(token) => done(
            "/settings",
            &format!(
                "Token '{}' is revoked: requests with it are refused from now on.",
                token.name
            ),
        ),
        Err(store::StoreError::NotFound(problem)) => error_page(
            Some(&viewer),
            StatusCode::NOT_FOUND,
            format!(
                "{} Reload Settings to see the live tokens.",
                super::upper_first(&problem)
            ),
        ),
        Err(e) => store_failure(&viewer, e),
    }
}
