//! The plan step of the users dataset: one page of 999 users, normalised and planned against
//! what the store holds for them, as `users_round` does for every page.

use std::collections::{BTreeMap, HashSet};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use domain::plan::{ContactAction, StoredContact, StoredContacts, plan_contacts};
use domain::{ContactRecord, FieldMapping, TenantId};
use graph::models::{USER_SELECT, User};
use graph_sim::people::Population;

/// The largest page Graph gives (`$top=999`).
const PAGE_USERS: u64 = 999;
/// One user in this many changed at the source since the contact was written.
const CHANGED_EVERY: u64 = 10;
/// When the plan is made; only deletions read it.
const NOW_MILLIS: i64 = 1_767_225_600_000;

/// A page of users as the client hands it over, normalised into the records the plan reads.
fn page_records(tenant_id: TenantId) -> Vec<ContactRecord> {
    let population = Population::new(1, 0, "contoso.onmicrosoft.com".into(), "contoso.com".into());
    let fields: Vec<&str> = USER_SELECT.split(',').collect();
    (0..PAGE_USERS)
        .map(|index| {
            let user: User = serde_json::from_value(population.user(index).select(&fields))
                .expect("a simulated user reads as a Graph user");
            sync::contact_from_user(tenant_id, &user).expect("a simulated user normalises")
        })
        .collect()
}

/// The contact a sync wrote for `record`, linked to its user or not yet; every tenth one was
/// written before its user's job title changed.
fn stored_contact(id: i64, record: &ContactRecord, linked: bool) -> StoredContact {
    let mut written = record.clone();
    if (id as u64).is_multiple_of(CHANGED_EVERY) {
        written.job_title = Some("Title before the change".into());
    }
    StoredContact {
        id,
        object_id: linked.then_some(record.object_id),
        archived: false,
        restorable_until: None,
        fingerprint: linked.then(|| written.fingerprint()),
        fields: written.fields(),
        custom: BTreeMap::new(),
        upn_key: Some(record.user_principal_name.key().to_string()),
        email_key: record.email.as_deref().map(str::to_lowercase),
    }
}

fn plan_users_page(c: &mut Criterion) {
    let tenant_id =
        TenantId::parse("00000000-0000-4000-8000-000000000001").expect("a valid tenant id");
    let records = page_records(tenant_id);
    let mapping = FieldMapping::default();
    // A resync: every user is already a linked contact.
    let resync = StoredContacts {
        linked: records
            .iter()
            .zip(1..)
            .map(|(record, id)| (record.object_id, stored_contact(id, record, true)))
            .collect(),
        unlinked: Vec::new(),
        refused: HashSet::new(),
    };
    // A first sync into an organisation whose contacts were kept by hand: each user is linked
    // to the contact of the same user principal name.
    let first_sync = StoredContacts {
        linked: Default::default(),
        unlinked: records
            .iter()
            .zip(1..)
            .map(|(record, id)| stored_contact(id, record, false))
            .collect(),
        refused: HashSet::new(),
    };
    let updates = |stored: &StoredContacts| {
        plan_contacts(&records, &[], stored, &mapping, NOW_MILLIS)
            .actions
            .iter()
            .filter(|a| matches!(a, ContactAction::Update { .. }))
            .count() as u64
    };
    assert_eq!(updates(&resync), PAGE_USERS.div_ceil(CHANGED_EVERY) - 1);
    assert_eq!(updates(&first_sync), PAGE_USERS);

    let mut group = c.benchmark_group("plan_page");
    group.throughput(Throughput::Elements(PAGE_USERS));
    group.bench_function("users_999_resync", |b| {
        b.iter(|| {
            plan_contacts(
                std::hint::black_box(&records),
                &[],
                &resync,
                &mapping,
                NOW_MILLIS,
            )
        })
    });
    group.bench_function("users_999_first_sync_linking", |b| {
        b.iter(|| {
            plan_contacts(
                std::hint::black_box(&records),
                &[],
                &first_sync,
                &mapping,
                NOW_MILLIS,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, plan_users_page);
criterion_main!(benches);
