//! The simulator's directory as a client sees it over HTTP: users with every property Graph
//! declares, deletions and restores in delta rounds, and partner tenants with their customers.

use graph_sim::{RunningSimulator, SimConfig, TenantSpec};
use serde_json::{Value, json};

async fn simulator(config: SimConfig) -> RunningSimulator {
    graph_sim::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

async fn users(count: u64) -> RunningSimulator {
    simulator(SimConfig {
        tenants: vec![TenantSpec::with_users(count)],
        ..SimConfig::default()
    })
    .await
}

/// The token endpoint's answer for `client_id` and `secret` at `tenant`'s endpoint.
async fn token_answer(
    sim: &RunningSimulator,
    tenant: &str,
    client_id: &str,
    secret: &str,
) -> (u16, Value) {
    let answer = reqwest::Client::new()
        .post(format!("{}/{tenant}/oauth2/v2.0/token", sim.url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap())
}

/// A Graph token of tenant `index`'s own app.
async fn app_token(sim: &RunningSimulator, index: usize) -> String {
    let tenant = &sim.tenants()[index];
    let (status, body) = token_answer(
        sim,
        &tenant.tenant_id,
        &tenant.client_id,
        &tenant.client_secret,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

/// GET a Graph path (or a whole link) with a bearer token: the status and the body.
async fn get(sim: &RunningSimulator, token: &str, path: &str) -> (u16, Value) {
    let url = if path.starts_with("http") {
        path.to_string()
    } else {
        format!("{}{path}", sim.url)
    };
    let answer = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// A control-API call: the status and the body (null when there is none).
async fn control(
    sim: &RunningSimulator,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", sim.url));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// The second user Graph lists, with its mail and addresses.
async fn second_user(sim: &RunningSimulator, token: &str) -> Value {
    let (status, page) = get(sim, token, "/v1.0/users?$select=id,mail,proxyAddresses").await;
    assert_eq!(status, 200, "{page}");
    page["value"][1].clone()
}

/// Every property of Microsoft's `user` type, as the CSDL declares it (base types included).
const CSDL_USER_PROPERTIES: &str = "id,deletedDateTime,aboutMe,accountEnabled,ageGroup,assignedLicenses,assignedPlans,authorizationInfo,birthday,businessPhones,city,companyName,consentProvidedForMinor,country,createdDateTime,creationType,customSecurityAttributes,department,deviceEnrollmentLimit,displayName,employeeHireDate,employeeId,employeeLeaveDateTime,employeeOrgData,employeeType,externalUserState,externalUserStateChangeDateTime,faxNumber,givenName,hireDate,identities,identityParentId,imAddresses,interests,isManagementRestricted,isResourceAccount,jobTitle,lastPasswordChangeDateTime,legalAgeGroupClassification,licenseAssignmentStates,mail,mailboxSettings,mailNickname,mobilePhone,mySite,officeLocation,onPremisesDistinguishedName,onPremisesDomainName,onPremisesExtensionAttributes,onPremisesImmutableId,onPremisesLastSyncDateTime,onPremisesProvisioningErrors,onPremisesSamAccountName,onPremisesSecurityIdentifier,onPremisesSyncEnabled,onPremisesUserPrincipalName,otherMails,passwordPolicies,passwordProfile,pastProjects,postalCode,preferredDataLocation,preferredLanguage,preferredName,print,provisionedPlans,proxyAddresses,responsibilities,schools,securityIdentifier,serviceProvisioningErrors,showInAddressList,signInActivity,signInSessionsValidFromDateTime,skills,state,streetAddress,surname,usageLocation,userPrincipalName,userType";

/// What Graph serves only on a single user.
const SINGLE_USER_ONLY: &[&str] = &[
    "aboutMe",
    "birthday",
    "hireDate",
    "interests",
    "mySite",
    "pastProjects",
    "preferredName",
    "responsibilities",
    "schools",
    "skills",
    "mailboxSettings",
];

#[tokio::test]
async fn every_csdl_user_property_can_be_selected() {
    let sim = users(5).await;
    let token = app_token(&sim, 0).await;
    let all: Vec<&str> = CSDL_USER_PROPERTIES.split(',').collect();

    // One user: every property, each answered (null or empty where the user has none).
    let (status, first) = get(&sim, &token, "/v1.0/users?$top=1").await;
    assert_eq!(status, 200, "{first}");
    let id = first["value"][0]["id"].as_str().unwrap().to_string();
    let (status, user) = get(
        &sim,
        &token,
        &format!("/v1.0/users/{id}?$select={CSDL_USER_PROPERTIES}"),
    )
    .await;
    assert_eq!(status, 200, "{user}");
    for name in &all {
        assert!(user.get(*name).is_some(), "{name} is not in {user}");
    }
    assert!(user["proxyAddresses"].is_array(), "{user}");
    assert!(user["companyName"].is_null(), "{user}");

    // Listings take every property but those Graph serves only on a single user.
    let listable: Vec<&str> = all
        .iter()
        .copied()
        .filter(|n| !SINGLE_USER_ONLY.contains(n) && *n != "signInActivity")
        .collect();
    let select = listable.join(",");
    for path in ["/v1.0/users", "/v1.0/users/delta"] {
        let (status, page) = get(&sim, &token, &format!("{path}?$select={select}")).await;
        assert_eq!(status, 200, "{path}: {page}");
        let first = &page["value"][0];
        for name in &listable {
            assert!(
                first.get(*name).is_some(),
                "{path}: {name} is not in {first}"
            );
        }
        let (status, refusal) = get(&sim, &token, &format!("{path}?$select=id,skills")).await;
        assert_eq!(status, 501, "{path}: {refusal}");
        assert_eq!(refusal["error"]["code"], "NotImplemented");
    }
    let (status, page) = get(&sim, &token, "/v1.0/users?$select=signInActivity&$top=5").await;
    assert_eq!(status, 200, "{page}");

    // A name Graph does not know is still refused as Graph refuses it.
    let (status, refusal) = get(&sim, &token, "/v1.0/users?$select=id,shoeSize").await;
    assert_eq!(status, 400, "{refusal}");
    assert_eq!(refusal["error"]["code"], "Request_BadRequest");
    assert_eq!(
        refusal["error"]["message"],
        "Could not find a property named 'shoeSize' on type 'microsoft.graph.user'."
    );
}

#[tokio::test]
async fn users_carry_addresses_creation_dates_and_on_premises_flags() {
    let sim = users(60).await;
    let token = app_token(&sim, 0).await;
    let select = "id,mail,userType,userPrincipalName,proxyAddresses,createdDateTime,onPremisesSyncEnabled,otherMails,mailNickname,assignedPlans,assignedLicenses";
    let (status, page) = get(&sim, &token, &format!("/v1.0/users?$select={select}")).await;
    assert_eq!(status, 200, "{page}");
    let listed = page["value"].as_array().unwrap();
    for user in listed {
        let created = user["createdDateTime"].as_str().unwrap();
        assert!(created.len() == 20 && created.ends_with('Z'), "{created}");
        assert!(!user["mailNickname"].as_str().unwrap().is_empty());
        if let Some(mail) = user["mail"].as_str() {
            assert_eq!(user["proxyAddresses"][0], format!("SMTP:{mail}"), "{user}");
        }
        let licensed = !user["assignedLicenses"].as_array().unwrap().is_empty();
        assert_eq!(
            !user["assignedPlans"].as_array().unwrap().is_empty(),
            licensed,
            "{user}"
        );
    }
    let aliased = listed.iter().filter(|u| {
        u["proxyAddresses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str().unwrap().starts_with("smtp:"))
    });
    assert!(aliased.count() > 10);
    assert!(listed.iter().any(|u| u["onPremisesSyncEnabled"] == true));
    assert!(listed.iter().any(|u| u["onPremisesSyncEnabled"].is_null()));
    let guest = listed.iter().find(|u| u["userType"] == "Guest").unwrap();
    assert!(
        guest["userPrincipalName"]
            .as_str()
            .unwrap()
            .contains("#EXT#@")
    );
    assert_eq!(guest["otherMails"][0], guest["mail"]);

    // The same seed gives the same users.
    let again = users(60).await;
    let again_token = app_token(&again, 0).await;
    let (_, same) = get(
        &again,
        &again_token,
        &format!("/v1.0/users?$select={select}"),
    )
    .await;
    assert_eq!(same["value"], page["value"]);
}

#[tokio::test]
async fn the_control_api_sets_addresses_and_mail_together() {
    let sim = users(3).await;
    let token = app_token(&sim, 0).await;
    let patch = reqwest::Method::PATCH;
    let addresses = json!([
        "SMTP:ann.lee@contoso.example",
        "smtp:ann@contoso.onmicrosoft.com",
        "smtp:a.lee@contoso.example"
    ]);
    let (status, answer) = control(
        &sim,
        patch.clone(),
        "/_sim/tenants/0/users/1",
        Some(json!({ "proxyAddresses": addresses })),
    )
    .await;
    assert_eq!(status, 204, "{answer}");
    let user = second_user(&sim, &token).await;
    assert_eq!(user["proxyAddresses"], addresses);
    assert_eq!(
        user["mail"], "ann.lee@contoso.example",
        "mail follows the primary address"
    );

    // A new mail becomes the primary address; the old one stays as an alias.
    let (status, answer) = control(
        &sim,
        patch.clone(),
        "/_sim/tenants/0/users/1",
        Some(json!({ "mail": "a.lee@contoso.example" })),
    )
    .await;
    assert_eq!(status, 204, "{answer}");
    let user = second_user(&sim, &token).await;
    assert_eq!(user["mail"], "a.lee@contoso.example");
    assert_eq!(
        user["proxyAddresses"],
        json!([
            "SMTP:a.lee@contoso.example",
            "smtp:ann.lee@contoso.example",
            "smtp:ann@contoso.onmicrosoft.com"
        ])
    );

    // A POST takes them too.
    let (status, added) = control(
        &sim,
        reqwest::Method::POST,
        "/_sim/tenants/0/users",
        Some(json!({ "displayName": "Bo", "proxyAddresses": ["SMTP:bo@contoso.example"] })),
    )
    .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["mail"], "bo@contoso.example");
    assert_eq!(added["proxyAddresses"], json!(["SMTP:bo@contoso.example"]));

    // Bad values are refused by name, for a PATCH as for a POST.
    for (body, named) in [
        (
            json!({ "proxyAddresses": "SMTP:a@b.example" }),
            "proxyAddresses",
        ),
        (
            json!({ "proxyAddresses": ["a@b.example"] }),
            "proxyAddresses",
        ),
        (
            json!({ "proxyAddresses": ["smtp:nobody"] }),
            "proxyAddresses",
        ),
        (
            json!({ "proxyAddresses": ["SMTP:a@b.example", "SMTP:c@b.example"] }),
            "SMTP:",
        ),
        (
            json!({ "proxyAddresses": ["smtp:a@b.example", "SMTP:a@b.example"] }),
            "twice",
        ),
        (json!({ "proxyAddresses": [7] }), "proxyAddresses"),
        (
            json!({ "mail": "x@b.example", "proxyAddresses": ["SMTP:y@b.example"] }),
            "mail",
        ),
        (json!({ "mail": 7 }), "mail"),
        (json!({ "nickname": "an" }), "nickname"),
        (json!({ "displayName": "" }), "displayName"),
    ] {
        for (method, path) in [
            (patch.clone(), "/_sim/tenants/0/users/2"),
            (reqwest::Method::POST, "/_sim/tenants/0/users"),
        ] {
            let (status, answer) = control(&sim, method.clone(), path, Some(body.clone())).await;
            assert_eq!(status, 400, "{method} {body}: {answer}");
            let message = answer["error"].as_str().unwrap_or_default();
            assert!(message.contains(named), "{method} {body}: {message}");
        }
    }
}

/// Follows a delta round from `link` to its end: every item and the new delta link.
async fn delta_round(sim: &RunningSimulator, token: &str, link: &str) -> (Vec<Value>, String) {
    let mut items = Vec::new();
    let mut next = link.to_string();
    loop {
        let (status, page) = get(sim, token, &next).await;
        assert_eq!(status, 200, "{page}");
        items.extend(page["value"].as_array().unwrap().iter().cloned());
        if let Some(link) = page["@odata.nextLink"].as_str() {
            next = link.to_string();
        } else {
            return (
                items,
                page["@odata.deltaLink"].as_str().unwrap().to_string(),
            );
        }
    }
}

#[tokio::test]
async fn deleted_users_leave_delta_changed_or_deleted_and_come_back_restored() {
    let sim = users(6).await;
    let token = app_token(&sim, 0).await;
    let (first, mut link) =
        delta_round(&sim, &token, "/v1.0/users/delta?$select=id,displayName").await;
    assert_eq!(first.len(), 6);
    let id = |index: usize| first[index]["id"].as_str().unwrap().to_string();
    let delete = reqwest::Method::DELETE;
    let post = reqwest::Method::POST;

    // Deleted by an admin: to the recycle bin, so `changed`.
    let (status, answer) = control(&sim, delete.clone(), "/_sim/tenants/0/users/1", None).await;
    assert_eq!(status, 204, "{answer}");
    let (changes, next) = delta_round(&sim, &token, &link).await;
    link = next;
    assert_eq!(
        changes,
        vec![json!({ "id": id(1), "@removed": { "reason": "changed" } })]
    );
    let (status, _) = get(&sim, &token, &format!("/v1.0/users/{}", id(1))).await;
    assert_eq!(status, 404);

    // Deleted for good: `deleted`, and no restore brings it back.
    let (status, answer) = control(
        &sim,
        delete.clone(),
        "/_sim/tenants/0/users/2?permanent=true",
        None,
    )
    .await;
    assert_eq!(status, 204, "{answer}");
    let (changes, next) = delta_round(&sim, &token, &link).await;
    link = next;
    assert_eq!(
        changes,
        vec![json!({ "id": id(2), "@removed": { "reason": "deleted" } })]
    );
    let (status, answer) =
        control(&sim, post.clone(), "/_sim/tenants/0/users/2/restore", None).await;
    assert_eq!(status, 404, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("for good"),
        "{answer}"
    );

    // Restored from the recycle bin: back as it was, with the same id and no annotation.
    let (status, answer) =
        control(&sim, post.clone(), "/_sim/tenants/0/users/1/restore", None).await;
    assert_eq!(status, 204, "{answer}");
    let (changes, next) = delta_round(&sim, &token, &link).await;
    link = next;
    assert_eq!(changes, vec![first[1].clone()]);
    let (status, user) = get(&sim, &token, &format!("/v1.0/users/{}", id(1))).await;
    assert_eq!(status, 200, "{user}");
    let (status, answer) =
        control(&sim, post.clone(), "/_sim/tenants/0/users/3/restore", None).await;
    assert_eq!(status, 404, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("not deleted"),
        "{answer}"
    );

    // Emptied from the recycle bin after a soft delete: `deleted` at last.
    control(&sim, delete.clone(), "/_sim/tenants/0/users/1", None).await;
    let (status, answer) = control(
        &sim,
        delete.clone(),
        "/_sim/tenants/0/users/1?permanent=true",
        None,
    )
    .await;
    assert_eq!(status, 204, "{answer}");
    let (changes, _) = delta_round(&sim, &token, &link).await;
    assert_eq!(
        changes,
        vec![json!({ "id": id(1), "@removed": { "reason": "deleted" } })]
    );

    // A full listing has neither.
    let (all, _) = delta_round(&sim, &token, "/v1.0/users/delta?$select=id").await;
    assert_eq!(all.len(), 4);
    let (status, answer) = control(&sim, delete, "/_sim/tenants/0/users/99", None).await;
    assert_eq!(status, 404, "{answer}");
}

async fn partner_and_customers() -> RunningSimulator {
    simulator(SimConfig {
        tenants: vec![
            TenantSpec::with_users(3),
            TenantSpec::with_users(4),
            TenantSpec::with_users(5),
        ],
        partner: true,
        ..SimConfig::default()
    })
    .await
}

/// The claims of an access token (the simulator's are JWTs).
fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn a_partner_lists_its_customers_by_gdap_and_by_contracts() {
    let sim = partner_and_customers().await;
    let tenants = sim.tenants();
    let token = app_token(&sim, 0).await;

    let (status, page) = get(
        &sim,
        &token,
        "/v1.0/tenantRelationships/delegatedAdminCustomers",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/v1.0/tenantRelationships/$metadata#delegatedAdminCustomers")
    );
    let customers = page["value"].as_array().unwrap();
    assert_eq!(customers.len(), 2);
    for (customer, tenant) in customers.iter().zip(&tenants[1..]) {
        assert_eq!(
            customer["@odata.type"],
            "#microsoft.graph.delegatedAdminCustomer"
        );
        assert!(
            customer["@odata.etag"]
                .as_str()
                .unwrap()
                .starts_with("W/\"")
        );
        assert_eq!(customer["id"], tenant.tenant_id.as_str());
        assert_eq!(customer["tenantId"], tenant.tenant_id.as_str());
        assert_eq!(customer["displayName"], tenant.display_name.as_str());
    }

    // Page by page, as a client follows them.
    let (status, first) = get(
        &sim,
        &token,
        "/v1.0/tenantRelationships/delegatedAdminCustomers?$top=1",
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["value"][0]["tenantId"], tenants[1].tenant_id.as_str());
    let next = first["@odata.nextLink"].as_str().unwrap();
    let (status, second) = get(&sim, &token, next).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(
        second["value"][0]["tenantId"],
        tenants[2].tenant_id.as_str()
    );
    assert!(second.get("@odata.nextLink").is_none());

    // Without the GDAP permission the partner is refused there, and reads /contracts instead.
    let (status, _) = control(
        &sim,
        reqwest::Method::PUT,
        "/_sim/tenants/0/roles",
        Some(json!(["Directory.Read.All"])),
    )
    .await;
    assert_eq!(status, 204);
    let token = app_token(&sim, 0).await;
    let (status, refusal) = get(
        &sim,
        &token,
        "/v1.0/tenantRelationships/delegatedAdminCustomers",
    )
    .await;
    assert_eq!(status, 403, "{refusal}");
    assert_eq!(refusal["error"]["code"], "Authorization_RequestDenied");
    let (status, contracts) = get(&sim, &token, "/v1.0/contracts").await;
    assert_eq!(status, 200, "{contracts}");
    let contracts = contracts["value"].as_array().unwrap();
    assert_eq!(contracts.len(), 2);
    for (contract, tenant) in contracts.iter().zip(&tenants[1..]) {
        assert_eq!(contract["customerId"], tenant.tenant_id.as_str());
        assert_eq!(contract["defaultDomainName"], tenant.domain.as_str());
        assert_eq!(contract["displayName"], tenant.display_name.as_str());
        assert_eq!(contract["contractType"], "ResellerPartner");
        assert_ne!(contract["id"], tenant.tenant_id.as_str());
    }

    // A relationship that ends takes the customer off both lists; a new one brings it back.
    let (status, answer) = control(
        &sim,
        reqwest::Method::DELETE,
        "/_sim/tenants/1/partner-relationship",
        None,
    )
    .await;
    assert_eq!(status, 204, "{answer}");
    let (_, contracts) = get(&sim, &token, "/v1.0/contracts?$select=customerId").await;
    let listed: Vec<&Value> = contracts["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["customerId"])
        .collect();
    assert_eq!(listed, vec![&json!(tenants[2].tenant_id)]);
    control(
        &sim,
        reqwest::Method::PUT,
        "/_sim/tenants/1/partner-relationship",
        None,
    )
    .await;
    let (_, contracts) = get(&sim, &token, "/v1.0/contracts").await;
    assert_eq!(contracts["value"].as_array().unwrap().len(), 2);

    // A customer lists no customers of its own.
    let customer_token = app_token(&sim, 1).await;
    let (status, contracts) = get(&sim, &customer_token, "/v1.0/contracts").await;
    assert_eq!(status, 200, "{contracts}");
    assert_eq!(contracts["value"], json!([]));
}

#[tokio::test]
async fn a_partner_gets_tokens_only_from_customers_that_consented_its_app() {
    let sim = partner_and_customers().await;
    let tenants = sim.tenants();
    let partner = &tenants[0];

    // A consented customer issues the partner's app a token of its own tenant.
    let (status, body) = token_answer(
        &sim,
        &tenants[1].tenant_id,
        &partner.client_id,
        &partner.client_secret,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    let granted = claims(token);
    assert_eq!(granted["tid"], tenants[1].tenant_id.as_str());
    assert_eq!(granted["appid"], partner.client_id.as_str());
    assert!(
        granted["roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "User.Read.All")
    );
    let (status, organization) = get(&sim, token, "/v1.0/organization").await;
    assert_eq!(status, 200, "{organization}");
    assert_eq!(
        organization["value"][0]["id"],
        tenants[1].tenant_id.as_str()
    );
    let (status, people) = get(&sim, token, "/v1.0/users").await;
    assert_eq!(status, 200, "{people}");
    assert_eq!(people["value"].as_array().unwrap().len(), 4);

    // A wrong secret is still refused there.
    let (status, body) = token_answer(
        &sim,
        &tenants[1].tenant_id,
        &partner.client_id,
        "not-the-secret",
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error_codes"], json!([7000215]));

    // A customer whose admin has not consented answers as Entra does: no service principal.
    let (status, answer) = control(
        &sim,
        reqwest::Method::PUT,
        "/_sim/tenants/2/partner-consent",
        Some(json!({ "consented": false })),
    )
    .await;
    assert_eq!(status, 204, "{answer}");
    let (status, body) = token_answer(
        &sim,
        &tenants[2].tenant_id,
        &partner.client_id,
        &partner.client_secret,
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"], json!([7000229]));
    let description = body["error_description"].as_str().unwrap();
    assert!(description.starts_with("AADSTS7000229: "), "{description}");
    assert!(description.contains(&tenants[2].tenant_id), "{description}");

    // Its consent given, it issues tokens again; the partner's own tenant is unchanged.
    control(
        &sim,
        reqwest::Method::PUT,
        "/_sim/tenants/2/partner-consent",
        Some(json!({ "consented": true })),
    )
    .await;
    let (status, body) = token_answer(
        &sim,
        &tenants[2].tenant_id,
        &partner.client_id,
        &partner.client_secret,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["tid"],
        tenants[2].tenant_id.as_str()
    );
    assert_eq!(
        claims(&app_token(&sim, 0).await)["tid"],
        partner.tenant_id.as_str()
    );

    // The control API and the announcement say who is who.
    let (status, described) = control(&sim, reqwest::Method::GET, "/_sim/partner", None).await;
    assert_eq!(status, 200, "{described}");
    assert_eq!(described["client_id"], partner.client_id.as_str());
    assert_eq!(described["customers"][1]["consented"], true);
    let announced = sim.announcement();
    assert_eq!(
        announced["partner"]["client_secret"],
        partner.client_secret.as_str()
    );
    assert_eq!(
        announced["partner"]["customers"].as_array().unwrap().len(),
        2
    );
    let (status, refusal) = control(
        &sim,
        reqwest::Method::PUT,
        "/_sim/tenants/0/partner-consent",
        Some(json!({ "consented": false })),
    )
    .await;
    assert_eq!(status, 404, "{refusal}");
    assert!(
        refusal["error"]
            .as_str()
            .unwrap()
            .contains("partner itself"),
        "{refusal}"
    );

    // A simulator without a partner says so.
    let plain = users(2).await;
    let (status, refusal) = control(
        &plain,
        reqwest::Method::PUT,
        "/_sim/tenants/0/partner-relationship",
        None,
    )
    .await;
    assert_eq!(status, 404, "{refusal}");
    assert!(
        refusal["error"].as_str().unwrap().contains("--partner"),
        "{refusal}"
    );
    assert!(plain.announcement().get("partner").is_none());
}
