//! The tenants table on every backend: where each tenant stands with its organisation, a
//! person's decisions, and stores made before the table keeping their matches.

use domain::{
    ClientId, ClientSecret, Cloud, ConnectionName, ContactRecord, Credential, Dataset, MatchRule,
    ObjectId, OrganizationRecord, TenantId, TenantState, Upn,
};
use store::{
    ConnectionMode, ContactFilter, NewConnection, OrganizationOutcome, OrganizationSetup,
    SecretKey, Store, StoreError, TenantChoice, TenantOutcome,
};
use testkit::StoreKind;

testkit::on_both_stores!(
    a_tenant_awaits_a_decision_and_keeps_what_a_person_decides,
    several_tenants_share_one_organisation_and_their_records_follow_a_change,
    a_connection_names_its_organisation_up_front,
    a_store_at_schema_7_keeps_its_matches_after_migrating,
    a_partner_connection_keeps_its_mode_and_names_no_organisation_up_front,
    an_organisation_made_for_a_tenant_has_a_fit_name,
);

const CONTOSO: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const FABRIKAM: &str = "0c9d8e7f-6a5b-4c3d-8e2f-1a0b9c8d7e6f";

fn record(tenant: &str, name: &str, domain: &str) -> OrganizationRecord {
    OrganizationRecord {
        tenant_id: TenantId::parse(tenant).unwrap(),
        display_name: name.into(),
        verified_domains: vec![domain.into()],
        default_domain: Some(domain.into()),
        country_letter_code: Some("GB".into()),
    }
}

fn connection(name: &str, tenant: &str) -> NewConnection {
    NewConnection {
        name: ConnectionName::parse(name).unwrap(),
        tenant_id: TenantId::parse(tenant).unwrap(),
        client_id: ClientId::parse("0b7e1c2a-3d4e-4f50-8a6b-7c8d9e0f1a2b").unwrap(),
        credential: Credential::Secret(ClientSecret::parse("Abc8Q~secret-value-1234").unwrap()),
        cloud: Cloud::Global,
        datasets: vec![Dataset::Users],
    }
}

fn contact(tenant: &str) -> ContactRecord {
    ContactRecord {
        tenant_id: TenantId::parse(tenant).unwrap(),
        object_id: ObjectId::parse("11111111-2222-4333-8444-555555555501").unwrap(),
        user_principal_name: Upn::parse("ada@fabrikam.example").unwrap(),
        display_name: "Ada".into(),
        given_name: None,
        surname: None,
        email: None,
        aliases: vec![],
        job_title: None,
        department: None,
        office_location: None,
        mobile_phone: None,
        business_phones: vec![],
        account_enabled: true,
        user_type: "Member".into(),
        license_sku_ids: vec![],
        disabled_plans: vec![],
    }
}

async fn a_tenant_awaits_a_decision_and_keeps_what_a_person_decides(kind: StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let contosso = store.create_organization("Contosso").await.unwrap();
    let far = store.create_organization("Tailspin Toys").await.unwrap();
    let added = store
        .add_connection(connection("contoso", CONTOSO))
        .await
        .unwrap();
    let seen = record(CONTOSO, "Contoso Ltd", "contoso.example");

    // A near name is only suggested: the tenant awaits a person, and keeps waiting.
    for _ in 0..2 {
        let TenantOutcome::Awaiting { state, suggestions } =
            store.apply_tenant(&added, &seen).await.unwrap()
        else {
            panic!("a near name was taken for a match");
        };
        assert_eq!(state, TenantState::Suggested);
        assert_eq!(suggestions.len(), 1);
        assert_eq!(
            (
                suggestions[0].organization_id,
                suggestions[0].organization.as_str(),
                suggestions[0].rule
            ),
            (contosso, "Contosso", MatchRule::SimilarName)
        );
    }
    let listed = store.tenants(Some(TenantState::Suggested)).await.unwrap();
    assert_eq!(listed.len(), 1);
    let row = &listed[0];
    assert_eq!(row.tenant_id, CONTOSO);
    assert_eq!(row.connection.as_deref(), Some("contoso"));
    assert_eq!(row.display_name.as_deref(), Some("Contoso Ltd"));
    assert_eq!(row.verified_domains, ["contoso.example"]);
    assert_eq!(row.default_domain.as_deref(), Some("contoso.example"));
    assert_eq!(row.organization_id, None);
    assert!(row.first_seen_at.is_some() && row.last_seen_at >= row.first_seen_at);
    assert!(
        (0.75..=1.0).contains(&row.suggestions[0].score),
        "{:?}",
        row.suggestions
    );
    assert!(
        store
            .tenants(Some(TenantState::Matched))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.find_tenants("contoso, LTD.").await.unwrap()[0].tenant_id,
        CONTOSO
    );

    // Accepted: matched by a person, and the next sync stays with it.
    let after = store
        .decide_tenant(CONTOSO, &TenantChoice::Link(contosso))
        .await
        .unwrap();
    assert_eq!(
        (after.state, after.organization_id, after.match_rule),
        (
            TenantState::Matched,
            Some(contosso),
            Some(MatchRule::Person)
        )
    );
    assert!(after.suggestions.is_empty());
    assert_eq!(
        store.apply_tenant(&added, &seen).await.unwrap(),
        TenantOutcome::Matched {
            organization: OrganizationOutcome::Updated(contosso),
            rule: MatchRule::TenantId
        }
    );
    assert_eq!(
        store.apply_tenant(&added, &seen).await.unwrap(),
        TenantOutcome::Matched {
            organization: OrganizationOutcome::Unchanged(contosso),
            rule: MatchRule::TenantId
        }
    );
    let org = store.organization(contosso).await.unwrap().unwrap();
    assert_eq!(org.tenant_id.as_deref(), Some(CONTOSO));
    assert_eq!(org.name, "Contosso", "the organisation's own name is kept");

    // Ignored: left alone by syncs, and not listed as awaiting a decision.
    store
        .decide_tenant(CONTOSO, &TenantChoice::Ignore)
        .await
        .unwrap();
    assert_eq!(
        store.apply_tenant(&added, &seen).await.unwrap(),
        TenantOutcome::Ignored
    );
    for state in [TenantState::Unmatched, TenantState::Suggested] {
        assert!(store.tenants(Some(state)).await.unwrap().is_empty());
    }
    assert_eq!(
        store
            .organization(contosso)
            .await
            .unwrap()
            .unwrap()
            .tenant_id,
        None
    );

    // Unmatched by a person: the rules only suggest from then on, even a domain they know.
    store
        .set_organization_domains(contosso, &["Contoso.Example".into()])
        .await
        .unwrap();
    let unmatched = store
        .decide_tenant(CONTOSO, &TenantChoice::Unmatch)
        .await
        .unwrap();
    assert_eq!(unmatched.state, TenantState::Suggested);
    assert!(!unmatched.automatic);
    let TenantOutcome::Awaiting { suggestions, .. } =
        store.apply_tenant(&added, &seen).await.unwrap()
    else {
        panic!("a tenant a person unlinked was linked again");
    };
    assert_eq!(suggestions[0].rule, MatchRule::Domain);

    // Created by a person, under a name of their choosing.
    let created = store
        .decide_tenant(CONTOSO, &TenantChoice::Create("Contoso Group".into()))
        .await
        .unwrap();
    assert_eq!(created.organization.as_deref(), Some("Contoso Group"));
    assert_ne!(created.organization_id, Some(far));
    assert!(matches!(
        store.decide_tenant(FABRIKAM, &TenantChoice::Ignore).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .decide_tenant(CONTOSO, &TenantChoice::Link(9_999))
            .await,
        Err(StoreError::NotFound(_))
    ));

    // A connection removed leaves its tenant, through no connection.
    store.remove_connection("contoso").await.unwrap();
    assert_eq!(
        store.tenant(CONTOSO).await.unwrap().unwrap().connection,
        None
    );
    store.close().await;
}

async fn several_tenants_share_one_organisation_and_their_records_follow_a_change(kind: StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let contoso = store
        .add_connection(connection("contoso", CONTOSO))
        .await
        .unwrap();
    let fabrikam = store
        .add_connection_with(
            connection("fabrikam", FABRIKAM),
            OrganizationSetup {
                create_organization: false,
                organization: None,
            },
        )
        .await
        .unwrap();
    assert!(!fabrikam.create_organization);
    assert!(
        !store
            .connection("fabrikam")
            .await
            .unwrap()
            .unwrap()
            .create_organization
    );
    let TenantOutcome::Matched {
        organization: OrganizationOutcome::Created(group),
        rule: MatchRule::Created,
    } = store
        .apply_tenant(&contoso, &record(CONTOSO, "Contoso Ltd", "contoso.example"))
        .await
        .unwrap()
    else {
        panic!("nothing near: an organisation is created");
    };
    // This connection may not create one, and nothing is near: unmatched, with no suggestion.
    let fabrikam_seen = record(FABRIKAM, "Fabrikam Inc", "fabrikam.example");
    assert_eq!(
        store.apply_tenant(&fabrikam, &fabrikam_seen).await.unwrap(),
        TenantOutcome::Awaiting {
            state: TenantState::Unmatched,
            suggestions: vec![]
        }
    );
    let own = store.create_organization("Fabrikam Own").await.unwrap();
    store
        .decide_tenant(FABRIKAM, &TenantChoice::Link(own))
        .await
        .unwrap();
    store.apply_tenant(&fabrikam, &fabrikam_seen).await.unwrap();
    store
        .apply_contacts(own, &[contact(FABRIKAM)])
        .await
        .unwrap();

    // Changed to Contoso's organisation: both tenants are its, its own tenant stays Contoso, and
    // Fabrikam's contact moves with it.
    store
        .decide_tenant(FABRIKAM, &TenantChoice::Link(group))
        .await
        .unwrap();
    let matched = store.tenants(Some(TenantState::Matched)).await.unwrap();
    assert_eq!(matched.len(), 2);
    assert!(matched.iter().all(|t| t.organization_id == Some(group)));
    let org = store.organization(group).await.unwrap().unwrap();
    assert_eq!(org.tenant_id.as_deref(), Some(CONTOSO));
    assert_eq!(org.contacts, 1);
    assert_eq!(store.organization(own).await.unwrap().unwrap().contacts, 0);
    let left = store.organization(own).await.unwrap().unwrap();
    assert_eq!(
        (
            left.tenant_id,
            left.tenant_name,
            left.verified_domains.len()
        ),
        (None, None, 0),
        "what the tenant said of itself leaves with it"
    );
    let mut seen_in = None;
    store
        .each_contact(
            &ContactFilter {
                tenant_id: Some(TenantId::parse(FABRIKAM).unwrap()),
                ..ContactFilter::default()
            },
            |c| {
                seen_in = Some(c.organization_id);
                Ok(())
            },
        )
        .await
        .unwrap();
    assert_eq!(seen_in, Some(group));
    // Each sync of either keeps to it; Contoso's columns are not overwritten by Fabrikam's.
    for _ in 0..2 {
        assert!(matches!(
            store.apply_tenant(&fabrikam, &fabrikam_seen).await.unwrap(),
            TenantOutcome::Matched {
                rule: MatchRule::TenantId,
                ..
            }
        ));
    }
    assert_eq!(
        store.apply_tenant(&fabrikam, &fabrikam_seen).await.unwrap(),
        TenantOutcome::Matched {
            organization: OrganizationOutcome::Unchanged(group),
            rule: MatchRule::TenantId
        }
    );
    assert_eq!(
        store
            .organization(group)
            .await
            .unwrap()
            .unwrap()
            .tenant_name
            .as_deref(),
        Some("Contoso Ltd")
    );
    let candidates = store.organization_candidates().await.unwrap();
    let group_candidate = candidates.iter().find(|c| c.id == group).unwrap();
    assert_eq!(group_candidate.tenant_ids.len(), 2);
    assert!(
        group_candidate
            .domains
            .contains(&"fabrikam.example".to_string())
    );
    // Unlinked, its own domain no longer ties it to the organisation it left.
    let unlinked = store
        .decide_tenant(FABRIKAM, &TenantChoice::Unmatch)
        .await
        .unwrap();
    assert_eq!(
        unlinked
            .suggestions
            .iter()
            .map(|s| (s.organization_id, s.rule))
            .collect::<Vec<_>>(),
        [(own, MatchRule::NameContains)]
    );
    store.close().await;
}

async fn a_connection_names_its_organisation_up_front(kind: StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let acme = store.create_organization("Acme").await.unwrap();
    let named = |name: &str| OrganizationSetup {
        create_organization: true,
        organization: Some(name.into()),
    };
    let contoso = store
        .add_connection_with(connection("contoso", CONTOSO), named("Acme"))
        .await
        .unwrap();
    let row = store.tenant(CONTOSO).await.unwrap().unwrap();
    assert_eq!(
        (
            row.state,
            row.organization_id,
            row.display_name,
            row.first_seen_at
        ),
        (TenantState::Matched, Some(acme), None, None),
        "matched before it is seen"
    );
    assert_eq!(
        store
            .apply_tenant(&contoso, &record(CONTOSO, "Contoso Ltd", "contoso.example"))
            .await
            .unwrap(),
        TenantOutcome::Matched {
            organization: OrganizationOutcome::Updated(acme),
            rule: MatchRule::TenantId
        }
    );

    // A name no organisation has makes one.
    store
        .add_connection_with(connection("fabrikam", FABRIKAM), named("Fabrikam Group"))
        .await
        .unwrap();
    let row = store.tenant(FABRIKAM).await.unwrap().unwrap();
    assert_eq!(row.organization.as_deref(), Some("Fabrikam Group"));

    // Two of that name, or a tenant already another's: refused, and nothing is saved.
    store.create_organization("Twin").await.unwrap();
    store.create_organization("Twin").await.unwrap();
    let third = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d";
    assert!(matches!(
        store
            .add_connection_with(connection("twins", third), named("Twin"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store.connection("twins").await.unwrap().is_none());
    assert!(matches!(
        store
            .add_connection_with(connection("again", CONTOSO), named("Fabrikam Group"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store.connection("again").await.unwrap().is_none());
    store.close().await;
}

async fn a_partner_connection_keeps_its_mode_and_names_no_organisation_up_front(kind: StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let never = OrganizationSetup {
        create_organization: false,
        organization: None,
    };
    let partner = store
        .add_connection_in(
            connection("csp", CONTOSO),
            ConnectionMode::Partner,
            never.clone(),
        )
        .await
        .unwrap();
    assert_eq!(partner.mode, ConnectionMode::Partner);
    let direct = store
        .add_connection(connection("fabrikam", FABRIKAM))
        .await
        .unwrap();
    assert_eq!(direct.mode, ConnectionMode::Direct);
    let listed: Vec<(String, ConnectionMode, bool)> = store
        .connections()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.name.to_string(), c.mode, c.create_organization))
        .collect();
    assert_eq!(
        listed,
        [
            ("csp".to_string(), ConnectionMode::Partner, false),
            ("fabrikam".to_string(), ConnectionMode::Direct, true)
        ]
    );
    // The partner's own tenant is never synced: it has no organisation to be filed under.
    let named = OrganizationSetup {
        organization: Some("Acme".into()),
        ..never
    };
    assert!(matches!(
        store
            .add_connection_in(connection("csp2", CONTOSO), ConnectionMode::Partner, named)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store.connection("csp2").await.unwrap().is_none());
    assert!(store.organizations().await.unwrap().is_empty());
    store.close().await;
}

/// The schema as it was at version 7, from the migration files themselves.
fn migrations_to_7(backend: &str) -> Vec<String> {
    let sqlite = [
        include_str!("../migrations/sqlite/0001_init.sql"),
        include_str!("../migrations/sqlite/0002_inventory.sql"),
        include_str!("../migrations/sqlite/0003_products.sql"),
        include_str!("../migrations/sqlite/0004_delta.sql"),
        include_str!("../migrations/sqlite/0005_certificates.sql"),
        include_str!("../migrations/sqlite/0006_mailbox_kinds.sql"),
        include_str!("../migrations/sqlite/0007_run_owners.sql"),
    ];
    let postgres = [
        include_str!("../migrations/postgres/0001_init.sql"),
        include_str!("../migrations/postgres/0002_inventory.sql"),
        include_str!("../migrations/postgres/0003_products.sql"),
        include_str!("../migrations/postgres/0004_delta.sql"),
        include_str!("../migrations/postgres/0005_certificates.sql"),
        include_str!("../migrations/postgres/0006_mailbox_kinds.sql"),
        include_str!("../migrations/postgres/0007_run_owners.sql"),
    ];
    let files = if backend == "sqlite" {
        sqlite
    } else {
        postgres
    };
    let mut statements: Vec<String> = files.iter().map(|s| s.to_string()).collect();
    statements.push(
        "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)"
            .into(),
    );
    statements.push(
        "INSERT INTO schema_migrations (version, applied_at) VALUES (1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0), (7, 0)".into(),
    );
    statements.push(format!(
        "INSERT INTO organizations (name, tenant_id, tenant_name, verified_domains, default_domain, fingerprint, created_at, updated_at) VALUES ('Contoso (ours)', '{CONTOSO}', 'Contoso Ltd', '[\"contoso.example\"]', 'contoso.example', 'old', 10, 20)"
    ));
    statements.push(
        "INSERT INTO organizations (name, created_at, updated_at) VALUES ('No tenant yet', 10, 10)"
            .into(),
    );
    statements.push(format!(
        "INSERT INTO connections (name, tenant_id, client_id, client_secret, cloud, datasets, created_at, updated_at) VALUES ('contoso', '{CONTOSO}', '0b7e1c2a-3d4e-4f50-8a6b-7c8d9e0f1a2b', '', '{{\"kind\": \"global\"}}', '[\"users\"]', 5, 5)"
    ));
    statements.push(
        "INSERT INTO sync_runs (connection_id, connection_name, kind, status, started_at) VALUES (1, 'contoso', 'manual', 'succeeded', 30)".into(),
    );
    statements.push(
        "INSERT INTO sync_steps (run_id, dataset, status, started_at) VALUES (1, 'users', 'succeeded', 30)".into(),
    );
    statements
}

async fn a_store_at_schema_7_keeps_its_matches_after_migrating(kind: StoreKind) {
    use sqlx::Connection as _;
    let sqlite_dir = tempfile::tempdir().unwrap();
    let pg;
    let location = match kind {
        StoreKind::Sqlite => {
            let path = sqlite_dir.path().join("old.db");
            let url = format!("sqlite://{}?mode=rwc", path.display());
            let mut old = sqlx::SqliteConnection::connect(&url).await.unwrap();
            for sql in migrations_to_7("sqlite") {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut old)
                    .await
                    .unwrap();
            }
            old.close().await.unwrap();
            path.to_str().unwrap().to_string()
        }
        StoreKind::Postgres => {
            pg = testkit::PostgresDatabase::create().await.unwrap();
            let mut old = sqlx::PgConnection::connect(&pg.url).await.unwrap();
            for sql in migrations_to_7("postgres") {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut old)
                    .await
                    .unwrap();
            }
            old.close().await.unwrap();
            pg.url.clone()
        }
    };
    let store = Store::open(&location, SecretKey::generate()).await.unwrap();
    let tenants = store.tenants(None).await.unwrap();
    assert_eq!(tenants.len(), 1, "{tenants:?}");
    let kept = &tenants[0];
    assert_eq!(kept.tenant_id, CONTOSO);
    assert_eq!(kept.state, TenantState::Matched);
    assert_eq!(kept.organization.as_deref(), Some("Contoso (ours)"));
    assert_eq!(kept.connection.as_deref(), Some("contoso"));
    assert_eq!(kept.display_name.as_deref(), Some("Contoso Ltd"));
    assert_eq!(kept.verified_domains, ["contoso.example"]);
    assert_eq!(
        (kept.first_seen_at, kept.last_seen_at),
        (Some(10), Some(20))
    );
    let connection = store.connection("contoso").await.unwrap().unwrap();
    assert!(connection.create_organization);
    // Every connection made before partner mode is direct, and its steps were in its tenant.
    assert_eq!(connection.mode, ConnectionMode::Direct);
    let runs = store.runs(Some("contoso"), 5).await.unwrap();
    assert_eq!(runs[0].steps[0].tenant_id.as_deref(), Some(CONTOSO));
    // The next sync finds the same organisation, renamed tenant or not.
    let organization = store
        .organization_for_tenant(&TenantId::parse(CONTOSO).unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    assert_eq!(
        store
            .apply_tenant(
                &connection,
                &record(CONTOSO, "Contoso Renamed", "contoso.example")
            )
            .await
            .unwrap(),
        TenantOutcome::Matched {
            organization: OrganizationOutcome::Updated(organization),
            rule: MatchRule::TenantId
        }
    );
    assert_eq!(store.organizations().await.unwrap().len(), 2);
    store.close().await;
}

/// Microsoft's display name is not typed here (the graph client has dropped NUL and the like
/// already, but not tabs and line breaks): an organisation made from it is spelt as one a
/// person could have typed, and a name with nothing printable takes the tenant's domain.
async fn an_organisation_made_for_a_tenant_has_a_fit_name(kind: StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let contoso = store
        .add_connection(connection("contoso", CONTOSO))
        .await
        .unwrap();
    let fabrikam = store
        .add_connection(connection("fabrikam", FABRIKAM))
        .await
        .unwrap();
    let made = |outcome| match outcome {
        TenantOutcome::Matched {
            organization: OrganizationOutcome::Created(id),
            ..
        } => id,
        other => panic!("no organisation was made: {other:?}"),
    };
    let unfit = record(CONTOSO, " Contoso\t\nLtd\u{200B} ", "contoso.example");
    let id = made(store.apply_tenant(&contoso, &unfit).await.unwrap());
    let organization = store.organization(id).await.unwrap().unwrap();
    assert_eq!(organization.name, "Contoso Ltd");
    assert_eq!(
        domain::names::organization_name(&organization.name).unwrap(),
        organization.name
    );
    let blank = record(FABRIKAM, "\u{200B}\t", "fabrikam.example");
    let id = made(store.apply_tenant(&fabrikam, &blank).await.unwrap());
    assert_eq!(
        store.organization(id).await.unwrap().unwrap().name,
        "fabrikam.example"
    );
}
