//! Tenant-wide collections: domains, service health and message centre, app registrations and
//! terms of use. Small and fixed per tenant, derived from the seed; enums are sent PascalCase,
//! as Microsoft's payloads do (its documentation writes them camelCase).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::SimState;
use crate::api::{Opened, Resource, context, graph_error, graph_ok, open, param, project};
use crate::people::{guid, hash3};
use crate::software::APPS;
use crate::state::{Tenant, civil_date, read};

const DIRECTORY: [&str; 2] = ["Directory.Read.All", "Directory.ReadWrite.All"];

pub(crate) const DOMAINS: Resource = Resource {
    roles: &[
        "Domain.Read.All",
        "Domain.ReadWrite.All",
        DIRECTORY[0],
        DIRECTORY[1],
    ],
    options: &["$select"],
    fields: &[
        "id",
        "authenticationType",
        "availabilityStatus",
        "isAdminManaged",
        "isDefault",
        "isInitial",
        "isRoot",
        "isVerified",
        "passwordNotificationWindowInDays",
        "passwordValidityPeriodInDays",
        "supportedServices",
        "state",
    ],
    type_name: "domain",
};
pub(crate) const HEALTH: Resource = Resource {
    roles: &["ServiceHealth.Read.All"],
    options: &["$select"],
    fields: &["id", "service", "status"],
    type_name: "serviceHealth",
};
pub(crate) const ISSUES: Resource = Resource {
    roles: &["ServiceHealth.Read.All"],
    options: &["$select"],
    fields: &[
        "id",
        "title",
        "service",
        "feature",
        "featureGroup",
        "impactDescription",
        "classification",
        "origin",
        "status",
        "isResolved",
        "startDateTime",
        "endDateTime",
        "lastModifiedDateTime",
        "details",
        "posts",
    ],
    type_name: "serviceHealthIssue",
};
pub(crate) const MESSAGES: Resource = Resource {
    roles: &["ServiceMessage.Read.All"],
    options: &["$select", "$skip", "$top"],
    fields: &[
        "id",
        "title",
        "category",
        "severity",
        "services",
        "tags",
        "isMajorChange",
        "actionRequiredByDateTime",
        "startDateTime",
        "endDateTime",
        "lastModifiedDateTime",
        "body",
        "details",
        "hasAttachments",
        "viewPoint",
    ],
    type_name: "serviceUpdateMessage",
};
pub(crate) const APPLICATIONS: Resource = Resource {
    roles: &[
        "Application.Read.All",
        "Application.ReadWrite.All",
        DIRECTORY[0],
        DIRECTORY[1],
    ],
    options: &["$select", "$top"],
    fields: &[
        "id",
        "appId",
        "displayName",
        "signInAudience",
        "createdDateTime",
        "passwordCredentials",
        "keyCredentials",
        "publisherDomain",
    ],
    type_name: "application",
};
pub(crate) const AGREEMENTS: Resource = Resource {
    roles: &["Agreement.Read.All", "Agreement.ReadWrite.All"],
    options: &["$select"],
    fields: &[
        "id",
        "displayName",
        "isPerDeviceAcceptanceRequired",
        "isViewingBeforeAcceptanceRequired",
        "termsExpiration",
        "userReacceptRequiredFrequency",
    ],
    type_name: "agreement",
};

/// Messages per page of the message centre, as Graph pages them by default.
const MESSAGES_PER_PAGE: usize = 100;
const MESSAGE_COUNT: usize = 130;

fn day(state: &SimState, offset: i64) -> String {
    format!("{}T08:00:00Z", civil_date(state.report_day + 1 + offset))
}

fn listing(
    state: &SimState,
    headers: &HeaderMap,
    set: &str,
    fields: Option<&[&str]>,
    items: Vec<Value>,
    next: Option<String>,
) -> Response {
    let items: Vec<Value> = match fields {
        Some(f) => items.into_iter().map(|i| project(i, f)).collect(),
        None => items,
    };
    let mut body = json!({ "@odata.context": context(state, set, fields), "value": items });
    if let Some(next) = next {
        body["@odata.nextLink"] = json!(next);
    }
    graph_ok(state, headers, body.to_string())
}

macro_rules! opened {
    ($state:expr, $headers:expr, $raw:expr, $resource:expr) => {
        match open(&$state, &$headers, $raw.as_deref(), &$resource) {
            Ok(opened) => opened,
            Err(response) => return response,
        }
    };
}

pub(crate) async fn domains(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let (tenant, _, fields): Opened = opened!(state, headers, raw, DOMAINS);
    let services = json!(["Email", "OfficeCommunicationsOnline", "Intune"]);
    let domain = |name: &str, default: bool, initial: bool, verified: bool| {
        json!({
            "id": name, "authenticationType": "Managed", "availabilityStatus": null, "isAdminManaged": true,
            "isDefault": default, "isInitial": initial, "isRoot": true, "isVerified": verified,
            "passwordNotificationWindowInDays": 14, "passwordValidityPeriodInDays": 2147483647,
            "supportedServices": if verified { services.clone() } else { json!([]) }, "state": null,
        })
    };
    let pending = tenant.custom_domain.replace(".example", "-mail.example");
    let items = vec![
        domain(&tenant.initial_domain, false, true, true),
        domain(&tenant.custom_domain, true, false, true),
        domain(&pending, false, false, false),
    ];
    listing(&state, &headers, "domains", fields.as_deref(), items, None)
}

/// The ids of the services whose health the simulator reports.
pub fn service_ids() -> Vec<&'static str> {
    SERVICES.iter().map(|(id, _)| *id).collect()
}

const SERVICES: &[(&str, &str)] = &[
    ("Exchange", "Exchange Online"),
    ("microsoftteams", "Microsoft Teams"),
    ("SharePoint", "SharePoint Online"),
    ("OneDriveForBusiness", "OneDrive for Business"),
    ("OrgLiveID", "Microsoft Entra"),
    ("Intune", "Microsoft Intune"),
    ("O365Client", "Microsoft 365 apps"),
    ("PowerBIcom", "Power BI"),
];

/// The tenant's open and recent issues: one incident, one advisory, one resolved.
fn issues_of(state: &SimState, tenant: &Tenant) -> Vec<Value> {
    let n = tenant.index;
    let post = |offset: i64, text: &str| json!({ "createdDateTime": day(state, offset), "postType": "Regular", "description": { "contentType": "Html", "content": text } });
    vec![
        json!({
            "id": format!("EX{}", 700_100 + n), "title": "Some users may see delays when sending email", "service": "Exchange Online",
            "feature": "E-Mail and calendar access", "featureGroup": "E-Mail and calendar access", "impactDescription": "Users may see delays of up to 15 minutes.",
            "classification": "Incident", "origin": "Microsoft", "status": "ServiceDegradation", "isResolved": false,
            "startDateTime": day(state, -1), "endDateTime": null, "lastModifiedDateTime": day(state, 0), "details": [],
            "posts": [post(-1, "We are investigating delays in mail delivery."), post(0, "We have identified a configuration change and are reverting it.")],
        }),
        json!({
            "id": format!("TM{}", 700_200 + n), "title": "Meeting recordings may take longer to appear", "service": "Microsoft Teams",
            "feature": "Teams Components", "featureGroup": "Teams Components", "impactDescription": "Recordings may be delayed.",
            "classification": "Advisory", "origin": "Microsoft", "status": "ServiceOperational", "isResolved": false,
            "startDateTime": day(state, -3), "endDateTime": null, "lastModifiedDateTime": day(state, -2), "details": [],
            "posts": [post(-3, "Recordings are taking longer than usual to process.")],
        }),
        json!({
            "id": format!("SP{}", 700_300 + n), "title": "Users couldn't open some files in SharePoint Online", "service": "SharePoint Online",
            "feature": "SharePoint Features", "featureGroup": "SharePoint Features", "impactDescription": "Files in some libraries failed to open.",
            "classification": "Incident", "origin": "Microsoft", "status": "ServiceRestored", "isResolved": true,
            "startDateTime": day(state, -9), "endDateTime": day(state, -8), "lastModifiedDateTime": day(state, -8), "details": [],
            "posts": [post(-9, "We are investigating."), post(-8, "The issue is resolved.")],
        }),
    ]
}

pub(crate) async fn health_overviews(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let (_, _, fields): Opened = opened!(state, headers, raw, HEALTH);
    let items = SERVICES
        .iter()
        .map(|(id, service)| {
            let status = if *id == "Exchange" {
                "ServiceDegradation"
            } else {
                "ServiceOperational"
            };
            json!({ "id": id, "service": service, "status": status })
        })
        .collect();
    listing(
        &state,
        &headers,
        "admin/serviceAnnouncement/healthOverviews",
        fields.as_deref(),
        items,
        None,
    )
}

pub(crate) async fn issues(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let (tenant, _, fields): Opened = opened!(state, headers, raw, ISSUES);
    let items = issues_of(&state, tenant);
    listing(
        &state,
        &headers,
        "admin/serviceAnnouncement/issues",
        fields.as_deref(),
        items,
        None,
    )
}

/// The message centre pages with `$skip`, as Microsoft's does.
pub(crate) async fn messages(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let (tenant, pairs, fields): Opened = opened!(state, headers, raw, MESSAGES);
    let skip = match param(&pairs, "$skip").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return graph_error(
                &state,
                &headers,
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Invalid value for $skip.",
            );
        }
    };
    let categories = ["StayInformed", "PlanForChange", "PreventOrFixIssue"];
    let severities = ["Normal", "High", "Critical"];
    let services = [
        "Exchange Online",
        "Microsoft Teams",
        "SharePoint Online",
        "Microsoft 365 apps",
    ];
    let items: Vec<Value> = (skip..MESSAGE_COUNT.min(skip + MESSAGES_PER_PAGE))
        .map(|i| {
            let h = hash3(tenant.index, i as u64, 0x3e55);
            let offset = -((h % 60) as i64);
            json!({
                "id": format!("MC{}", 800_000 + i),
                "title": format!("{} update {}", services[(h % 4) as usize], i + 1),
                "category": categories[(h % 3) as usize],
                "severity": severities[((h >> 3) % 3) as usize],
                "services": [services[(h % 4) as usize]],
                "tags": if h.is_multiple_of(2) { json!(["Feature update", "User impact"]) } else { json!(["Admin impact"]) },
                "isMajorChange": h.is_multiple_of(7),
                "actionRequiredByDateTime": if h.is_multiple_of(5) { json!(day(&state, 30)) } else { Value::Null },
                "startDateTime": day(&state, offset),
                "endDateTime": day(&state, offset + 90),
                "lastModifiedDateTime": day(&state, offset),
                "hasAttachments": false,
                "viewPoint": null,
                "details": [],
                "body": { "contentType": "Html", "content": format!("<p>Change {} is rolling out.</p>", i + 1) },
            })
        })
        .collect();
    let next = (skip + MESSAGES_PER_PAGE < MESSAGE_COUNT).then(|| {
        format!(
            "{}/v1.0/admin/serviceAnnouncement/messages?$skip={}",
            state.base_url,
            skip + MESSAGES_PER_PAGE
        )
    });
    listing(
        &state,
        &headers,
        "admin/serviceAnnouncement/messages",
        fields.as_deref(),
        items,
        next,
    )
}

/// The tenant's app registrations, m365sync's own among them with an old secret left behind.
pub(crate) async fn applications(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let (tenant, _, fields): Opened = opened!(state, headers, raw, APPLICATIONS);
    let id = |salt: u64| {
        guid(
            hash3(tenant.index, salt, 0xa99),
            hash3(tenant.index, salt, 0xa9a),
        )
        .to_string()
    };
    let secret = |name: &str, hint: &str, start: i64, end: i64, salt: u64| {
        json!({
            "customKeyIdentifier": null, "displayName": name, "endDateTime": day(&state, end), "hint": hint,
            "keyId": id(salt), "secretText": null, "startDateTime": day(&state, start),
        })
    };
    let app = |salt: u64, app_id: String, name: &str, passwords: Vec<Value>, keys: Vec<Value>| {
        json!({
            "id": id(salt), "appId": app_id, "displayName": name, "signInAudience": "AzureADMultipleOrgs",
            "createdDateTime": day(&state, -400), "publisherDomain": tenant.custom_domain,
            "passwordCredentials": passwords, "keyCredentials": keys,
        })
    };
    let items = vec![
        app(
            1,
            tenant.client_id.to_string(),
            "m365sync",
            vec![
                secret("m365sync", &tenant.client_secret[..3], -30, 335, 11),
                secret(
                    "m365sync (old)",
                    &tenant.expired_client_secret[..3],
                    -760,
                    -30,
                    12,
                ),
            ],
            read(&tenant.certificates)
                .iter()
                .map(|c| c.key_credential())
                .collect(),
        ),
        app(
            2,
            id(20),
            "Payroll Connector",
            vec![secret("production", "Pq7", -353, 12, 21)],
            vec![],
        ),
        app(
            3,
            id(30),
            "SSO Gateway",
            vec![],
            vec![json!({
                "customKeyIdentifier": "A1B2C3D4E5F60718293A4B5C6D7E8F9012345678", "displayName": "CN=sso.gateway", "endDateTime": day(&state, 200),
                "key": null, "keyId": id(31), "startDateTime": day(&state, -165), "type": "AsymmetricX509Cert", "usage": "Verify",
            })],
        ),
        app(4, id(40), "Legacy Intranet", vec![], vec![]),
    ];
    listing(
        &state,
        &headers,
        "applications",
        fields.as_deref(),
        items,
        None,
    )
}

pub(crate) async fn agreements(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let (tenant, _, fields): Opened = opened!(state, headers, raw, AGREEMENTS);
    let id = |salt: u64| {
        guid(
            hash3(tenant.index, salt, 0x70e),
            hash3(tenant.index, salt, 0x70f),
        )
        .to_string()
    };
    let items = vec![
        json!({
            "id": id(1), "displayName": "Acceptable use policy", "isPerDeviceAcceptanceRequired": false,
            "isViewingBeforeAcceptanceRequired": true, "termsExpiration": { "startDateTime": day(&state, -300), "frequency": "P365D" },
            "userReacceptRequiredFrequency": "P90D",
        }),
        json!({
            "id": id(2), "displayName": "Guest access terms", "isPerDeviceAcceptanceRequired": false,
            "isViewingBeforeAcceptanceRequired": false, "termsExpiration": null, "userReacceptRequiredFrequency": null,
        }),
    ];
    listing(
        &state,
        &headers,
        "identityGovernance/termsOfUse/agreements",
        fields.as_deref(),
        items,
        None,
    )
}

pub(crate) const API_CONNECTORS: Resource = Resource {
    roles: &["APIConnectors.Read.All", "APIConnectors.ReadWrite.All"],
    options: &["$select", "$top"],
    fields: &[
        "id",
        "displayName",
        "targetUrl",
        "authenticationConfiguration",
    ],
    type_name: "identityApiConnector",
};

/// A tenant's API connectors: one with basic authentication (its password never shown), one
/// with a client certificate that expires some weeks after the simulator's today.
pub(crate) async fn api_connectors(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let (tenant, _, fields): Opened = opened!(state, headers, raw, API_CONNECTORS);
    let id = |salt: u64| {
        guid(
            hash3(tenant.index, salt, 0xa9c),
            hash3(tenant.index, salt, 0xa9d),
        )
        .to_string()
    };
    // As `day` writes its times: 08:00 UTC, `days` after the simulator's today.
    let seconds = |days: i64| (state.report_day + 1 + days) * 86_400 + 8 * 3_600;
    let domain = &tenant.initial_domain;
    let items = vec![
        json!({
            "id": id(1), "displayName": "Validate loyalty number", "targetUrl": format!("https://loyalty.{domain}/api/validate"),
            "authenticationConfiguration": { "@odata.type": "#microsoft.graph.basicAuthentication", "username": "userflows", "password": null },
        }),
        json!({
            "id": id(2), "displayName": "Sign-up approvals", "targetUrl": format!("https://approvals.{domain}/api/check"),
            "authenticationConfiguration": {
                "@odata.type": "#microsoft.graph.clientCertificateAuthentication",
                "certificateList": [{ "thumbprint": format!("{:016X}{:024X}", hash3(tenant.index, 3, 0xa9e), hash3(tenant.index, 4, 0xa9e)),
                    "notBefore": seconds(-340), "notAfter": seconds(25), "isActive": true }],
            },
        }),
    ];
    listing(
        &state,
        &headers,
        "identity/apiConnectors",
        fields.as_deref(),
        items,
        None,
    )
}

pub(crate) const COMPANY_SUBSCRIPTIONS: Resource = Resource {
    roles: &[
        "LicenseAssignment.Read.All",
        "LicenseAssignment.ReadWrite.All",
        DIRECTORY[0],
        DIRECTORY[1],
    ],
    options: &["$select"],
    fields: &[
        "id",
        "commerceSubscriptionId",
        "createdDateTime",
        "isTrial",
        "nextLifecycleDateTime",
        "ownerId",
        "ownerTenantId",
        "ownerType",
        "serviceStatus",
        "skuId",
        "skuPartNumber",
        "status",
        "totalLicenses",
    ],
    type_name: "companySubscription",
};

/// The subscriptions behind a tenant's SKUs, one each: Teams Premium is a trial that ends some
/// weeks after the simulator's today; the others renew a year after they began.
pub(crate) async fn company_subscriptions(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let (tenant, _, fields): Opened = opened!(state, headers, raw, COMPANY_SUBSCRIPTIONS);
    let id = |salt: u64| {
        guid(
            hash3(tenant.index, salt, 0xc5b),
            hash3(tenant.index, salt, 0xc5c),
        )
        .to_string()
    };
    let day = |days: i64| format!("{}T00:00:00Z", civil_date(state.report_day + 1 + days));
    let items: Vec<Value> = tenant
        .seats()
        .into_iter()
        .map(|(i, _, enabled)| {
            let sku = &crate::catalog::SKUS[i];
            let trial = sku.part_number == "Microsoft_Teams_Premium";
            let (started, next) = if trial { (-10, 20) } else { (-200, 165) };
            json!({
                "id": id(i as u64),
                "commerceSubscriptionId": id(100 + i as u64),
                "createdDateTime": day(started),
                "isTrial": trial,
                "nextLifecycleDateTime": day(next),
                "ownerId": null, "ownerTenantId": null, "ownerType": null,
                "serviceStatus": sku.plans.iter().map(|p| json!({
                    "servicePlanId": p.id, "servicePlanName": p.name, "provisioningStatus": "Success", "appliesTo": "User",
                })).collect::<Vec<_>>(),
                "skuId": sku.sku_id,
                "skuPartNumber": sku.part_number,
                "status": "Enabled",
                "totalLicenses": enabled,
            })
        })
        .collect();
    listing(
        &state,
        &headers,
        "directory/subscriptions",
        fields.as_deref(),
        items,
        None,
    )
}

pub(crate) const GROUPS: Resource = Resource {
    roles: &[
        "GroupMember.Read.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
        DIRECTORY[0],
        DIRECTORY[1],
    ],
    options: &["$select", "$top"],
    fields: match GROUP_FIELDS_AND_MEMBERS.split_last() {
        Some((_, group_fields)) => group_fields,
        None => &[],
    },
    type_name: "group",
};
/// A group's properties, and last its `members` (which only `/groups/delta` selects).
pub(crate) const GROUP_FIELDS_AND_MEMBERS: &[&str] = &[
    "id",
    "displayName",
    "description",
    "mail",
    "mailEnabled",
    "mailNickname",
    "securityEnabled",
    "groupTypes",
    "visibility",
    "createdDateTime",
    "members",
];
pub(crate) const GROUP_MEMBERS: Resource = Resource {
    roles: GROUPS.roles,
    options: &["$select", "$top", "$skiptoken"],
    fields: &["id", "displayName", "userPrincipalName", "mail"],
    type_name: "directoryObject",
};
pub(crate) const ROLES: Resource = Resource {
    roles: &[
        "RoleManagement.Read.Directory",
        "RoleManagement.ReadWrite.Directory",
        DIRECTORY[0],
        DIRECTORY[1],
    ],
    options: &["$select"],
    fields: &["id", "displayName", "description", "roleTemplateId"],
    type_name: "directoryRole",
};

/// The tenant's groups: (name, kind, who is in it).
pub(crate) const GROUP_DEFS: &[(&str, &str)] = &[
    ("All Staff", "unified"),
    ("Finance", "security"),
    ("Sales Team", "unified"),
    ("VPN Users", "security"),
    ("External Guests", "security"),
    ("Board", "distribution"),
];

/// The `n`th group of the tenant as Graph shows it.
pub(crate) fn group_json(state: &SimState, tenant: &Tenant, i: usize) -> Value {
    let (name, kind) = GROUP_DEFS[i];
    let nickname = crate::people::ascii_alias(name);
    json!({
        "id": group_id(tenant, i), "displayName": name, "description": format!("{name} of {}", tenant.display_name),
        "mail": if kind == "security" { Value::Null } else { json!(format!("{nickname}@{}", tenant.custom_domain)) },
        "mailEnabled": kind != "security", "mailNickname": nickname, "securityEnabled": kind == "security",
        "groupTypes": if kind == "unified" { json!(["Unified"]) } else { json!([]) },
        "visibility": if kind == "unified" { json!("Private") } else { Value::Null },
        "createdDateTime": day(state, -500 + i as i64),
    })
}

/// Whether the user is in the `group`th group (the groups in the order `/groups` lists them).
pub fn group_has(group: usize, user: &crate::people::SimUser) -> bool {
    let member = user.user_type == "Member";
    match group {
        0 => member && user.account_enabled,
        1 => member && user.department.as_deref() == Some("Finance"),
        2 => member && user.department.as_deref() == Some("Sales"),
        3 => member && user.index % 4 == 1,
        4 => !member,
        _ => member && user.index < 5,
    }
}

/// A stable object id of the tenant's `n`th object of a kind (told apart by `salt`).
fn object_guid(tenant: &Tenant, n: u64, salt: u64) -> String {
    guid(
        hash3(tenant.index, n, salt),
        hash3(tenant.index, n, salt + 1),
    )
    .to_string()
}

pub(crate) fn group_id(tenant: &Tenant, group: usize) -> String {
    object_guid(tenant, group as u64, 0x6e0)
}

pub(crate) async fn groups(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let (tenant, _, fields): Opened = opened!(state, headers, raw, GROUPS);
    let items = (0..GROUP_DEFS.len())
        .map(|i| group_json(&state, tenant, i))
        .collect();
    listing(&state, &headers, "groups", fields.as_deref(), items, None)
}

fn member_json(user: &crate::people::SimUser) -> Value {
    json!({ "@odata.type": "#microsoft.graph.user", "id": user.id.to_string(), "displayName": user.display_name, "userPrincipalName": user.upn, "mail": user.mail })
}

/// A group's members, paged over the tenant's users: a page may hold few or none and still
/// lead on, as Graph's may.
pub(crate) async fn group_members(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let (tenant, pairs, fields): Opened = opened!(state, headers, raw, GROUP_MEMBERS);
    let Some(group) =
        (0..GROUP_DEFS.len()).find(|g| group_id(tenant, *g) == id.to_ascii_lowercase())
    else {
        return graph_error(
            &state,
            &headers,
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
        );
    };
    let top = param(&pairs, "$top")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 999);
    let start = param(&pairs, "$skiptoken")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(0);
    let (users, next) = tenant.users_from(start, top);
    let mut items: Vec<Value> = users
        .iter()
        .filter(|u| group_has(group, u))
        .map(member_json)
        .collect();
    if let Some(f) = fields.as_deref() {
        items = items
            .into_iter()
            .map(|i| {
                let kind = i["@odata.type"].clone();
                let mut projected = project(i, f);
                projected["@odata.type"] = kind;
                projected
            })
            .collect();
    }
    let next = next.map(|n| {
        format!(
            "{}/v1.0/groups/{id}/members?$top={top}&$skiptoken={n}",
            state.base_url
        )
    });
    let body =
        json!({ "@odata.context": context(&state, "directoryObjects", None), "value": items });
    let mut body = body;
    if let Some(next) = next {
        body["@odata.nextLink"] = json!(next);
    }
    graph_ok(&state, &headers, body.to_string())
}

/// Activated roles, with (template id, name, description, member indexes).
const ROLE_DEFS: &[(&str, &str, &str, &[u64])] = &[
    (
        "62e90394-69f5-4237-9190-012177145e10",
        "Global Administrator",
        "Can manage all aspects of Microsoft Entra ID and Microsoft services that use Microsoft Entra identities.",
        &[0, 1],
    ),
    (
        "fe930be7-5e62-47db-91af-98c3a49a38b1",
        "User Administrator",
        "Can manage all aspects of users and groups, including resetting passwords for limited admins.",
        &[2],
    ),
    (
        "29232cdf-9323-42fd-ade2-1d097af3e4de",
        "Exchange Administrator",
        "Can manage all aspects of the Exchange product.",
        &[3],
    ),
    (
        "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
        "Global Reader",
        "Can read everything that a Global Administrator can, but not update anything.",
        &[],
    ),
];

fn role_id(tenant: &Tenant, role: usize) -> String {
    object_guid(tenant, role as u64, 0x801e)
}

pub(crate) async fn directory_roles(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let (tenant, _, fields): Opened = opened!(state, headers, raw, ROLES);
    let items = ROLE_DEFS
        .iter()
        .enumerate()
        .map(|(i, (template, name, description, _))| {
            json!({ "id": role_id(tenant, i), "deletedDateTime": null, "description": description, "displayName": name, "roleTemplateId": template })
        })
        .collect();
    listing(
        &state,
        &headers,
        "directoryRoles",
        fields.as_deref(),
        items,
        None,
    )
}

pub(crate) async fn role_members(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let (tenant, _, _): Opened = opened!(state, headers, raw, ROLES);
    let Some(role) = (0..ROLE_DEFS.len()).find(|r| role_id(tenant, *r) == id.to_ascii_lowercase())
    else {
        return graph_error(
            &state,
            &headers,
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
        );
    };
    let items = ROLE_DEFS[role]
        .3
        .iter()
        .filter_map(|i| tenant.user(*i))
        .map(|u| member_json(&u))
        .collect();
    listing(&state, &headers, "directoryObjects", None, items, None)
}

pub(crate) const MANAGED_DEVICES: Resource = Resource {
    roles: &[
        "DeviceManagementManagedDevices.Read.All",
        "DeviceManagementManagedDevices.ReadWrite.All",
    ],
    options: &["$select", "$top", "$skiptoken"],
    fields: &[
        "id",
        "userId",
        "deviceName",
        "managedDeviceOwnerType",
        "enrolledDateTime",
        "lastSyncDateTime",
        "operatingSystem",
        "osVersion",
        "complianceState",
        "managementAgent",
        "azureADDeviceId",
        "userPrincipalName",
        "userDisplayName",
        "emailAddress",
        "model",
        "manufacturer",
        "serialNumber",
        "isEncrypted",
        "totalStorageSpaceInBytes",
        "freeStorageSpaceInBytes",
        "physicalMemoryInBytes",
        "jailBroken",
        "deviceEnrollmentType",
        "azureADRegistered",
    ],
    type_name: "managedDevice",
};
pub(crate) const DETECTED_APPS: Resource = Resource {
    roles: MANAGED_DEVICES.roles,
    options: &["$select", "$top"],
    fields: &[
        "id",
        "displayName",
        "version",
        "sizeInByte",
        "deviceCount",
        "publisher",
        "platform",
    ],
    type_name: "detectedApp",
};

/// A device of the tenant: two possible per user (a laptop, a phone), present by the user's hash.
struct SimDevice {
    number: u64,
    phone: bool,
    user: crate::people::SimUser,
}

fn devices_of(user: &crate::people::SimUser) -> Vec<SimDevice> {
    if user.user_type != "Member" || user.licenses.is_empty() || !user.account_enabled {
        return Vec::new();
    }
    let h = hash3(0xde71, user.id.as_u128() as u64, 0);
    let mut devices = Vec::new();
    if !h.is_multiple_of(4) {
        devices.push(SimDevice {
            number: user.index * 2,
            phone: false,
            user: user.clone(),
        });
    }
    if h.is_multiple_of(3) {
        devices.push(SimDevice {
            number: user.index * 2 + 1,
            phone: true,
            user: user.clone(),
        });
    }
    devices
}

fn has_app(device: &SimDevice, app: usize) -> bool {
    crate::software::has_app(device.number, device.phone, app)
}

fn device_id(tenant: &Tenant, number: u64) -> String {
    object_guid(tenant, number, 0xdef)
}

/// The number of the device with this managed device id, if the tenant holds it now.
pub(crate) fn device_number(tenant: &Tenant, id: &str) -> Option<u64> {
    let mut start = 0;
    loop {
        let (devices, next) = device_page(tenant, start, 2_000, |_| true);
        if let Some(found) = devices
            .iter()
            .find(|d| device_id(tenant, d.number).eq_ignore_ascii_case(id))
        {
            return Some(found.number);
        }
        start = next?;
    }
}

/// The ids of every Intune device the tenant holds now, for tests that compare a client's
/// reading with the simulator's truth.
pub fn managed_device_ids(tenant: &Tenant) -> Vec<String> {
    let mut ids = Vec::new();
    let mut start = 0;
    loop {
        let (devices, next) = device_page(tenant, start, 2_000, |_| true);
        ids.extend(devices.iter().map(|d| device_id(tenant, d.number)));
        match next {
            Some(n) => start = n,
            None => return ids,
        }
    }
}

fn device_json(state: &SimState, tenant: &Tenant, d: &SimDevice) -> Value {
    let h = hash3(tenant.index, d.number, 0xdef);
    let id = device_id(tenant, d.number);
    let (os, version, manufacturer, model, storage) = if d.phone {
        if h.is_multiple_of(2) {
            ("iOS", "18.1.1", "Apple", "iPhone 15", 128_000_000_000i64)
        } else {
            ("Android", "14", "samsung", "SM-S921B", 256_000_000_000)
        }
    } else if h.is_multiple_of(5) {
        (
            "macOS",
            "15.1.1",
            "Apple",
            "MacBook Air (M3)",
            512_000_000_000,
        )
    } else {
        (
            "Windows",
            "10.0.22631.4460",
            "Dell Inc.",
            "Latitude 7440",
            512_000_000_000,
        )
    };
    let changed = read(&tenant.device_changes)
        .get(&d.number)
        .and_then(|c| c.compliance_state.clone());
    let compliance = changed.unwrap_or_else(|| {
        match h % 10 {
            0 => "noncompliant",
            1 => "inGracePeriod",
            _ => "compliant",
        }
        .to_string()
    });
    let prefix = if d.phone { "PHONE" } else { "LAPTOP" };
    json!({
        "@odata.type": "#microsoft.graph.managedDevice",
        "id": id, "userId": d.user.id.to_string(), "deviceName": format!("{prefix}-{:05}", d.number % 100_000),
        "managedDeviceOwnerType": if d.phone && h.is_multiple_of(4) { "personal" } else { "company" },
        "enrolledDateTime": day(state, -((h % 700) as i64) - 30), "lastSyncDateTime": day(state, -(((h >> 8) % 9) as i64)),
        "operatingSystem": os, "osVersion": version, "complianceState": compliance, "jailBroken": "False", "managementAgent": "mdm",
        "azureADRegistered": true, "deviceEnrollmentType": if d.phone { "userEnrollment" } else { "windowsAzureADJoin" },
        "azureADDeviceId": guid(h ^ 0xad, h).to_string(), "userPrincipalName": d.user.upn, "userDisplayName": d.user.display_name,
        "emailAddress": d.user.mail, "model": model, "manufacturer": manufacturer,
        "serialNumber": format!("{:010X}", h % 0xFF_FFFF_FFFF), "isEncrypted": !h.is_multiple_of(7),
        "totalStorageSpaceInBytes": storage, "freeStorageSpaceInBytes": storage / 100 * ((h % 60) as i64 + 10),
        "physicalMemoryInBytes": if d.phone { 8_000_000_000i64 } else { 16_000_000_000 },
    })
}

/// Devices from the user at `start` on, up to about `top`, and where the next page starts.
fn device_page(
    tenant: &Tenant,
    start: u64,
    top: usize,
    keep: impl Fn(&SimDevice) -> bool,
) -> (Vec<SimDevice>, Option<u64>) {
    let (users, next) = tenant.users_from(start, top.div_ceil(2));
    let changes = read(&tenant.device_changes);
    (
        users
            .iter()
            .flat_map(devices_of)
            .filter(|d| !changes.get(&d.number).is_some_and(|c| c.removed))
            .filter(|d| keep(d))
            .collect(),
        next,
    )
}

/// Which view of a device a listing shows: Intune's managed device or Entra's device object.
#[derive(Clone, Copy)]
enum DeviceView {
    Managed,
    Entra,
}

#[allow(clippy::too_many_arguments)]
fn device_listing(
    state: &SimState,
    headers: &HeaderMap,
    tenant: &Tenant,
    pairs: &[(String, String)],
    fields: Option<&[&str]>,
    base: &str,
    view: DeviceView,
    keep: impl Fn(&SimDevice) -> bool,
) -> Response {
    let top = param(pairs, "$top")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 999);
    let start = param(pairs, "$skiptoken")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(0);
    let (devices, next) = device_page(tenant, start, top, keep);
    let items = devices
        .iter()
        .map(|d| match view {
            DeviceView::Managed => device_json(state, tenant, d),
            DeviceView::Entra => entra_device_json(tenant, d, &device_json(state, tenant, d)),
        })
        .collect();
    let select = param(pairs, "$select")
        .map(|s| format!("$select={s}&"))
        .unwrap_or_default();
    let next = next.map(|n| {
        format!(
            "{}/v1.0/{base}?{select}$top={top}&$skiptoken={n}",
            state.base_url
        )
    });
    let set = match view {
        DeviceView::Managed => "deviceManagement/managedDevices",
        DeviceView::Entra => "devices",
    };
    listing(state, headers, set, fields, items, next)
}

/// The Entra ID device object of an enrolled device: joined laptops, registered phones.
fn entra_device_json(tenant: &Tenant, d: &SimDevice, managed: &Value) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.device",
        "id": object_guid(tenant, d.number, 0xe17),
        "deviceId": managed["azureADDeviceId"],
        "displayName": managed["deviceName"],
        "operatingSystem": managed["operatingSystem"],
        "operatingSystemVersion": managed["osVersion"],
        "trustType": if d.phone { "Workplace" } else { "AzureAd" },
        "profileType": "RegisteredDevice",
        "isCompliant": managed["complianceState"] == "compliant",
        "isManaged": true,
        "accountEnabled": true,
        "manufacturer": managed["manufacturer"],
        "model": managed["model"],
        "deviceOwnership": if managed["managedDeviceOwnerType"] == "personal" { "Personal" } else { "Company" },
        "registrationDateTime": managed["enrolledDateTime"],
        "approximateLastSignInDateTime": managed["lastSyncDateTime"],
        "mdmAppId": "0000000a-0000-0000-c000-000000000000",
    })
}

pub(crate) const DEVICES: Resource = Resource {
    roles: &[
        "Device.Read.All",
        "Device.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ],
    options: &["$select", "$top", "$skiptoken"],
    fields: &[
        "id",
        "deviceId",
        "displayName",
        "operatingSystem",
        "operatingSystemVersion",
        "trustType",
        "profileType",
        "isCompliant",
        "isManaged",
        "accountEnabled",
        "manufacturer",
        "model",
        "deviceOwnership",
        "registrationDateTime",
        "approximateLastSignInDateTime",
        "mdmAppId",
    ],
    type_name: "device",
};

/// `/devices`: Entra ID's device objects.
pub(crate) async fn devices(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let (tenant, pairs, fields): Opened = opened!(state, headers, raw, DEVICES);
    device_listing(
        &state,
        &headers,
        tenant,
        &pairs,
        fields.as_deref(),
        "devices",
        DeviceView::Entra,
        |_| true,
    )
}

pub(crate) async fn managed_devices(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let (tenant, pairs, fields): Opened = opened!(state, headers, raw, MANAGED_DEVICES);
    device_listing(
        &state,
        &headers,
        tenant,
        &pairs,
        fields.as_deref(),
        "deviceManagement/managedDevices",
        DeviceView::Managed,
        |_| true,
    )
}

fn app_id(tenant: &Tenant, app: usize) -> String {
    format!(
        "{:016x}{:016x}{:016x}",
        hash3(tenant.index, app as u64, 0xa1),
        hash3(tenant.index, app as u64, 0xa2),
        hash3(tenant.index, app as u64, 0xa3)
    )
}

pub(crate) async fn detected_apps(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let (tenant, _, fields): Opened = opened!(state, headers, raw, DETECTED_APPS);
    let mut counts = vec![0i64; APPS.len()];
    let mut start = 0;
    loop {
        let (devices, next) = device_page(tenant, start, 2_000, |_| true);
        for device in &devices {
            for (app, count) in counts.iter_mut().enumerate() {
                *count += i64::from(has_app(device, app));
            }
        }
        match next {
            Some(n) => start = n,
            None => break,
        }
    }
    let items = APPS
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let (name, version, publisher, platform, size) = crate::software::variant(i);
            json!({ "id": app_id(tenant, i), "displayName": name, "version": version, "sizeInByte": size, "deviceCount": counts[i], "publisher": publisher, "platform": platform })
        })
        .collect();
    listing(
        &state,
        &headers,
        "deviceManagement/detectedApps",
        fields.as_deref(),
        items,
        None,
    )
}

pub(crate) async fn detected_app_devices(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let (tenant, pairs, fields): Opened = opened!(state, headers, raw, MANAGED_DEVICES);
    let Some(app) = (0..APPS.len()).find(|a| app_id(tenant, *a) == id) else {
        return graph_error(
            &state,
            &headers,
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            &format!("No detected app with id {id}."),
        );
    };
    device_listing(
        &state,
        &headers,
        tenant,
        &pairs,
        fields.as_deref(),
        &format!("deviceManagement/detectedApps/{id}/managedDevices"),
        DeviceView::Managed,
        |d| has_app(d, app),
    )
}
