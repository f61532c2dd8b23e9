//! Settings: the people who can log in and their roles.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
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

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    frame: Frame,
    users: Vec<UserView>,
    roles: Vec<&'static str>,
    problem: Option<String>,
    name: String,
    min_password: usize,
}

async fn settings_page(
    ui: &UiState,
    viewer: &Viewer,
    notice: Option<String>,
    problem: Option<String>,
    name: String,
) -> Response {
    let users = match ui.store.app_users().await {
        Ok(u) => u,
        Err(e) => return store_failure(viewer, e),
    };
    let status = if problem.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let body = SettingsPage {
        frame: viewer.frame("Settings", "settings").with_notice(notice),
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
    };
    (status, page(&body)).into_response()
}

pub(crate) async fn show(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<NoticeQuery>,
) -> Response {
    settings_page(&ui, &viewer, query.notice, None, String::new()).await
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
                None,
                Some(super::upper_first(&problem)),
                typed,
            )
            .await;
        }
    };
    let Some(role) = AppRole::parse(fields.get("role")) else {
        return settings_page(
            &ui,
            &viewer,
            None,
            Some("Choose the role: admin or viewer.".into()),
            typed,
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
                None,
                Some(super::upper_first(&problem)),
                typed,
            )
            .await;
        }
        Err(_) => {
            return settings_page(
                &ui,
                &viewer,
                None,
                Some("The password could not be hashed; try again.".into()),
                typed,
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
                None,
                Some(super::upper_first(&problem)),
                typed,
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
