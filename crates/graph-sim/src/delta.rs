//! `/users/delta`: a full round page by page ending in a delta link, then rounds of only the
//! changes since, with `@removed` for users who left. Tokens are opaque to clients; inside they
//! carry the tenant, the tenant's change counter and the `$select`, as Graph's encode the query.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::api::{
    Opened, Resource, USER_DEFAULT_FIELDS, USER_FIELDS, USER_ROLES, graph_error, graph_ok,
    listable, open, param, project, users_page_answer, users_page_refusal,
};
use crate::people::mix;
use crate::state::{DeltaExpiry, Tenant, lock};
use crate::{SimState, inventory};

const DELTA: Resource = Resource {
    roles: USER_ROLES,
    options: &["$select", "$skiptoken", "$deltatoken"],
    fields: &USER_FIELDS,
    type_name: "user",
};
const DEFAULT_PAGE: usize = 200;

/// Where a round stands, as carried by a token.
enum Position {
    /// The full round: the next user index, the page number, the version the round started at.
    Full { start: u64, page: u32, version: u64 },
    /// A changes round: changes after `since`, from the `offset`th, up to version `upto`.
    Changes {
        since: u64,
        offset: usize,
        upto: u64,
    },
}

fn seal(parts: &[String]) -> String {
    let body = parts.join("|");
    let check = mix(body.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })) % 1_000_000;
    URL_SAFE_NO_PAD.encode(format!("{body}|{check}"))
}

fn unseal(token: &str) -> Option<Vec<String>> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let (body, check) = text.rsplit_once('|')?;
    let parts: Vec<String> = body.split('|').map(str::to_string).collect();
    (seal(&parts) == URL_SAFE_NO_PAD.encode(format!("{body}|{check}"))).then_some(parts)
}

fn skiptoken(tenant: u64, position: &Position, select: &str) -> String {
    let parts = match position {
        Position::Full {
            start,
            page,
            version,
        } => vec![
            "f".into(),
            tenant.to_string(),
            start.to_string(),
            page.to_string(),
            version.to_string(),
        ],
        Position::Changes {
            since,
            offset,
            upto,
        } => vec![
            "c".into(),
            tenant.to_string(),
            since.to_string(),
            offset.to_string(),
            upto.to_string(),
        ],
    };
    seal(&[parts, vec![select.to_string()]].concat())
}

fn parse_skiptoken(token: &str, tenant: u64) -> Option<(Position, String)> {
    let p = unseal(token)?;
    if p.len() != 6 || p[1] != tenant.to_string() {
        return None;
    }
    let n = |i: usize| p[i].parse::<u64>().ok();
    let position = match p[0].as_str() {
        "f" => Position::Full {
            start: n(2)?,
            page: n(3)? as u32,
            version: n(4)?,
        },
        "c" => Position::Changes {
            since: n(2)?,
            offset: n(3)? as usize,
            upto: n(4)?,
        },
        _ => return None,
    };
    Some((position, p[5].clone()))
}

/// A delta token: the tenant, the version it covers, the epoch it was issued in (tokens of an
/// older epoch are forgotten) and the `$select`.
fn deltatoken(tenant: u64, version: u64, epoch: u64, select: &str) -> String {
    seal(&[
        "d".into(),
        tenant.to_string(),
        version.to_string(),
        epoch.to_string(),
        select.to_string(),
    ])
}

fn parse_deltatoken(token: &str, tenant: u64) -> Option<(u64, u64, String)> {
    let p = unseal(token)?;
    if p.len() != 5 || p[0] != "d" || p[1] != tenant.to_string() {
        return None;
    }
    Some((p[2].parse().ok()?, p[3].parse().ok()?, p[4].clone()))
}

/// `Prefer: odata.maxpagesize=N`, honoured up to 999.
fn page_size(headers: &HeaderMap) -> usize {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| {
            p.trim()
                .strip_prefix("odata.maxpagesize=")
                .and_then(|n| n.trim().parse::<usize>().ok())
        })
        .map_or(DEFAULT_PAGE, |n| n.clamp(1, 999))
}

pub(crate) async fn users_delta(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let (tenant, pairs, fields): Opened = match open(&state, &headers, raw.as_deref(), &DELTA) {
        Ok(opened) => opened,
        Err(r) => return r,
    };
    if let Err(refusal) = listable(&state, &headers, fields.as_deref()) {
        return refusal;
    }
    let first_select = fields.as_ref().map(|f| f.join(",")).unwrap_or_default();
    if param(&pairs, "$deltatoken") == Some("latest") {
        return respond(
            &state,
            &headers,
            tenant,
            vec![],
            None,
            Some(tenant.version()),
            &first_select,
        );
    }
    let (position, select) = match round_start(
        &state,
        &headers,
        tenant,
        &pairs,
        first_select,
        Collection::Users,
    ) {
        Ok(start) => start,
        Err(response) => return response,
    };
    let size = page_size(&headers);
    let fields: Vec<&str> = if select.is_empty() {
        USER_DEFAULT_FIELDS.to_vec()
    } else {
        select.split(',').collect()
    };
    match position {
        Position::Full {
            start,
            page,
            version,
        } => {
            state.count(|s| s.users_pages += 1);
            if let Some(refusal) = users_page_refusal(&state, &headers, tenant, page) {
                return refusal;
            }
            let (users, next) = tenant.users_from(start, size);
            let items: Vec<_> = users.iter().map(|u| u.selected(&fields)).collect();
            let next = next.map(|start| Position::Full {
                start,
                page: page + 1,
                version,
            });
            let done = next.is_none().then_some(version);
            let body = page_body(&state, tenant, items, next, done, &select);
            users_page_answer(&state, &headers, tenant, page, body)
        }
        Position::Changes {
            since,
            offset,
            upto,
        } => {
            let changes: Vec<_> = tenant
                .changes_since(since)
                .into_iter()
                .filter(|(i, _)| tenant.changed_at(*i) <= upto)
                .collect();
            let replayed = (offset == 0)
                .then(|| lock(&tenant.faults).replay_removed_user)
                .flatten()
                .map(|index| {
                    json!({
                        "id": tenant.population.user(index).id.to_string(),
                        "@removed": { "reason": "changed" },
                    })
                });
            let items = replayed
                .into_iter()
                .chain(changes.iter().skip(offset).take(size).map(|(index, user)| {
                    match user {
                        Some(user) => user.select(&fields),
                        // In the recycle bin a user is `changed` (it may come back); purged,
                        // `deleted`.
                        None => json!({
                            "id": tenant.population.user(*index).id.to_string(),
                            "@removed": { "reason": if tenant.purged(*index) { "deleted" } else { "changed" } },
                        }),
                    }
                }))
                .collect::<Vec<Value>>();
            let next = (offset + size < changes.len()).then_some(Position::Changes {
                since,
                offset: offset + size,
                upto,
            });
            let done = next.is_none().then_some(upto);
            respond(&state, &headers, tenant, items, next, done, &select)
        }
    }
}

fn respond(
    state: &SimState,
    headers: &HeaderMap,
    tenant: &Tenant,
    items: Vec<Value>,
    next: Option<Position>,
    done: Option<u64>,
    select: &str,
) -> Response {
    let body = page_body(state, tenant, items, next, done, select);
    graph_ok(state, headers, body)
}

/// A page of a users round: its items, then the link to the next page or the delta link.
fn page_body<I: serde::Serialize>(
    state: &SimState,
    tenant: &Tenant,
    items: Vec<I>,
    next: Option<Position>,
    done: Option<u64>,
    select: &str,
) -> String {
    #[derive(serde::Serialize)]
    // The links come before the items, where Graph writes them.
    struct Page<I> {
        #[serde(rename = "@odata.context")]
        context: String,
        #[serde(rename = "@odata.nextLink", skip_serializing_if = "Option::is_none")]
        next_link: Option<String>,
        #[serde(rename = "@odata.deltaLink", skip_serializing_if = "Option::is_none")]
        delta_link: Option<String>,
        value: Vec<I>,
    }
    let next_link = next.map(|next| {
        format!(
            "{}/v1.0/users/delta?$skiptoken={}",
            state.base_url,
            skiptoken(tenant.index, &next, select)
        )
    });
    let delta_link = done.filter(|_| next_link.is_none()).map(|version| {
        format!(
            "{}/v1.0/users/delta?$deltatoken={}",
            state.base_url,
            deltatoken(
                tenant.index,
                version,
                tenant.delta_epoch.load(Ordering::SeqCst),
                select
            )
        )
    });
    let page = Page {
        context: format!("{}/v1.0/$metadata#users", state.base_url),
        value: items,
        next_link,
        delta_link,
    };
    serde_json::to_string(&page).expect("a page is plain JSON")
}

/// The collections with delta rounds; a token of one is refused by the other.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Collection {
    Users,
    Groups,
}

impl Collection {
    fn path(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Groups => "groups",
        }
    }

    fn owns(self, select: &str) -> bool {
        select.starts_with(GROUPS_MARK) == (self == Self::Groups)
    }
}

/// Where a round starts from the request's tokens: a delta token's changes (410 when its epoch
/// is gone), a skip token's page, or the beginning of a whole round.
fn round_start(
    state: &SimState,
    headers: &HeaderMap,
    tenant: &Tenant,
    pairs: &[(String, String)],
    first_select: String,
    collection: Collection,
) -> Result<(Position, String), Response> {
    let bad = |message: &str| {
        graph_error(
            state,
            headers,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            message,
        )
    };
    if let Some(token) = param(pairs, "$deltatoken") {
        let Some((since, epoch, select)) =
            parse_deltatoken(token, tenant.index).filter(|(_, _, select)| collection.owns(select))
        else {
            return Err(bad("Invalid delta token."));
        };
        if epoch < tenant.delta_epoch.load(Ordering::SeqCst) {
            if *lock(&tenant.delta_expiry) == DeltaExpiry::SyncStateNotFound {
                return Err(graph_error(
                    state,
                    headers,
                    StatusCode::BAD_REQUEST,
                    "syncStateNotFound",
                    "The sync state generation is not found. Restart the delta round without a token.",
                ));
            }
            let mut response = graph_error(
                state,
                headers,
                StatusCode::GONE,
                "resyncRequired",
                "The delta token is no longer valid. Restart the delta round from the Location given.",
            );
            let fresh = format!(
                "{}/v1.0/{}/delta?$select={}",
                state.base_url,
                collection.path(),
                select.trim_start_matches(GROUPS_MARK)
            );
            if let Ok(v) = HeaderValue::from_str(&fresh) {
                response.headers_mut().insert("location", v);
            }
            return Err(response);
        }
        return Ok((
            Position::Changes {
                since,
                offset: 0,
                upto: tenant.version(),
            },
            select,
        ));
    }
    if let Some(token) = param(pairs, "$skiptoken") {
        return match parse_skiptoken(token, tenant.index) {
            Some(found) if collection.owns(&found.1) => Ok(found),
            _ => Err(bad("Invalid or expired skip token.")),
        };
    }
    Ok((
        Position::Full {
            start: 0,
            page: 1,
            version: tenant.version(),
        },
        first_select,
    ))
}

/// Group tokens carry this before their `$select`, so that a users token is never taken for a
/// groups one or the other way round.
const GROUPS_MARK: &str = "groups:";

const GROUPS_DELTA: Resource = Resource {
    roles: inventory::GROUPS.roles,
    options: &["$select", "$skiptoken", "$deltatoken"],
    fields: inventory::GROUP_FIELDS_AND_MEMBERS,
    type_name: "group",
};

/// `/groups/delta`: the first round lists every group and, with `members` selected, its members
/// as `members@delta` — spread over pages, so one group can come back on several pages with more
/// members each time, as Graph's does. Later rounds bring only the groups whose members changed,
/// with the members added and, marked `@removed`, those who left.
pub(crate) async fn groups_delta(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let (tenant, pairs, fields): Opened =
        match open(&state, &headers, raw.as_deref(), &GROUPS_DELTA) {
            Ok(opened) => opened,
            Err(r) => return r,
        };
    let first_select = format!(
        "{GROUPS_MARK}{}",
        fields.as_ref().map(|f| f.join(",")).unwrap_or_default()
    );
    let (position, select) = match round_start(
        &state,
        &headers,
        tenant,
        &pairs,
        first_select,
        Collection::Groups,
    ) {
        Ok(start) => start,
        Err(response) => return response,
    };
    let chosen: Vec<&str> = select
        .trim_start_matches(GROUPS_MARK)
        .split(',')
        .filter(|f| !f.is_empty())
        .collect();
    let with_members = chosen.is_empty() || chosen.contains(&"members");
    let group_fields: Vec<&str> = chosen.iter().copied().filter(|f| *f != "members").collect();
    let shown = |i: usize, members: Vec<Value>| {
        let full = inventory::group_json(&state, tenant, i);
        let mut group = if group_fields.is_empty() {
            full
        } else {
            project(full, &group_fields)
        };
        if with_members {
            group["members@delta"] = json!(members);
        }
        group
    };
    let member = |user: &crate::people::SimUser| json!({"@odata.type": "#microsoft.graph.user", "id": user.id.to_string()});
    let groups = inventory::GROUP_DEFS.len();
    let (items, next, done) = match position {
        Position::Full {
            start,
            page,
            version,
        } => {
            let (users, next) = tenant.users_from(start, page_size(&headers));
            let items: Vec<Value> = (0..groups)
                .filter_map(|g| {
                    let members: Vec<Value> = users
                        .iter()
                        .filter(|u| inventory::group_has(g, u))
                        .map(member)
                        .collect();
                    // The first page names every group; later ones only those with more members.
                    (page == 1 || !members.is_empty()).then(|| shown(g, members))
                })
                .collect();
            let next = next.map(|start| Position::Full {
                start,
                page: page + 1,
                version,
            });
            let done = next.is_none().then_some(version);
            (items, next, done)
        }
        Position::Changes { since, upto, .. } => {
            let changes: Vec<_> = tenant
                .changes_since(since)
                .into_iter()
                .filter(|(i, _)| tenant.changed_at(*i) <= upto)
                .collect();
            let items: Vec<Value> = (0..groups)
                .filter_map(|g| {
                    let members: Vec<Value> = changes
                        .iter()
                        .filter_map(|(index, now)| {
                            let before = tenant.population.user(*index);
                            match now {
                                Some(user) if inventory::group_has(g, user) => Some(member(user)),
                                _ if inventory::group_has(g, &before) => Some(json!({
                                    "@odata.type": "#microsoft.graph.user", "id": before.id.to_string(),
                                    "@removed": {"reason": "deleted"},
                                })),
                                _ => None,
                            }
                        })
                        .collect();
                    (!members.is_empty()).then(|| shown(g, members))
                })
                .collect();
            (items, None, Some(upto))
        }
    };
    let mut body = json!({ "@odata.context": format!("{}/v1.0/$metadata#groups", state.base_url), "value": items });
    if let Some(next) = next {
        body["@odata.nextLink"] = json!(format!(
            "{}/v1.0/groups/delta?$skiptoken={}",
            state.base_url,
            skiptoken(tenant.index, &next, &select)
        ));
    } else if let Some(version) = done {
        body["@odata.deltaLink"] = json!(format!(
            "{}/v1.0/groups/delta?$deltatoken={}",
            state.base_url,
            deltatoken(
                tenant.index,
                version,
                tenant.delta_epoch.load(Ordering::SeqCst),
                &select
            )
        ));
    }
    graph_ok(&state, &headers, body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let token = skiptoken(
            2,
            &Position::Full {
                start: 400,
                page: 3,
                version: 9,
            },
            "id,displayName",
        );
        match parse_skiptoken(&token, 2) {
            Some((
                Position::Full {
                    start: 400,
                    page: 3,
                    version: 9,
                },
                select,
            )) => assert_eq!(select, "id,displayName"),
            _ => panic!("skiptoken did not round-trip"),
        }
        assert!(parse_skiptoken(&token, 3).is_none());
        assert_eq!(
            parse_deltatoken(&deltatoken(1, 5, 2, "id"), 1),
            Some((5, 2, "id".to_string()))
        );
        let forged = URL_SAFE_NO_PAD.encode("d|1|0|0|id|123");
        assert_eq!(parse_deltatoken(&forged, 1), None);
    }
}
