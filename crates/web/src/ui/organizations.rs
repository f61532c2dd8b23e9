//! Organisations → contacts (search, sort, filter, numbered pages, badges) → a contact with its
//! Microsoft 365 overlay; and each organisation's datasets: licences, domains, groups, admins,
//! devices, software, service health, app registrations, terms of use and audit activity.

use super::PagePath as Path;
use super::PageQuery as Query;
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use domain::{Dataset, TenantId};
use serde::Deserialize;
use serde_json::Value;
use store::{ContactKind, ContactRow, ContactSearch, ContactSort, OrganizationRow};

use super::format::{self, Badge, Cell, Link, PageLink, Table, TablePage, bytes, opt, time};
use super::{Frame, UiState, Viewer, charts, not_found, page, store_failure};

const PAGE_SIZE: i64 = 50;

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    page: Option<String>,
}

pub(crate) async fn list(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<ListQuery>,
) -> Response {
    let asked_page = format::page_number(query.page.as_deref());
    let loaded = format::clamped_page(asked_page, PAGE_SIZE, |offset| {
        ui.store.organizations_page(offset, PAGE_SIZE)
    })
    .await;
    let (organizations, total, number) = match loaded {
        Ok(found) => found,
        Err(e) => return store_failure(&viewer, e),
    };
    let mut table = Table::new(
        "organizations",
        &["Organisation", "Tenant", "Domains", "#Contacts"],
        "No organisations yet: a connection's first sync files its tenant under one.",
    );
    for org in &organizations {
        let mut name = Cell::link(&org.name, format!("/organizations/{}", org.id));
        if org.archived {
            name = name.badge("archived", "");
        }
        table.row(vec![
            name,
            Cell::text(
                org.tenant_name
                    .clone()
                    .or(org.tenant_id.clone())
                    .unwrap_or_else(|| "not linked".into()),
            ),
            Cell::text(org.verified_domains.join(", ")),
            Cell::num(org.contacts),
        ]);
    }
    let mut body = TablePage::new(viewer.frame("Organisations", "organizations"), vec![table]);
    body.intro = (total > PAGE_SIZE).then(|| format!("{total} organisations, {PAGE_SIZE} a page."));
    body.pages = format::pager(number, total, PAGE_SIZE, |n| {
        format!("/organizations?page={n}")
    });
    page(&body)
}

/// The tabs of an organisation's pages.
fn tabs(org: &OrganizationRow, active: &str) -> Vec<Link> {
    let mut tabs = vec![Link {
        key: "contacts".into(),
        label: "Contacts".into(),
        href: format!("/organizations/{}", org.id),
        active: active == "contacts",
    }];
    for (key, label) in DATASET_PAGES {
        tabs.push(Link {
            key: key.to_string(),
            label: label.to_string(),
            href: format!("/organizations/{}/{key}", org.id),
            active: active == *key,
        });
    }
    tabs.push(Link {
        key: "report".into(),
        label: "Report (HTML file)".into(),
        href: format!("/organizations/{}/report.html", org.id),
        active: false,
    });
    tabs
}

const DATASET_PAGES: &[(&str, &str)] = &[
    ("licenses", "Licences"),
    ("domains", "Domains"),
    ("groups", "Groups"),
    ("admins", "Admins"),
    ("devices", "Devices"),
    ("software", "Software"),
    ("waste", "Licence waste"),
    ("trends", "Trends"),
    ("service-health", "Service health"),
    ("apps", "App registrations"),
    ("terms", "Terms of use"),
    ("audit", "Audit"),
];

async fn organization(
    ui: &UiState,
    viewer: &Viewer,
    id: &str,
) -> Result<OrganizationRow, Response> {
    let Ok(id) = id.parse::<i64>() else {
        return Err(not_found(viewer, "organisation"));
    };
    match ui.store.organization(id).await {
        Ok(Some(org)) => Ok(org),
        Ok(None) => Err(not_found(viewer, "organisation")),
        Err(e) => Err(store_failure(viewer, e)),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct ContactsQuery {
    q: Option<String>,
    only: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    page: Option<String>,
}

struct OrgView {
    id: i64,
    name: String,
    tenant: String,
    contacts: i64,
    domains: String,
}

struct ContactLine {
    id: i64,
    name: String,
    badges: Vec<Badge>,
    upn: String,
    title: String,
    department: String,
    licenses: String,
    mailbox: String,
}

struct SortHeader {
    label: &'static str,
    href: Option<String>,
    arrow: &'static str,
    num: bool,
}

#[derive(Template)]
#[template(path = "contacts.html")]
struct ContactsPage {
    frame: Frame,
    org: OrgView,
    tabs: Vec<Link>,
    q: String,
    only: String,
    sort: String,
    dir: String,
    kinds: Vec<(&'static str, &'static str)>,
    total: i64,
    first: i64,
    last: i64,
    headers: Vec<SortHeader>,
    contacts: Vec<ContactLine>,
    pages: Vec<PageLink>,
}

const KINDS: [(&str, &str); 7] = [
    ("", "All active"),
    ("licensed", "Licensed"),
    ("unlicensed", "Unlicensed"),
    ("disabled", "Disabled"),
    ("guest", "Guests"),
    ("shared", "Shared mailboxes"),
    ("archived", "Archived"),
];

fn kind_of(text: &str) -> Option<ContactKind> {
    Some(match text {
        "licensed" => ContactKind::Licensed,
        "unlicensed" => ContactKind::Unlicensed,
        "disabled" => ContactKind::Disabled,
        "guest" => ContactKind::Guest,
        "shared" => ContactKind::Shared,
        "archived" => ContactKind::Archived,
        _ => return None,
    })
}

const SORTS: [(&str, &str, ContactSort); 4] = [
    ("name", "Name", ContactSort::Name),
    ("upn", "User principal name", ContactSort::Upn),
    ("title", "Job title", ContactSort::JobTitle),
    ("department", "Department", ContactSort::Department),
];

pub(crate) fn badges(contact: &ContactRow) -> Vec<Badge> {
    let mut badges = Vec::new();
    if !contact.licenses.is_empty() {
        badges.push(Badge::new("licensed", "good"));
    }
    if contact.account_enabled == Some(false) {
        badges.push(Badge::new("disabled", "bad"));
    }
    if contact
        .user_type
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("guest"))
    {
        badges.push(Badge::new("guest", "warn"));
    }
    if contact
        .mailbox
        .as_ref()
        .and_then(|m| m.recipient_type.as_deref())
        .is_some_and(|t| t == "shared")
    {
        badges.push(Badge::new("shared", ""));
    }
    if contact.archived {
        badges.push(Badge::new("archived", ""));
    }
    if contact.object_id.is_none() {
        badges.push(Badge::new("local", ""));
    }
    badges
}

pub(crate) async fn contacts(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Query(query): Query<ContactsQuery>,
) -> Response {
    let org = match organization(&ui, &viewer, &id).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let q = crate::query::search_text(query.q.as_deref().unwrap_or_default());
    let only = query.only.clone().unwrap_or_default();
    if !only.is_empty() && kind_of(&only).is_none() {
        let allowed: Vec<&str> = KINDS.iter().skip(1).map(|(key, _)| *key).collect();
        return super::unknown_value(&viewer, "only", &only, &allowed);
    }
    let asked_sort = query.sort.as_deref().filter(|s| !s.is_empty());
    let Some((sort_key, sort)) = SORTS
        .iter()
        .find(|(key, _, _)| *key == asked_sort.unwrap_or("name"))
        .map(|(key, _, sort)| (*key, *sort))
    else {
        let allowed = SORTS.map(|(key, _, _)| key);
        return super::unknown_value(&viewer, "sort", asked_sort.unwrap_or_default(), &allowed);
    };
    let descending = match query.dir.as_deref().filter(|d| !d.is_empty()) {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => return super::unknown_value(&viewer, "dir", other, &["asc", "desc"]),
    };
    let asked_page = format::page_number(query.page.as_deref());
    let loaded = format::clamped_page(asked_page, PAGE_SIZE, |offset| {
        let search = ContactSearch {
            organization_id: Some(org.id),
            text: Some(q.clone()),
            sort,
            descending,
            only: kind_of(&only),
            offset,
            limit: PAGE_SIZE,
        };
        let store = ui.store.clone();
        async move { store.search_contacts(&search).await }
    })
    .await;
    let (found, total, page_number) = match loaded {
        Ok(found) => found,
        Err(e) => return store_failure(&viewer, e),
    };
    let link = |sort: &str, dir: &str, page: i64| {
        format!(
            "/organizations/{}?q={}&only={}&sort={sort}&dir={dir}&page={page}",
            org.id,
            format::url_encode(&q),
            only
        )
    };
    let dir = if descending { "desc" } else { "asc" };
    let mut headers: Vec<SortHeader> = SORTS
        .iter()
        .map(|(key, label, _)| {
            let current = *key == sort_key;
            SortHeader {
                label,
                href: Some(link(
                    key,
                    if current && !descending {
                        "desc"
                    } else {
                        "asc"
                    },
                    1,
                )),
                arrow: match (current, descending) {
                    (true, false) => " ▲",
                    (true, true) => " ▼",
                    _ => "",
                },
                num: false,
            }
        })
        .collect();
    headers.push(SortHeader {
        label: "Licences",
        href: None,
        arrow: "",
        num: false,
    });
    headers.push(SortHeader {
        label: "Mailbox used",
        href: None,
        arrow: "",
        num: true,
    });
    let pages = format::pager(page_number, total, PAGE_SIZE, |n| link(sort_key, dir, n));
    let first = format::offset_of(page_number, PAGE_SIZE).saturating_add(1);
    let lines = found
        .iter()
        .map(|c| ContactLine {
            id: c.id,
            name: c.display_name.clone(),
            badges: badges(c),
            upn: opt(&c.user_principal_name),
            title: opt(&c.job_title),
            department: opt(&c.department),
            licenses: c.license_names.join(", "),
            mailbox: c
                .mailbox
                .as_ref()
                .and_then(|m| m.storage_used_bytes)
                .map(bytes)
                .unwrap_or_else(|| "—".into()),
        })
        .collect::<Vec<_>>();
    page(&ContactsPage {
        frame: viewer.frame(org.name.clone(), "organizations"),
        tabs: tabs(&org, "contacts"),
        org: OrgView {
            id: org.id,
            name: org.name.clone(),
            tenant: org
                .tenant_name
                .clone()
                .or(org.tenant_id.clone())
                .unwrap_or_else(|| "not linked".into()),
            contacts: org.contacts,
            domains: org.verified_domains.join(", "),
        },
        q: q.clone(),
        only: only.clone(),
        sort: sort_key.to_string(),
        dir: dir.to_string(),
        kinds: KINDS.to_vec(),
        total,
        first,
        last: first + lines.len() as i64 - 1,
        headers,
        contacts: lines,
        pages,
    })
}

struct ContactView {
    id: i64,
    organization_id: i64,
    organization: String,
    name: String,
    badges: Vec<Badge>,
    admin_center: Option<String>,
    facts: Vec<(String, String)>,
    licenses: Vec<String>,
    products: String,
    mailbox_chart: Option<String>,
    mailbox: Vec<(String, String)>,
    activity: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "contact.html")]
struct ContactPage {
    frame: Frame,
    c: ContactView,
    tables: Vec<Table>,
}

/// Text for a JSON value as a person reads it; objects and lists are left out.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Bool(b) => Some(if *b { "yes" } else { "no" }.into()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn label_of(key: &str) -> String {
    super::upper_first(&key.replace('_', " "))
}

pub(crate) async fn contact(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return not_found(&viewer, "contact");
    };
    let contact = match ui.store.contact(id).await {
        Ok(Some(c)) => c,
        Ok(None) => return not_found(&viewer, "contact"),
        Err(e) => return store_failure(&viewer, e),
    };
    let mut facts = vec![];
    let mut fact = |label: &str, value: &Option<String>| {
        if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
            facts.push((label.to_string(), v.clone()));
        }
    };
    fact("Email", &contact.email);
    fact("User principal name", &contact.user_principal_name);
    fact("Given name", &contact.given_name);
    fact("Surname", &contact.surname);
    fact("Job title", &contact.job_title);
    fact("Department", &contact.department);
    fact("Office", &contact.office_location);
    fact("Mobile", &contact.mobile_phone);
    fact("User type", &contact.user_type);
    if !contact.business_phones.is_empty() {
        facts.push(("Business phones".into(), contact.business_phones.join(", ")));
    }
    facts.push((
        "Sign-in".into(),
        match contact.account_enabled {
            Some(false) => "blocked".into(),
            Some(true) => "allowed".into(),
            None => "unknown".into(),
        },
    ));
    if let Some(until) = contact.restorable_until {
        facts.push((
            "Deleted in Microsoft 365; restorable until".into(),
            time(until),
        ));
    }
    for (name, value) in &contact.custom_fields {
        facts.push((name.clone(), value.clone()));
    }
    let mut mailbox = Vec::new();
    let mut mailbox_chart = None;
    if let Some(m) = &contact.mailbox {
        if let Some(kind) = &m.recipient_type {
            mailbox.push(("Kind".into(), kind.clone()));
        }
        if let Some(used) = m.storage_used_bytes {
            mailbox.push(("Used".into(), bytes(used)));
            mailbox_chart = Some(charts::mailbox_quota(
                used,
                m.prohibit_send_quota_bytes.or(m.issue_warning_quota_bytes),
            ));
        }
        if let Some(q) = m.issue_warning_quota_bytes {
            mailbox.push(("Warning quota".into(), bytes(q)));
        }
        if let Some(q) = m.prohibit_send_quota_bytes {
            mailbox.push(("Send blocked at".into(), bytes(q)));
        }
        if let Some(items) = m.item_count {
            mailbox.push(("Items".into(), items.to_string()));
        }
        if let Some(archive) = m.has_archive {
            mailbox.push(("Archive".into(), if archive { "yes" } else { "no" }.into()));
        }
        if let Some(last) = &m.last_activity_date {
            mailbox.push(("Last activity".into(), last.clone()));
        }
    }
    let mut activity = Vec::new();
    for (report, value) in &contact.usage {
        if let Value::Object(fields) = value {
            for (key, v) in fields {
                if let Some(text) = scalar(v) {
                    activity.push((format!("{} · {}", label_of(report), label_of(key)), text));
                }
            }
        } else if let Some(text) = scalar(value) {
            activity.push((label_of(report), text));
        }
    }
    let tenant = contact
        .tenant_id
        .as_deref()
        .and_then(|t| TenantId::parse(t).ok());
    let mut tables = Vec::new();
    if let (Some(tenant), Some(object_id)) = (&tenant, &contact.object_id) {
        let mut groups = Table::new(
            "contact-groups",
            &["Group", "Mail", "Kind"],
            "In no group (or groups are not synced).",
        )
        .caption("Groups");
        match ui.store.groups_of_member(tenant, object_id).await {
            Ok(found) => {
                for g in found {
                    groups.row(vec![
                        Cell::text(g.display_name.clone().unwrap_or(g.object_id.clone())),
                        Cell::text(opt(&g.mail)),
                        Cell::text(group_kind(&g)),
                    ]);
                }
            }
            Err(e) => return store_failure(&viewer, e),
        }
        tables.push(groups);
        let mut roles = Table::new(
            "contact-roles",
            &["Admin role"],
            "Holds no admin role (or roles are not synced).",
        )
        .caption("Admin roles");
        match ui
            .store
            .inventory(Some(tenant), Dataset::DirectoryRoles, false)
            .await
        {
            Ok(found) => {
                for role in found {
                    let holds = role.document["members"].as_array().is_some_and(|m| {
                        m.iter().any(|m| {
                            m["id"]
                                .as_str()
                                .is_some_and(|id| id.eq_ignore_ascii_case(object_id))
                        })
                    });
                    if holds {
                        roles.row(vec![Cell::text(role.name)]);
                    }
                }
            }
            Err(e) => return store_failure(&viewer, e),
        }
        tables.push(roles);
        let mut devices = Table::new(
            "contact-devices",
            &["Device", "System", "Compliance", "Last check-in"],
            "No Intune device (or devices are not synced).",
        )
        .caption("Devices");
        match ui
            .store
            .typed_rows::<domain::devices::ManagedDeviceRecord>(Some(tenant), false)
            .await
        {
            Ok(found) => {
                for d in found {
                    let r = &d.row.record;
                    if r.user_id
                        .as_deref()
                        .is_some_and(|u| u.eq_ignore_ascii_case(object_id))
                    {
                        devices.row(vec![
                            Cell::text(r.device_name.clone().unwrap_or(r.id.clone())),
                            Cell::text(format!(
                                "{} {}",
                                opt(&r.operating_system),
                                opt(&r.os_version)
                            )),
                            Cell::text(opt(&r.compliance_state)),
                            Cell::text(opt(&r.last_check_in)),
                        ]);
                    }
                }
            }
            Err(e) => return store_failure(&viewer, e),
        }
        tables.push(devices);
    }
    let mut history = Table::new(
        "contact-history",
        &["When", "Run", "Field", "Was", "Now"],
        "No change recorded.",
    )
    .caption("History");
    match ui.store.contact_history(contact.id).await {
        Ok(changes) => {
            for change in changes {
                history.row(vec![
                    Cell::text(time(change.changed_at)),
                    match change.run_id {
                        Some(run) => Cell::link(run.to_string(), format!("/runs/{run}")),
                        None => Cell::text(change.note.clone().unwrap_or_else(|| "by hand".into())),
                    },
                    Cell::text(change.field),
                    Cell::text(change.old.unwrap_or_default()),
                    Cell::text(change.new.unwrap_or_default()),
                ]);
            }
        }
        Err(e) => return store_failure(&viewer, e),
    }
    tables.push(history);
    let admin_center = contact.object_id.as_ref().map(|id| {
        format!(
            "https://admin.microsoft.com/#/users/:/UserDetails/{}",
            format::url_encode(id)
        )
    });
    page(&ContactPage {
        frame: viewer.frame(contact.display_name.clone(), "organizations"),
        c: ContactView {
            id: contact.id,
            organization_id: contact.organization_id,
            organization: contact.organization.clone(),
            name: contact.display_name.clone(),
            badges: badges(&contact),
            admin_center,
            facts,
            licenses: contact.license_names.clone(),
            products: contact.products.join(", "),
            mailbox_chart,
            mailbox,
            activity,
        },
        tables,
    })
}

fn group_kind(g: &domain::groups::GroupRecord) -> String {
    if g.group_types.iter().any(|t| t == "Unified") {
        "Microsoft 365".into()
    } else if g.security_enabled == Some(true) {
        if g.mail_enabled == Some(true) {
            "mail-enabled security".into()
        } else {
            "security".into()
        }
    } else if g.mail_enabled == Some(true) {
        "distribution".into()
    } else {
        "other".into()
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct DatasetQuery {
    q: Option<String>,
    page: Option<String>,
}

/// One of an organisation's datasets as a table (and, for licences, a chart).
pub(crate) async fn dataset(
    State(ui): State<UiState>,
    Extension(viewer): Extension<Viewer>,
    Path((id, key)): Path<(String, String)>,
    Query(query): Query<DatasetQuery>,
) -> Response {
    let org = match organization(&ui, &viewer, &id).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let Some((_, label)) = DATASET_PAGES.iter().find(|(k, _)| *k == key) else {
        return not_found(&viewer, "page of this organisation");
    };
    let Some(tenant) = org
        .tenant_id
        .as_deref()
        .and_then(|t| TenantId::parse(t).ok())
    else {
        let mut body = TablePage::new(
            viewer.frame(format!("{} · {label}", org.name), "organizations"),
            Vec::new(),
        );
        body.tabs = tabs(&org, &key);
        body.intro = Some(
            "This organisation is not linked to a tenant, so no Microsoft 365 data is kept for it."
                .into(),
        );
        return page(&body);
    };
    let mut body = TablePage::new(
        viewer.frame(format!("{} · {label}", org.name), "organizations"),
        Vec::new(),
    );
    body.crumbs = vec![
        Link {
            key: String::new(),
            label: "Organisations".into(),
            href: "/organizations".into(),
            active: false,
        },
        Link {
            key: String::new(),
            label: org.name.clone(),
            href: format!("/organizations/{}", org.id),
            active: false,
        },
    ];
    body.tabs = tabs(&org, &key);
    let filled = match key.as_str() {
        "licenses" => licenses(&ui, &tenant, &mut body).await,
        "groups" => groups(&ui, &tenant, &mut body).await,
        "devices" => devices(&ui, &tenant, &mut body).await,
        "audit" => {
            let base = format!("/organizations/{}/audit", org.id);
            let number = format::page_number(query.page.as_deref());
            audit(
                &ui,
                &tenant,
                crate::query::search_text(query.q.as_deref().unwrap_or_default()),
                number,
                &mut body,
                &base,
            )
            .await
        }
        "admins" => {
            inventory(
                &ui,
                &tenant,
                Dataset::DirectoryRoles,
                &mut body,
                "admins",
                "No activated admin role (or roles are not synced).",
            )
            .await
        }
        "domains" => {
            inventory(
                &ui,
                &tenant,
                Dataset::Domains,
                &mut body,
                "domains",
                "No domain (or domains are not synced).",
            )
            .await
        }
        "software" => super::insight::software(&ui, &org, &mut body).await,
        "waste" => match super::insight::waste(&ui, &org, &mut body).await {
            Ok(()) => Ok(()),
            Err(sync::report::ReportError::Store(e)) => Err(e),
            Err(e) => Err(store::StoreError::Corrupt(e.to_string())),
        },
        "trends" => super::insight::trends(&ui, &org, &mut body).await,
        "service-health" => {
            let health = inventory(
                &ui,
                &tenant,
                Dataset::ServiceHealth,
                &mut body,
                "service-health",
                "No service health (or it is not synced).",
            )
            .await;
            match health {
                Ok(()) => {
                    inventory(
                        &ui,
                        &tenant,
                        Dataset::ServiceMessages,
                        &mut body,
                        "service-messages",
                        "No message from Microsoft (or messages are not synced).",
                    )
                    .await
                }
                Err(e) => Err(e),
            }
        }
        "apps" => {
            inventory(
                &ui,
                &tenant,
                Dataset::Applications,
                &mut body,
                "apps",
                "No app registration (or they are not synced).",
            )
            .await
        }
        "terms" => {
            inventory(
                &ui,
                &tenant,
                Dataset::TermsOfUse,
                &mut body,
                "terms",
                "No terms of use (or they are not synced).",
            )
            .await
        }
        _ => Ok(()),
    };
    match filled {
        Ok(()) => page(&body),
        Err(e) => store_failure(&viewer, e),
    }
}

async fn licenses(ui: &UiState, tenant: &TenantId, body: &mut TablePage) -> store::Result<()> {
    let rows = ui.store.licenses(Some(tenant), false).await?;
    let mut table = Table::new(
        "licenses",
        &[
            "Licence",
            "SKU",
            "#Bought",
            "#Assigned",
            "#Free",
            "#Suspended",
            "Status",
        ],
        "No licence (or licences are not synced).",
    );
    for l in &rows {
        // More seats assigned than bought leaves none free, not a negative count.
        let mut free = Cell::num((l.enabled_units - l.consumed_units).max(0));
        if l.consumed_units > l.enabled_units {
            free = free.badge("over-assigned", "bad");
        }
        table.row(vec![
            Cell::text(&l.name),
            Cell::text(&l.sku_part_number),
            Cell::num(l.enabled_units),
            Cell::num(l.consumed_units),
            free,
            Cell::num(l.suspended_units),
            Cell::text(&l.capability_status),
        ]);
    }
    if !rows.is_empty() {
        body.chart = Some(charts::license_use(&rows));
    }
    body.tables.push(table);
    // Waste: licences held by accounts that cannot sign in.
    let search = ContactSearch {
        organization_id: None,
        only: Some(ContactKind::Disabled),
        limit: 1000,
        ..ContactSearch::default()
    };
    let (disabled, _) = ui.store.search_contacts(&search).await?;
    let mut waste = Table::new(
        "license-waste",
        &["Disabled account", "Licences it holds"],
        "No disabled account holds a licence.",
    )
    .caption("Waste: licensed accounts that cannot sign in");
    for c in disabled
        .iter()
        .filter(|c| c.tenant_id.as_deref() == Some(&tenant.to_string()) && !c.licenses.is_empty())
    {
        waste.row(vec![
            Cell::link(&c.display_name, format!("/contacts/{}", c.id)),
            Cell::text(c.license_names.join(", ")),
        ]);
    }
    body.tables.push(waste);
    Ok(())
}

async fn groups(ui: &UiState, tenant: &TenantId, body: &mut TablePage) -> store::Result<()> {
    let rows = ui.store.groups(Some(tenant), false).await?;
    let mut table = Table::new(
        "groups",
        &["Group", "Kind", "Mail", "#Members", "Description"],
        "No group (or groups are not synced).",
    );
    for g in &rows {
        table.row(vec![
            Cell::text(
                g.group
                    .display_name
                    .clone()
                    .unwrap_or(g.group.object_id.clone()),
            ),
            Cell::text(group_kind(&g.group)),
            Cell::text(opt(&g.group.mail)),
            Cell::num(g.member_count),
            Cell::text(opt(&g.group.description)),
        ]);
    }
    body.tables.push(table);
    Ok(())
}

async fn devices(ui: &UiState, tenant: &TenantId, body: &mut TablePage) -> store::Result<()> {
    let managed = ui
        .store
        .typed_rows::<domain::devices::ManagedDeviceRecord>(Some(tenant), false)
        .await?;
    let mut intune = Table::new(
        "intune-devices",
        &["Device", "User", "System", "Compliance", "Last check-in"],
        "No Intune device (or Intune devices are not synced).",
    )
    .caption("Intune devices");
    for d in &managed {
        let r = &d.row.record;
        let compliance = match r.compliance_state.as_deref() {
            Some("compliant") => Cell::text("compliant").badge("ok", "good"),
            Some(other) => Cell::text(other).badge("check", "warn"),
            None => Cell::text("—"),
        };
        intune.row(vec![
            Cell::text(r.device_name.clone().unwrap_or(r.id.clone())),
            Cell::text(
                r.user_display_name
                    .clone()
                    .or(r.user_principal_name.clone())
                    .unwrap_or_default(),
            ),
            Cell::text(format!(
                "{} {}",
                opt(&r.operating_system),
                opt(&r.os_version)
            )),
            compliance,
            Cell::text(opt(&r.last_check_in)),
        ]);
    }
    body.tables.push(intune);
    let entra = ui
        .store
        .typed_rows::<domain::devices::DeviceRecord>(Some(tenant), false)
        .await?;
    let mut table = Table::new(
        "entra-devices",
        &[
            "Device",
            "System",
            "Join type",
            "Managed",
            "Compliant",
            "Enabled",
        ],
        "No Entra device (or Entra devices are not synced).",
    )
    .caption("Entra ID devices");
    let yes_no = |v: Option<bool>| match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "—",
    };
    for d in &entra {
        let r = &d.row.record;
        table.row(vec![
            Cell::text(r.display_name.clone().unwrap_or(r.id.clone())),
            Cell::text(format!(
                "{} {}",
                opt(&r.operating_system),
                opt(&r.operating_system_version)
            )),
            Cell::text(opt(&r.join_type)),
            Cell::text(yes_no(r.is_managed)),
            Cell::text(yes_no(r.is_compliant)),
            Cell::text(yes_no(r.account_enabled)),
        ]);
    }
    body.tables.push(table);
    Ok(())
}

/// Audit records on one page; the search narrows them.
const AUDIT_PAGE: i64 = 100;

async fn audit(
    ui: &UiState,
    tenant: &TenantId,
    q: String,
    number: i64,
    body: &mut TablePage,
    base: &str,
) -> store::Result<()> {
    let (records, total, number) = format::clamped_page(number, AUDIT_PAGE, |offset| {
        ui.store.audit_page(tenant, &q, offset, AUDIT_PAGE)
    })
    .await?;
    let mut table = Table::new(
        "audit",
        &[
            "When",
            "User",
            "Operation",
            "Workload",
            "Result",
            "Client IP",
        ],
        "No audit record matches (or audit activity is not synced).",
    );
    for r in &records {
        let a = &r.row.record;
        table.row(vec![
            Cell::text(opt(&a.creation_time)),
            Cell::text(opt(&a.user_id)),
            Cell::text(opt(&a.operation)),
            Cell::text(opt(&a.workload)),
            Cell::text(opt(&a.result_status)),
            Cell::text(opt(&a.client_ip)),
        ]);
    }
    body.intro = Some(if total > AUDIT_PAGE {
        format!("{total} records match, newest first, {AUDIT_PAGE} a page. Search to narrow them.")
    } else {
        format!("{total} record(s), newest first.")
    });
    body.pages = format::pager(number, total, AUDIT_PAGE, |n| {
        format!("{base}?q={}&page={n}", format::url_encode(&q))
    });
    body.search = Some(q);
    body.tables.push(table);
    Ok(())
}

/// A small dataset kept as documents: its name and what the document says, with credentials'
/// and roles' details spelled out.
async fn inventory(
    ui: &UiState,
    tenant: &TenantId,
    dataset: Dataset,
    body: &mut TablePage,
    testid: &str,
    empty: &str,
) -> store::Result<()> {
    let rows = ui.store.inventory(Some(tenant), dataset, false).await?;
    let now = chrono::Utc::now().to_rfc3339();
    let soon = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let mut table = match dataset {
        Dataset::Applications => Table::new(
            testid,
            &["App", "Application ID", "Credentials (expiry)"],
            empty,
        ),
        Dataset::DirectoryRoles => Table::new(testid, &["Role", "#Members", "Members"], empty),
        _ => Table::new(testid, &["Name", "Details"], empty),
    };
    if dataset == Dataset::ServiceMessages {
        table = table.caption("Messages from Microsoft");
    }
    for row in &rows {
        let doc = &row.document;
        match dataset {
            Dataset::Applications => {
                let mut cell = Cell::text("");
                let mut parts = Vec::new();
                for (kind, list) in [
                    ("secret", &doc["secrets"]),
                    ("certificate", &doc["certificates"]),
                ] {
                    for credential in list.as_array().into_iter().flatten() {
                        let end = credential["end"].as_str().unwrap_or("");
                        let name = credential["display_name"].as_str().unwrap_or("");
                        parts.push(format!(
                            "{kind} {name} until {}",
                            end.get(..10).unwrap_or(end)
                        ));
                        if !end.is_empty() && end < now.as_str() {
                            cell = cell.badge(format!("{kind} expired"), "bad");
                        } else if !end.is_empty() && end < soon.as_str() {
                            cell = cell.badge(format!("{kind} expires soon"), "warn");
                        }
                    }
                }
                cell.text = if parts.is_empty() {
                    "none".into()
                } else {
                    parts.join("; ")
                };
                table.row(vec![
                    Cell::text(&row.name),
                    Cell::text(doc["app_id"].as_str().unwrap_or("")),
                    cell,
                ]);
            }
            Dataset::DirectoryRoles => {
                let members: Vec<String> = doc["members"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| {
                        m["display_name"]
                            .as_str()
                            .or(m["user_principal_name"].as_str())
                            .or(m["id"].as_str())
                            .unwrap_or("")
                            .to_string()
                    })
                    .collect();
                table.row(vec![
                    Cell::text(&row.name),
                    Cell::num(members.len()),
                    Cell::text(members.join(", ")),
                ]);
            }
            _ => {
                let details: Vec<String> = doc
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(key, _)| !matches!(key.as_str(), "id" | "display_name" | "name"))
                    .filter_map(|(key, value)| {
                        scalar(value).map(|v| format!("{}: {v}", label_of(key)))
                    })
                    .take(8)
                    .collect();
                table.row(vec![Cell::text(&row.name), Cell::text(details.join(" · "))]);
            }
        }
    }
    body.tables.push(table);
    Ok(())
}
