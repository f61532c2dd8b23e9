//! What the REST API and the metrics page ask of the store, on every backend: tokens, contacts
//! searched and filtered, the run log a page at a time, figures over the run log, readiness.

use domain::{OrganizationRecord, RunStatus, StepStatus};
use store::{ApiRole, ContactFilter, StepCounts, StoreError};

use super::{contact, in_tenant, tenant};

async fn what_the_api_reads_and_writes(kind: testkit::StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    assert_eq!(store.pending_migrations().await.unwrap(), Vec::<i64>::new());

    // Tokens: shown once, kept as a hash, one live token per name, revoked by name.
    let issued = store
        .issue_api_token("Prometheus", ApiRole::Viewer)
        .await
        .unwrap();
    assert!(issued.secret.starts_with(store::TOKEN_PREFIX));
    assert!(issued.secret.starts_with(&issued.token.shown));
    assert!(!format!("{issued:?}").contains(&issued.secret));
    assert!(matches!(
        store.issue_api_token("prometheus", ApiRole::Admin).await,
        Err(StoreError::Conflict(_))
    ));
    let found = store
        .authenticate_api_token(&issued.secret)
        .await
        .unwrap()
        .expect("a live token is known");
    assert_eq!(
        (found.name.as_str(), found.role),
        ("Prometheus", ApiRole::Viewer)
    );
    assert!(found.last_used_at.is_some());
    let wrong = format!("{}x", issued.secret);
    assert_eq!(store.authenticate_api_token(&wrong).await.unwrap(), None);
    assert_eq!(store.authenticate_api_token("").await.unwrap(), None);
    store.revoke_api_token("PROMETHEUS").await.unwrap();
    assert_eq!(
        store.authenticate_api_token(&issued.secret).await.unwrap(),
        None
    );
    assert!(matches!(
        store.revoke_api_token("prometheus").await,
        Err(StoreError::NotFound(_))
    ));
    let again = store
        .issue_api_token("prometheus", ApiRole::Admin)
        .await
        .unwrap();
    assert_ne!(again.secret, issued.secret);
    let listed = store.api_tokens().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed[0].revoked_at.is_some() && listed[1].revoked_at.is_none());

    // Contacts: searched (any case, `%` and `_` taken literally) and filtered.
    let org = store
        .apply_organization(&OrganizationRecord {
            tenant_id: tenant(),
            display_name: "Contoso".into(),
            verified_domains: vec!["contoso.example".into()],
            default_domain: Some("contoso.example".into()),
            country_letter_code: None,
        })
        .await
        .unwrap()
        .id();
    let mut guest = contact(3, "Auditor 100%");
    guest.user_type = "Guest".into();
    guest.account_enabled = false;
    guest.license_sku_ids.clear();
    guest.disabled_plans.clear();
    let people = vec![contact(1, "Chief Executive"), contact(2, "Nurse"), guest];
    store.apply_contacts(org, &people).await.unwrap();
    let names = |filter: ContactFilter| {
        let store = store.clone();
        async move {
            store
                .contacts_page(&filter, 0, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.display_name)
                .collect::<Vec<_>>()
        }
    };
    let search = |text: &str| ContactFilter {
        search: Some(text.into()),
        ..ContactFilter::default()
    };
    assert_eq!(names(search("chief")).await, ["User 1"]);
    assert_eq!(names(search("USER2@")).await, ["User 2"]);
    assert_eq!(names(search("100%")).await, ["User 3"]);
    assert_eq!(names(search("1_0")).await, Vec::<String>::new());
    assert_eq!(names(search("  ")).await.len(), 3);
    let only = |enabled, guest, licensed| ContactFilter {
        enabled,
        guest,
        licensed,
        ..ContactFilter::default()
    };
    assert_eq!(names(only(Some(false), None, None)).await, ["User 3"]);
    assert_eq!(names(only(None, Some(true), None)).await, ["User 3"]);
    assert_eq!(
        names(only(None, Some(false), Some(true))).await,
        ["User 1", "User 2"]
    );
    assert_eq!(names(only(None, None, Some(false))).await, ["User 3"]);
    let first = store
        .contacts_page(&ContactFilter::default(), 0, 1)
        .await
        .unwrap();
    let one = store.contact(first[0].id).await.unwrap().unwrap();
    assert_eq!(one.display_name, "User 1");
    assert!(!one.licenses.is_empty());
    assert!(store.contact(999_999).await.unwrap().is_none());

    // The run log a page at a time, and figures over it.
    let mut runs = Vec::new();
    for n in 0..3 {
        let run = store.start_run(1, "contoso", "manual").await.unwrap();
        let step = store.start_step(run, "users", &in_tenant()).await.unwrap();
        store
            .finish_step(
                step,
                StepStatus::Succeeded,
                StepCounts::default(),
                None,
                None,
            )
            .await
            .unwrap();
        let status = if n == 1 {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        };
        store.finish_run(run, status, &[], None).await.unwrap();
        runs.push(run);
    }
    let newest = store.runs_before(None, None, 2).await.unwrap();
    assert_eq!(
        newest.iter().map(|r| r.id).collect::<Vec<_>>(),
        [runs[2], runs[1]]
    );
    let older = store
        .runs_before(Some("contoso"), Some(runs[1]), 2)
        .await
        .unwrap();
    assert_eq!(older.iter().map(|r| r.id).collect::<Vec<_>>(), [runs[0]]);

    let counts = store.run_status_counts().await.unwrap();
    let of = |status: &str| {
        counts
            .iter()
            .find(|c| c.connection == "contoso" && c.status == status)
            .map(|c| c.runs)
    };
    assert_eq!((of("succeeded"), of("failed")), (Some(2), Some(1)));
    let bounds = [0.0, 3600.0];
    let durations = store.run_durations(&bounds).await.unwrap();
    assert_eq!(durations.len(), 1);
    assert_eq!(durations[0].count, 3);
    assert_eq!(
        durations[0].at_most[1], 3,
        "every run took less than an hour"
    );
    assert!(durations[0].at_most[0] <= durations[0].at_most[1]);
    assert!(durations[0].sum_seconds >= 0.0);
    let steps = store.step_durations(&bounds).await.unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(
        (steps[0].dataset.as_deref(), steps[0].count),
        (Some("users"), 3)
    );
    store.close().await;
}

testkit::on_both_stores!(what_the_api_reads_and_writes);
