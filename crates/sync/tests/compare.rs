//! Comparing a contact with its user in Microsoft 365 now, against the simulator.

use domain::{ClientSecret, Credential, Dataset, RunStatus, TenantId};
use graph_sim::UserPatch;
use store::ContactFilter;
use sync::{CompareError, Comparison, compare_contact};
use testkit::{StoreKind, TestApp};

testkit::on_both_stores!(
    compare_shows_exactly_what_changed_in_microsoft_365_and_writes_nothing,
    compare_names_a_deleted_user_a_hand_made_contact_and_a_failing_credential,
);

/// Five users synced through a connection named `contoso`.
async fn synced(kind: StoreKind) -> TestApp {
    let app = TestApp::with_users_on(kind, 5).await;
    let tenant = app.tenant(0);
    app.add_connection_with(
        "contoso",
        &tenant.tenant_id,
        &tenant.client_id,
        &tenant.client_secret,
        vec![Dataset::Organization, Dataset::Licenses, Dataset::Users],
    )
    .await;
    let report = app.sync("contoso").await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    app
}

/// The id of the contact of the simulated user at `index`.
async fn contact_of(app: &TestApp, index: u64) -> i64 {
    let key = app.tenant_key(0);
    let object_id = app
        .sim
        .state
        .tenant(&key)
        .unwrap()
        .user(index)
        .unwrap()
        .id
        .to_string();
    let filter = ContactFilter {
        tenant_id: Some(TenantId::parse(&key).unwrap()),
        include_archived: true,
        ..ContactFilter::default()
    };
    let mut found = None;
    app.store
        .each_contact(&filter, |c| {
            if c.object_id.as_deref() == Some(object_id.as_str()) {
                found = Some(c.id);
            }
            Ok(())
        })
        .await
        .unwrap();
    found.expect("the user has a contact")
}

async fn compare(app: &TestApp, contact_id: i64) -> Result<Comparison, CompareError> {
    compare_contact(&app.store, contact_id, testkit::instant_retry(2).0).await
}

fn differing(comparison: &Comparison) -> Vec<&str> {
    comparison
        .fields
        .iter()
        .filter(|f| f.differs)
        .map(|f| f.field)
        .collect()
}

async fn compare_shows_exactly_what_changed_in_microsoft_365_and_writes_nothing(kind: StoreKind) {
    let app = synced(kind).await;
    let key = app.tenant_key(0);
    let id = contact_of(&app, 2).await;

    let same = compare(&app, id).await.unwrap();
    assert_eq!(same.differences, 0, "{same:?}");
    assert_eq!(same.connection, "contoso");
    assert!(same.fields.iter().all(|f| f.stored == f.microsoft));
    assert!(same.fields.iter().any(|f| f.field == "assignedLicenses"));

    // A change a sync has brought in, then another it has not.
    let title = |t: &str| UserPatch {
        job_title: Some(t.into()),
        ..UserPatch::default()
    };
    assert!(
        app.sim
            .state
            .patch_user(&key, 2, title("Head of Comparisons"))
    );
    let second = app.sync("contoso").await;
    assert!(app.sim.state.patch_user(&key, 2, title("Chief Comparer")));

    let changed = compare(&app, id).await.unwrap();
    assert_eq!(differing(&changed), ["jobTitle"], "{changed:?}");
    assert_eq!(changed.differences, 1);
    let field = changed
        .fields
        .iter()
        .find(|f| f.field == "jobTitle")
        .unwrap();
    assert_eq!(field.stored.as_deref(), Some("Head of Comparisons"));
    assert_eq!(field.microsoft.as_deref(), Some("Chief Comparer"));
    let last = field.last_change.expect("the history has the first change");
    assert_eq!(last.run_id, Some(second.run_id));
    for equal in changed.fields.iter().filter(|f| !f.differs) {
        assert_eq!(equal.stored, equal.microsoft, "{}", equal.field);
        assert_eq!(equal.last_change, None, "{}", equal.field);
    }

    // Compare wrote nothing: the next sync still finds the change to bring in.
    let third = app.sync("contoso").await;
    assert_eq!(third.step(Dataset::Users).unwrap().counts.updated, 1);
    assert_eq!(compare(&app, id).await.unwrap().differences, 0);

    // Licences: by part number and product name, each side's marked.
    let before: Vec<String> = compare(&app, id)
        .await
        .unwrap()
        .licenses
        .iter()
        .map(|l| l.part_number.clone())
        .collect();
    assert!(!before.is_empty());
    let tenant = TenantId::parse(&key).unwrap();
    let bought = app.store.licenses(Some(&tenant), false).await.unwrap();
    let new = bought
        .iter()
        .find(|l| !before.contains(&l.sku_part_number))
        .expect("a licence the user lacks");
    assert!(app.sim.state.patch_user(
        &key,
        2,
        UserPatch {
            licenses: Some(vec![new.sku_part_number.clone()]),
            ..UserPatch::default()
        }
    ));
    let licensed = compare(&app, id).await.unwrap();
    assert!(differing(&licensed).contains(&"assignedLicenses"));
    let added = licensed
        .licenses
        .iter()
        .find(|l| l.part_number == new.sku_part_number)
        .expect("the new licence is listed");
    assert_eq!(
        added.name,
        domain::catalog::display_name(&new.sku_id, Some(&new.sku_part_number))
    );
    assert_eq!((added.stored, added.microsoft), (false, true));
    assert_eq!(licensed.licenses.len(), before.len() + 1);
    for old in licensed.licenses.iter().filter(|l| l.sku_id != new.sku_id) {
        assert!(before.contains(&old.part_number), "{old:?}");
        assert_eq!((old.stored, old.microsoft), (true, false), "{old:?}");
    }
}

async fn compare_names_a_deleted_user_a_hand_made_contact_and_a_failing_credential(
    kind: StoreKind,
) {
    let app = synced(kind).await;
    let key = app.tenant_key(0);

    // Deleted since the last sync, then archived by the next.
    let id = contact_of(&app, 1).await;
    // Deleted for good (not only to the recycle bin), so that the next sync archives it.
    app.sim.state.purge_user(&key, 1).unwrap();
    let error = compare(&app, id).await.unwrap_err();
    assert!(
        matches!(
            error,
            CompareError::Deleted {
                archived: false,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().ends_with(
            "is no longer in Microsoft 365; the next sync marks it deleted (restorable for 30 days) or archives it"
        ),
        "{error}"
    );
    app.sync("contoso").await;
    let error = compare(&app, id).await.unwrap_err();
    assert!(
        matches!(error, CompareError::Deleted { archived: true, .. }),
        "{error:?}"
    );

    // A contact kept by hand, and none at all.
    let organization = app.store.organizations().await.unwrap()[0].id;
    let by_hand = app
        .store
        .create_local_contact(organization, "Kept By Hand", "hand@example.com")
        .await
        .unwrap();
    let error = compare(&app, by_hand).await.unwrap_err();
    assert!(matches!(error, CompareError::NotLinked(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!("contact {by_hand} is not linked to a user; nothing to compare")
    );
    let error = compare(&app, by_hand + 1000).await.unwrap_err();
    assert!(matches!(error, CompareError::NoContact(_)), "{error:?}");

    // A credential that fails is diagnosed as the connection test diagnoses it.
    let linked = contact_of(&app, 3).await;
    let connection = app.store.connection("contoso").await.unwrap().unwrap();
    let pasted_id = ClientSecret::parse("9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a").unwrap();
    app.store
        .set_connection_credential(&connection, &Credential::Secret(pasted_id))
        .await
        .unwrap();
    let error = compare(&app, linked).await.unwrap_err();
    let CompareError::Credential { problem, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(problem.code, "secret_id_not_value");
    assert!(
        error
            .to_string()
            .contains("`m365sync connection credential contoso --client-secret-stdin`"),
        "{error}"
    );

    // No connection reaches the tenant any more.
    app.store.remove_connection("contoso").await.unwrap();
    let error = compare(&app, linked).await.unwrap_err();
    assert!(
        matches!(error, CompareError::NoConnection { .. }),
        "{error:?}"
    );
}
