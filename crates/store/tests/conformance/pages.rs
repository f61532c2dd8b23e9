//! What the pages page through, on both backends: one page at a time with the count of all,
//! and text found in any case in any script (`Ä` finds `ä`), the same on SQLite and PostgreSQL.

use store::{ContactFilter, ContactSearch, ContactSort};
use testkit::StoreKind;

testkit::on_both_stores!(
    text_is_found_in_any_case_in_any_script,
    lists_come_a_page_at_a_time_with_their_count,
    names_come_in_the_order_people_read_them,
);

async fn synced(kind: StoreKind, users: u64) -> testkit::TestApp {
    let (store, home) = testkit::store_of(kind).await;
    let app = testkit::TestApp::on(
        store,
        home,
        testkit::graph_sim::SimConfig {
            seed: 5,
            tenants: vec![testkit::graph_sim::TenantSpec::with_users(users)],
            ..testkit::graph_sim::SimConfig::default()
        },
    )
    .await;
    app.add_connection("contoso", 0).await;
    app.sync("contoso").await;
    app
}

async fn text_is_found_in_any_case_in_any_script(kind: StoreKind) {
    let app = synced(kind, 4).await;
    let store = &app.store;
    let (orgs, _) = store.organizations_page(0, 1).await.unwrap();
    let org = orgs[0].id;
    let anne = store
        .create_local_contact(org, "ÄNNE Øster", "anne@contoso.example")
        .await
        .unwrap();
    let emile = store
        .create_local_contact(org, "émile ärger", "emile@contoso.example")
        .await
        .unwrap();
    let star = store
        .create_local_contact(org, "Star [*] Question?", "star@contoso.example")
        .await
        .unwrap();
    let searched = |text: &'static str| {
        let store = store.clone();
        async move {
            let (found, total) = store
                .search_contacts(&ContactSearch {
                    organization_id: Some(org),
                    text: Some(text.into()),
                    limit: 100,
                    ..ContactSearch::default()
                })
                .await
                .unwrap();
            assert_eq!(found.len() as i64, total, "{text}");
            let listed: Vec<i64> = store
                .contacts_page(
                    &ContactFilter {
                        search: Some(text.into()),
                        ..ContactFilter::default()
                    },
                    0,
                    100,
                )
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.id)
                .collect();
            let mut ids: Vec<i64> = found.into_iter().map(|c| c.id).collect();
            ids.sort();
            assert_eq!(ids, listed, "both searches agree on '{text}'");
            ids
        }
    };
    assert_eq!(searched("änne").await, [anne]);
    assert_eq!(searched("ÄnNe ø").await, [anne]);
    assert_eq!(searched("ÉMILE").await, [emile]);
    assert_eq!(searched("ÄRGER").await, [emile]);
    assert_eq!(searched("Émile Ä").await, [emile]);
    assert_eq!(searched("EMILE@CONTOSO").await, [emile], "ASCII as before");
    // The matchers' own characters are taken as they are.
    assert_eq!(searched("[*]").await, [star]);
    assert_eq!(searched("question?").await, [star]);
    assert_eq!(searched("st*r").await, Vec::<i64>::new());
    assert_eq!(searched("s.ar").await, Vec::<i64>::new());
    assert_eq!(searched("e%e").await, Vec::<i64>::new());
    assert!(
        searched("   ").await.len() >= 7,
        "blank text narrows nothing"
    );
}

async fn lists_come_a_page_at_a_time_with_their_count(kind: StoreKind) {
    let app = synced(kind, 12).await;
    let store = &app.store;
    let second = store.create_organization("Zeta Partners").await.unwrap();
    let (page, total) = store.organizations_page(1, 1).await.unwrap();
    assert_eq!(total, store.organizations().await.unwrap().len() as i64);
    assert_eq!(total, 2);
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, second, "by name: Zeta comes second");
    let names = store.organization_names("", 100).await.unwrap();
    let full: Vec<(i64, String)> = store
        .organizations()
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.id, o.name))
        .collect();
    assert_eq!(names, full);
    // Typed text narrows the names, in any case; at most as many as asked for.
    let zeta = store.organization_names("zETA", 100).await.unwrap();
    assert_eq!(zeta, [(second, "Zeta Partners".to_string())]);
    assert_eq!(store.organization_names("", 1).await.unwrap().len(), 1);
    assert_eq!(
        store.organizations_named(" zeta partners ").await.unwrap(),
        [second]
    );
    assert!(store.organizations_named("Zeta").await.unwrap().is_empty());
    // Doubled spaces and zero-width characters make no other name.
    assert_eq!(
        store
            .organizations_named("Zeta\u{200B}  PARTNERS\u{FEFF}")
            .await
            .unwrap(),
        [second]
    );

    let every = store.tenants(None).await.unwrap();
    let (tenants, total) = store.tenants_page(None, 0, 10).await.unwrap();
    assert_eq!(total, every.len() as i64);
    assert_eq!(
        tenants.iter().map(|t| &t.tenant_id).collect::<Vec<_>>(),
        every.iter().map(|t| &t.tenant_id).collect::<Vec<_>>()
    );
    let (beyond, total_beyond) = store.tenants_page(None, 10, 10).await.unwrap();
    assert!(beyond.is_empty());
    assert_eq!(total_beyond, total);
    let counts = store.tenant_counts().await.unwrap();
    assert_eq!(counts.iter().map(|(_, n)| n).sum::<i64>(), total);
    for (state, n) in counts {
        let (_, in_state) = store.tenants_page(Some(state), 0, 1).await.unwrap();
        assert_eq!(in_state, n, "{state:?}");
    }

    let (queue, queued) = store.review_items_page(true, 0, 5).await.unwrap();
    assert_eq!(queued, store.review_items(true).await.unwrap().len() as i64);
    assert!(queue.len() as i64 <= queued.min(5));

    let runs = store.runs(None, 10).await.unwrap();
    let run = runs.last().unwrap().id;
    let all = store.run_records(run, None).await.unwrap();
    assert!(all.len() >= 12, "the first run created every user");
    let (middle, total) = store.run_records_page(run, None, 2, 3).await.unwrap();
    assert_eq!(total, all.len() as i64);
    assert_eq!(middle, all[2..5].to_vec());
    let created = Some(store::RecordOutcome::Created);
    let (_, created_total) = store.run_records_page(run, created, 0, 1).await.unwrap();
    assert_eq!(
        created_total,
        store.run_records(run, created).await.unwrap().len() as i64
    );

    let tenant = domain::TenantId::parse(&app.tenant_key(0)).unwrap();
    let audit = store
        .audit_records(&store::AuditQuery {
            tenant_id: Some(tenant),
            since: None,
            user: None,
        })
        .await
        .unwrap();
    assert!(!audit.is_empty(), "the simulator keeps audit activity");
    let (newest, total) = store.audit_page(&tenant, "", 0, 5).await.unwrap();
    assert_eq!(total, audit.len() as i64);
    let times: Vec<_> = newest
        .iter()
        .map(|r| r.row.record.creation_time.clone())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");
    let operation = audit[0].row.record.operation.clone().unwrap();
    let (found, found_total) = store
        .audit_page(&tenant, &operation.to_uppercase(), 0, 1000)
        .await
        .unwrap();
    assert_eq!(found.len() as i64, found_total);
    let expected = audit
        .iter()
        .filter(|r| {
            let a = &r.row.record;
            [
                &a.user_id,
                &a.operation,
                &a.workload,
                &a.result_status,
                &a.client_ip,
                &a.object_id,
            ]
            .iter()
            .any(|f| {
                f.as_deref()
                    .is_some_and(|v| v.to_lowercase().contains(&operation.to_lowercase()))
            })
        })
        .count();
    assert_eq!(found_total, expected as i64);
    assert!(found_total >= 1);
}

/// Accents and case do not send a name to the end of a list: "Émile" is read beside "Emma",
/// "Ålborg" beside "Aarhus", on both backends (PostgreSQL's own order is often by code point).
async fn names_come_in_the_order_people_read_them(kind: StoreKind) {
    let (store, _home) = testkit::store_of(kind).await;
    let org = store.create_organization("Zeta Ltd").await.unwrap();
    for name in [
        "Ålborg Kommune",
        "beta AB",
        "Aarhus Tech",
        "Östra Hamnen",
        "Oslo Bygg",
        "Øresund Shipping",
    ] {
        store.create_organization(name).await.unwrap();
    }
    let (orgs, _) = store.organizations_page(0, 100).await.unwrap();
    let names: Vec<&str> = orgs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Aarhus Tech",
            "Ålborg Kommune",
            "beta AB",
            "Øresund Shipping",
            "Oslo Bygg",
            "Östra Hamnen",
            "Zeta Ltd"
        ]
    );
    for (name, mail) in [
        ("Zoe", "zoe"),
        ("émile", "emile"),
        ("Emma", "emma"),
        ("eve", "eve"),
        ("Ölaf", "olaf"),
        ("oscar", "oscar"),
        ("Øystein", "oystein"),
        ("Łucja", "lucja"),
    ] {
        store
            .create_local_contact(org, name, &format!("{mail}@zeta.example"))
            .await
            .unwrap();
    }
    let sorted = |descending: bool| {
        let store = store.clone();
        async move {
            let (found, _) = store
                .search_contacts(&ContactSearch {
                    organization_id: Some(org),
                    sort: ContactSort::Name,
                    descending,
                    limit: 100,
                    ..ContactSearch::default()
                })
                .await
                .unwrap();
            found
                .into_iter()
                .map(|c| c.display_name)
                .collect::<Vec<String>>()
        }
    };
    let expected = [
        "émile", "Emma", "eve", "Łucja", "Ölaf", "oscar", "Øystein", "Zoe",
    ];
    assert_eq!(sorted(false).await, expected);
    let mut reversed = expected;
    reversed.reverse();
    assert_eq!(sorted(true).await, reversed);
    // A search takes letters as the list does: without their accents, whichever side has them.
    for (text, name) in [
        ("oystein", "Øystein"),
        ("LUCJA", "Łucja"),
        ("Émile", "émile"),
    ] {
        let (found, total) = store
            .search_contacts(&ContactSearch {
                organization_id: Some(org),
                text: Some(text.into()),
                limit: 100,
                ..ContactSearch::default()
            })
            .await
            .unwrap();
        let names: Vec<String> = found.into_iter().map(|c| c.display_name).collect();
        assert_eq!(
            (names, total),
            (vec![name.to_string()], 1),
            "searching {text}"
        );
    }
}
