//! The JSON page parser: one page of 999 users, as the simulator sends it, parsed the way the
//! pager parses every page of a listing (`graph::read_page`).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use graph::models::{USER_SELECT, User};
use graph_sim::people::Population;

/// The largest page Graph gives (`$top=999`).
const PAGE_USERS: u64 = 999;

/// A users page as `GET /v1.0/users?$select=…&$top=999` answers it: context, the selected
/// fields of each user, and the link to the next page.
fn users_page() -> Vec<u8> {
    let population = Population::new(1, 0, "contoso.onmicrosoft.com".into(), "contoso.com".into());
    let fields: Vec<&str> = USER_SELECT.split(',').collect();
    let users: Vec<serde_json::Value> = (0..PAGE_USERS)
        .map(|index| population.user(index).select(&fields))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users",
        "value": users,
        "@odata.nextLink": "https://graph.microsoft.com/v1.0/users?$skiptoken=X'4453707402'",
    }))
    .expect("a page of users serialises")
}

fn parse_users_page(c: &mut Criterion) {
    let body = users_page();
    let parsed = graph::read_page::<User>(&body, "v1.0/users", 1).expect("the page parses");
    assert_eq!(parsed.value.len() as u64, PAGE_USERS);
    assert!(parsed.next_link.is_some());
    let mut group = c.benchmark_group("page_parse");
    group.throughput(Throughput::Elements(PAGE_USERS));
    group.bench_function("users_999", |b| {
        b.iter(|| graph::read_page::<User>(std::hint::black_box(&body), "v1.0/users", 1))
    });
    group.finish();
}

criterion_group!(benches, parse_users_page);
criterion_main!(benches);
