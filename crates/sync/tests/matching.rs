//! How a synced tenant finds its organisation, against the simulator: by a domain the
//! organisation knows, by its name whatever the legal suffix, by a person's decision when the
//! rules only suggest (its users written nowhere until then), not at all when ignored, and by a
//! new organisation when nothing is near.

use domain::{
    ClientId, ClientSecret, Cloud, ConnectionName, Credential, Dataset, MatchRule, RunStatus,
    StepStatus, TenantId, TenantState,
};
use graph_sim::{SimConfig, TenantSpec};
use store::{ContactFilter, MailboxKind, NewConnection, OrganizationSetup, TenantChoice};
use testkit::{StoreKind, TestApp};

testkit::on_both_stores!(
    a_tenant_is_matched_by_a_domain_its_organisation_knows,
    a_tenant_is_matched_by_name_whatever_the_legal_suffix,
    a_tenant_with_only_suggestions_writes_nothing_until_one_is_accepted,
    an_ignored_tenant_skips_every_step_saying_so,
    a_tenant_near_nothing_gets_a_new_organisation_unless_its_connection_says_not,
);

const USERS: u64 = 5;

async fn contacts_of(app: &TestApp, position: usize) -> Vec<store::ContactRow> {
    let filter = ContactFilter {
        tenant_id: Some(TenantId::parse(&app.tenant_key(position)).unwrap()),
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

/// Nothing of the tenant is kept anywhere: no contact, licence, mailbox or inventory item.
async fn nothing_written_for(app: &TestApp, position: usize) {
    let tenant = TenantId::parse(&app.tenant_key(position)).unwrap();
    assert!(contacts_of(app, position).await.is_empty());
    assert!(
        app.store
            .licenses(Some(&tenant), true)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        app.store
            .mailboxes(Some(&tenant), MailboxKind::Live, true)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        app.store
            .groups(Some(&tenant), true)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        app.store
            .typed_rows::<domain::usage::UsageRecord>(Some(&tenant), true)
            .await
            .unwrap()
            .is_empty()
    );
    for dataset in [Dataset::Domains] {
        assert!(
            app.store
                .inventory(Some(&tenant), dataset, true)
                .await
                .unwrap()
                .is_empty(),
            "{dataset:?}"
        );
    }
}

async fn a_tenant_is_matched_by_a_domain_its_organisation_knows(store: StoreKind) {
    let app = TestApp::with_users_on(store, USERS).await;
    // Named nothing like the tenant ("Contoso Ltd"), but it knows the tenant's domain.
    let acme = app
        .store
        .create_organization("Acme Holdings")
        .await
        .unwrap();
    app.store
        .set_organization_domains(acme, &["contoso.example".into()])
        .await
        .unwrap();
    app.store.create_organization("Contoso").await.unwrap();
    app.add_connection("contoso", 0).await;
    let report = app.sync("contoso").await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(
        report.step(Dataset::Organization).unwrap().counts.updated,
        1
    );
    let tenant = app.store.tenant(&app.tenant_key(0)).await.unwrap().unwrap();
    assert_eq!(
        (tenant.state, tenant.organization_id, tenant.match_rule),
        (TenantState::Matched, Some(acme), Some(MatchRule::Domain))
    );
    let contacts = contacts_of(&app, 0).await;
    assert_eq!(contacts.len(), USERS as usize);
    assert!(contacts.iter().all(|c| c.organization_id == acme));
}

async fn a_tenant_is_matched_by_name_whatever_the_legal_suffix(store: StoreKind) {
    let app = TestApp::with_users_on(store, USERS).await;
    let existing = app
        .store
        .create_organization("contoso, LTD.")
        .await
        .unwrap();
    app.add_connection("contoso", 0).await;
    let report = app.sync("contoso").await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    let tenant = app.store.tenant(&app.tenant_key(0)).await.unwrap().unwrap();
    assert_eq!(tenant.display_name.as_deref(), Some("Contoso Ltd"));
    assert_eq!(
        (tenant.organization_id, tenant.match_rule),
        (Some(existing), Some(MatchRule::Name))
    );
    let orgs = app.store.organizations().await.unwrap();
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0].contacts, USERS as i64);
    // A resync stays with it and writes nothing.
    let again = app.sync("contoso").await;
    assert_eq!(again.writes(), 0, "{again:?}");
}

async fn a_tenant_with_only_suggestions_writes_nothing_until_one_is_accepted(store: StoreKind) {
    let app = TestApp::with_users_on(store, USERS).await;
    let near = app.store.create_organization("Contosso").await.unwrap();
    app.add_connection("contoso", 0).await;
    let tenant = app.tenant_key(0);
    for _ in 0..2 {
        let report = app.sync("contoso").await;
        // Nothing was synced: the run says so, with the decision it waits for.
        assert_eq!(report.status, RunStatus::Failed, "{report:?}");
        let organization = report.step(Dataset::Organization).unwrap();
        assert_eq!(organization.status, StepStatus::Skipped);
        let message = organization.message.as_deref().unwrap();
        assert!(message.contains("awaits a decision"), "{message}");
        assert!(message.contains("'Contosso'"), "{message}");
        assert!(
            message.contains(&format!("`m365sync match {tenant} --accept`")),
            "{message}"
        );
        for step in report
            .steps
            .iter()
            .filter(|s| s.dataset != Dataset::Organization)
        {
            assert_eq!(step.status, StepStatus::Skipped, "{step:?}");
            let message = step.message.as_deref().unwrap();
            assert!(
                message.starts_with("skipped: tenant Contoso Ltd")
                    && message.contains(&format!("m365sync match {tenant} --accept")),
                "{message}"
            );
        }
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.code == "tenant_awaits_decision"),
            "{:?}",
            report.warnings
        );
        nothing_written_for(&app, 0).await;
    }
    let waiting = app
        .store
        .tenants(Some(TenantState::Suggested))
        .await
        .unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].suggestions[0].organization_id, near);
    assert_eq!(waiting[0].suggestions[0].rule, MatchRule::SimilarName);

    app.store
        .decide_tenant(&tenant, &TenantChoice::Link(near))
        .await
        .unwrap();
    let report = app.sync("contoso").await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert!(
        report
            .steps
            .iter()
            .all(|s| s.status != StepStatus::Skipped || s.dataset == Dataset::SignInActivity),
        "{report:?}"
    );
    let contacts = contacts_of(&app, 0).await;
    assert_eq!(contacts.len(), USERS as usize);
    assert!(contacts.iter().all(|c| c.organization_id == near));
    assert_eq!(app.store.organizations().await.unwrap().len(), 1);
}

async fn an_ignored_tenant_skips_every_step_saying_so(store: StoreKind) {
    let app = TestApp::with_users_on(store, USERS).await;
    app.store.create_organization("Contosso").await.unwrap();
    app.add_connection("contoso", 0).await;
    let tenant = app.tenant_key(0);
    app.sync("contoso").await;
    app.store
        .decide_tenant(&tenant, &TenantChoice::Ignore)
        .await
        .unwrap();
    let report = app.sync("contoso").await;
    for step in &report.steps {
        assert_eq!(step.status, StepStatus::Skipped, "{step:?}");
        let message = step.message.as_deref().unwrap();
        assert!(message.contains("is ignored"), "{message}");
        assert!(
            message.contains(&format!("`m365sync match {tenant} --unmatch`")),
            "{message}"
        );
    }
    assert!(
        !report
            .warnings
            .iter()
            .any(|w| w.code == "tenant_awaits_decision"),
        "an ignored tenant awaits nothing"
    );
    nothing_written_for(&app, 0).await;
    for state in [TenantState::Unmatched, TenantState::Suggested] {
        assert!(app.store.tenants(Some(state)).await.unwrap().is_empty());
    }
    assert_eq!(
        app.store
            .tenants(Some(TenantState::Ignored))
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn a_tenant_near_nothing_gets_a_new_organisation_unless_its_connection_says_not(
    store: StoreKind,
) {
    let app = TestApp::new_on(
        store,
        SimConfig {
            seed: 9,
            tenants: vec![TenantSpec::with_users(USERS), TenantSpec::with_users(USERS)],
            ..SimConfig::default()
        },
    )
    .await;
    app.add_connection("contoso", 0).await;
    let report = app.sync("contoso").await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(
        report.step(Dataset::Organization).unwrap().counts.created,
        1
    );
    let contoso = app.store.tenant(&app.tenant_key(0)).await.unwrap().unwrap();
    assert_eq!(contoso.match_rule, Some(MatchRule::Created));
    assert_eq!(contoso.organization.as_deref(), Some("Contoso Ltd"));

    // Fabrikam's connection may not create one: its tenant awaits a decision, with the commands.
    let fabrikam = app.tenant(1);
    app.store
        .add_connection_with(
            NewConnection {
                name: ConnectionName::parse("fabrikam").unwrap(),
                tenant_id: TenantId::parse(&fabrikam.tenant_id).unwrap(),
                client_id: ClientId::parse(&fabrikam.client_id).unwrap(),
                credential: Credential::Secret(
                    ClientSecret::parse(&fabrikam.client_secret).unwrap(),
                ),
                cloud: Cloud::custom(&app.sim.url, &app.sim.url).unwrap(),
                datasets: Dataset::ALL.to_vec(),
            },
            OrganizationSetup {
                create_organization: false,
                organization: None,
            },
        )
        .await
        .unwrap();
    let report = app.sync("fabrikam").await;
    let message = report
        .step(Dataset::Users)
        .unwrap()
        .message
        .clone()
        .unwrap();
    let id = &fabrikam.tenant_id;
    assert!(
        message.contains(&format!("`m365sync match {id} --create`"))
            && message.contains(&format!("`m365sync match {id} --organization NAME`")),
        "{message}"
    );
    nothing_written_for(&app, 1).await;
    assert_eq!(
        app.store
            .tenants(Some(TenantState::Unmatched))
            .await
            .unwrap()
            .len(),
        1
    );

    // Filed by a person under Contoso's organisation: one organisation, two tenants.
    app.store
        .decide_tenant(id, &TenantChoice::Link(contoso.organization_id.unwrap()))
        .await
        .unwrap();
    let report = app.sync("fabrikam").await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    let orgs = app.store.organizations().await.unwrap();
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0].contacts, 2 * USERS as i64);
    let tenant = TenantId::parse(id).unwrap();
    let mailboxes = app
        .store
        .mailboxes(Some(&tenant), MailboxKind::Live, false)
        .await
        .unwrap();
    assert!(!mailboxes.is_empty());
    assert!(
        mailboxes
            .iter()
            .all(|m| m.organization.as_deref() == Some("Contoso Ltd")),
        "{mailboxes:?}"
    );
    assert_eq!(app.sync("fabrikam").await.writes(), 0);
}
