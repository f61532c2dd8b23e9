//! Partner connections against the simulator's partner tenant: each customer listed by the
//! partner's GDAP relationships (or its contracts) synced as a tenant of its own with the same
//! multi-tenant app; a customer that has not consented the app failing alone with the link that
//! fixes it; a customer whose relationship ended left as it was; and the connection test naming
//! each customer's state.

use domain::{
    ClientId, ClientSecret, Cloud, ConnectionName, Credential, Dataset, MatchRule, RunStatus,
    StepStatus, TenantId, TenantState,
};
use graph_sim::{DEFAULT_ROLES, GDAP_ROLE, SimConfig, TenantSpec};
use store::{ConnectionMode, ContactFilter, NewConnection, OrganizationSetup, TenantChoice};
use testkit::{StoreKind, TestApp};

testkit::on_both_stores!(
    each_consented_customer_is_synced_into_its_own_tenant,
    an_unconsented_customer_fails_alone_with_its_consent_link,
    a_customer_whose_relationship_ended_is_left_as_it_was,
    customers_are_listed_from_contracts_without_the_gdap_permission,
    the_connection_test_names_each_customers_state,
);

const USERS: u64 = 4;
const FABRIKAM: usize = 1;
const NORTHWIND: usize = 2;

/// A partner (Contoso Ltd, tenant 0) and two customers: Fabrikam Inc and Northwind Traders.
async fn partner_app(store: StoreKind) -> TestApp {
    TestApp::new_on(
        store,
        SimConfig {
            seed: 9,
            tenants: vec![TenantSpec::with_users(USERS); 3],
            partner: true,
            ..SimConfig::default()
        },
    )
    .await
}

/// Adds the partner connection `csp`, creating organisations for customers or not.
async fn add_partner(app: &TestApp, create_organization: bool) -> store::Connection {
    let partner = app.tenant(0);
    let connection = app
        .store
        .add_connection_in(
            NewConnection {
                name: ConnectionName::parse("csp").unwrap(),
                tenant_id: TenantId::parse(&partner.tenant_id).unwrap(),
                client_id: ClientId::parse(&partner.client_id).unwrap(),
                credential: Credential::Secret(
                    ClientSecret::parse(&partner.client_secret).unwrap(),
                ),
                cloud: Cloud::custom(&app.sim.url, &app.sim.url).unwrap(),
                datasets: vec![
                    Dataset::Organization,
                    Dataset::Licenses,
                    Dataset::Users,
                    Dataset::Mailboxes,
                ],
            },
            ConnectionMode::Partner,
            OrganizationSetup {
                create_organization,
                organization: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(connection.mode, ConnectionMode::Partner);
    connection
}

fn tenant_of(app: &TestApp, position: usize) -> TenantId {
    TenantId::parse(&app.tenant_key(position)).unwrap()
}

/// Contacts of the tenant at `position`, archived ones left out.
async fn contacts_of(app: &TestApp, position: usize) -> Vec<store::ContactRow> {
    let filter = ContactFilter {
        tenant_id: Some(tenant_of(app, position)),
        ..ContactFilter::default()
    };
    let mut contacts = Vec::new();
    app.store
        .each_contact(&filter, |c| {
            contacts.push(c);
            Ok(())
        })
        .await
        .unwrap();
    contacts
}

/// The steps of the tenant at `position`, in order.
fn steps_of(report: &sync::SyncReport, app: &TestApp, position: usize) -> Vec<sync::StepReport> {
    let tenant = tenant_of(app, position);
    report
        .steps
        .iter()
        .filter(|s| s.tenant_id == tenant)
        .cloned()
        .collect()
}

async fn each_consented_customer_is_synced_into_its_own_tenant(store: StoreKind) {
    let app = partner_app(store).await;
    // Fabrikam's organisation is already kept; Northwind fits none, and partner connections do
    // not create organisations unless told to.
    let fabrikam = app.store.create_organization("Fabrikam").await.unwrap();
    add_partner(&app, false).await;
    let report = app.sync("csp").await;
    // Northwind waits for a decision, so the run is not a whole success.
    assert_eq!(report.status, RunStatus::Partial, "{report:?}");
    // The partner's own tenant is not synced: every step is a customer's.
    assert!(steps_of(&report, &app, 0).is_empty(), "{report:?}");
    assert_eq!(report.steps.len(), 8, "{report:?}");

    let matched = steps_of(&report, &app, FABRIKAM);
    assert!(
        matched.iter().all(|s| s.status == StepStatus::Succeeded
            && s.tenant_name.as_deref() == Some("Fabrikam Inc")),
        "{matched:?}"
    );
    assert_eq!(
        report
            .step_in(&tenant_of(&app, FABRIKAM), Dataset::Users)
            .unwrap()
            .counts
            .created,
        USERS
    );
    let row = app
        .store
        .tenant(&app.tenant_key(FABRIKAM))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.state, row.organization_id, row.match_rule),
        (TenantState::Matched, Some(fabrikam), Some(MatchRule::Name))
    );
    assert_eq!(row.connection.as_deref(), Some("csp"));
    let contacts = contacts_of(&app, FABRIKAM).await;
    assert_eq!(contacts.len(), USERS as usize);
    assert!(contacts.iter().all(|c| c.organization_id == fabrikam));

    // Northwind is a tenant of its own, unmatched, and nothing of it is written anywhere.
    let waiting = steps_of(&report, &app, NORTHWIND);
    assert!(
        waiting.iter().all(|s| s.status == StepStatus::Skipped),
        "{waiting:?}"
    );
    let row = app
        .store
        .tenant(&app.tenant_key(NORTHWIND))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.state, TenantState::Unmatched);
    assert_eq!(row.display_name.as_deref(), Some("Northwind Traders"));
    assert!(contacts_of(&app, NORTHWIND).await.is_empty());
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.code == "tenant_awaits_decision" && w.message.contains("Northwind")),
        "{:?}",
        report.warnings
    );
    assert_eq!(app.store.organizations().await.unwrap().len(), 1);

    // The run log keeps which tenant each step read.
    let logged = app.store.run(report.run_id).await.unwrap().unwrap();
    // Customers are synced side by side, and a tenant's steps too; the log lists each
    // tenant's steps together.
    let logged_tenants: Vec<(Option<String>, Option<String>, String)> = logged
        .steps
        .iter()
        .map(|s| {
            (
                s.tenant_id.clone(),
                s.tenant_name.clone(),
                s.dataset.clone(),
            )
        })
        .collect();
    let mut expected: Vec<(Option<String>, Option<String>, String)> = report
        .steps
        .iter()
        .map(|s| {
            (
                Some(s.tenant_id.to_string()),
                s.tenant_name.clone(),
                s.dataset.name().to_string(),
            )
        })
        .collect();
    let mut grouped = logged_tenants.clone();
    grouped.dedup_by(|a, b| a.0 == b.0);
    assert_eq!(
        grouped.len(),
        2,
        "each tenant's steps together: {logged_tenants:?}"
    );
    let mut logged_sorted = logged_tenants;
    logged_sorted.sort();
    expected.sort();
    assert_eq!(logged_sorted, expected);

    // Once a person files Northwind, its users arrive; Fabrikam's resync writes nothing.
    app.store
        .decide_tenant(
            &app.tenant_key(NORTHWIND),
            &TenantChoice::Create("Northwind".into()),
        )
        .await
        .unwrap();
    let again = app.sync("csp").await;
    assert_eq!(again.status, RunStatus::Succeeded, "{again:?}");
    assert_eq!(contacts_of(&app, NORTHWIND).await.len(), USERS as usize);
    assert!(
        steps_of(&again, &app, FABRIKAM)
            .iter()
            .all(|s| s.counts.writes() == 0),
        "{again:?}"
    );
}

async fn an_unconsented_customer_fails_alone_with_its_consent_link(store: StoreKind) {
    let app = partner_app(store).await;
    add_partner(&app, true).await;
    let northwind = app.tenant_key(NORTHWIND);
    app.sim
        .state
        .set_partner_consent(&northwind, false)
        .unwrap();
    let report = app.sync("csp").await;
    assert_eq!(report.status, RunStatus::Partial, "{report:?}");
    assert!(
        steps_of(&report, &app, FABRIKAM)
            .iter()
            .all(|s| s.status == StepStatus::Succeeded),
        "{report:?}"
    );
    assert_eq!(contacts_of(&app, FABRIKAM).await.len(), USERS as usize);

    let refused = steps_of(&report, &app, NORTHWIND);
    assert_eq!(refused[0].dataset, Dataset::Organization);
    assert_eq!(refused[0].status, StepStatus::Failed);
    let link = format!(
        "{}/{northwind}/adminconsent?client_id={}",
        app.sim.url,
        app.tenant(0).client_id
    );
    assert_eq!(
        refused[0].message.as_deref(),
        Some(
            format!(
                "the app is not consented in Northwind Traders; send its admin this link: {link}"
            )
            .as_str()
        )
    );
    assert!(
        refused[1..].iter().all(|s| s.status == StepStatus::Skipped),
        "{refused:?}"
    );
    assert!(contacts_of(&app, NORTHWIND).await.is_empty());
    // It is listed among the tenants all the same, by the name the partner listing gave.
    let seen = app
        .store
        .tenant(&northwind)
        .await
        .unwrap()
        .expect("listed as a tenant");
    assert_eq!(seen.display_name.as_deref(), Some("Northwind Traders"));
    let logged = app.store.run(report.run_id).await.unwrap().unwrap();
    assert_eq!(logged.status, RunStatus::Partial);
    assert!(
        logged.message.as_deref().unwrap().contains(&link),
        "{:?}",
        logged.message
    );

    // Consented, it is synced with the others.
    app.sim.state.set_partner_consent(&northwind, true).unwrap();
    let report = app.sync("csp").await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(contacts_of(&app, NORTHWIND).await.len(), USERS as usize);
}

async fn a_customer_whose_relationship_ended_is_left_as_it_was(store: StoreKind) {
    let app = partner_app(store).await;
    add_partner(&app, true).await;
    assert_eq!(app.sync("csp").await.status, RunStatus::Succeeded);
    let northwind = app.tenant_key(NORTHWIND);
    app.sim
        .state
        .set_partner_relationship(&northwind, false)
        .unwrap();
    let report = app.sync("csp").await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert!(steps_of(&report, &app, NORTHWIND).is_empty(), "{report:?}");
    assert_eq!(steps_of(&report, &app, FABRIKAM).len(), 4);
    let said: Vec<&str> = report
        .warnings
        .iter()
        .filter(|w| w.code == "customer_not_listed")
        .map(|w| w.message.as_str())
        .collect();
    assert_eq!(said.len(), 1, "{:?}", report.warnings);
    assert!(
        said[0].contains(&northwind) && said[0].contains("nothing archived"),
        "{}",
        said[0]
    );
    // Its users are neither synced nor archived.
    assert_eq!(contacts_of(&app, NORTHWIND).await.len(), USERS as usize);
    let row = app.store.tenant(&northwind).await.unwrap().unwrap();
    assert_eq!(row.state, TenantState::Matched);
}

async fn customers_are_listed_from_contracts_without_the_gdap_permission(store: StoreKind) {
    let app = partner_app(store).await;
    add_partner(&app, true).await;
    let partner = app.tenant_key(0);
    let without_gdap: Vec<String> = DEFAULT_ROLES
        .iter()
        .filter(|r| **r != GDAP_ROLE)
        .map(|r| r.to_string())
        .collect();
    assert!(app.sim.state.set_roles(&partner, without_gdap.clone()));
    let report = app.sync("csp").await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    for position in [FABRIKAM, NORTHWIND] {
        assert_eq!(steps_of(&report, &app, position).len(), 4);
        assert_eq!(contacts_of(&app, position).await.len(), USERS as usize);
    }
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.code == "customers_from_contracts"),
        "{:?}",
        report.warnings
    );

    // With neither permission, the run fails at once and says what to add.
    let neither: Vec<String> = without_gdap
        .into_iter()
        .filter(|r| r != "Directory.Read.All")
        .collect();
    assert!(app.sim.state.set_roles(&partner, neither));
    let report = app.sync("csp").await;
    assert_eq!(report.status, RunStatus::Failed, "{report:?}");
    assert!(report.steps.is_empty());
    let message = report.message.as_deref().unwrap();
    assert!(
        message.starts_with("the partner's customers could not be listed")
            && message.contains(GDAP_ROLE),
        "{message}"
    );
    let logged = app.store.run(report.run_id).await.unwrap().unwrap();
    assert_eq!(logged.message.as_deref(), Some(message));
}

async fn the_connection_test_names_each_customers_state(store: StoreKind) {
    let app = partner_app(store).await;
    let connection = add_partner(&app, false).await;
    let northwind = app.tenant_key(NORTHWIND);
    app.sim
        .state
        .set_partner_consent(&northwind, false)
        .unwrap();
    let report = sync::test_connection(&app.store, &connection, graph::RetryPolicy::default())
        .await
        .unwrap();
    assert!(!report.ok);
    assert_eq!(
        report.customers_listed_by.as_deref(),
        Some("delegatedAdminCustomers")
    );
    let states: Vec<(&str, &str, Option<&str>)> = report
        .customers
        .iter()
        .map(|c| {
            (
                c.display_name.as_str(),
                c.state.as_str(),
                c.consent_url.as_deref(),
            )
        })
        .collect();
    let link = format!(
        "{}/{northwind}/adminconsent?client_id={}",
        app.sim.url,
        app.tenant(0).client_id
    );
    assert_eq!(
        states,
        [
            ("Fabrikam Inc", "ok", None),
            (
                "Northwind Traders",
                "app_not_consented",
                Some(link.as_str())
            ),
        ]
    );
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].code, "app_not_consented");
    assert!(report.problems[0].fix.contains(&link));

    // A customer that consented fewer permissions than the datasets need says which.
    app.sim.state.set_partner_consent(&northwind, true).unwrap();
    assert!(
        app.sim
            .state
            .set_roles(&northwind, vec!["Organization.Read.All".into()])
    );
    let report = sync::test_connection(&app.store, &connection, graph::RetryPolicy::default())
        .await
        .unwrap();
    let northwind_check = &report.customers[1];
    assert_eq!(northwind_check.state, "permission_missing");
    assert_eq!(
        northwind_check.missing_permissions,
        ["User.Read.All", "Reports.Read.All"]
    );
    assert_eq!(northwind_check.consent_url.as_deref(), Some(link.as_str()));
}
