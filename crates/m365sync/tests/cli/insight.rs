//! `software`, `consolidate`, `licenses waste`, `trends`, `report` and their exports, against a
//! synced simulated tenant: what a technician reads, and each bad file named by line or row.

use serde_json::Value;

use super::{add_with, m365sync, sim, text};

#[tokio::test(flavor = "multi_thread")]
async fn the_inventory_tells_software_waste_and_trends_and_writes_a_report() {
    let sim = sim(160).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let secret = sim.tenants()[0].client_secret.clone();
    let added = add_with(&db, &sim, "contoso", &secret, &["--datasets", "all"]);
    assert!(added.status.success(), "{:?}", text(&added));
    let synced = m365sync(&db, &["sync", "contoso"], &[]);
    assert!(synced.status.success(), "{:?}", text(&synced));
    let tenants: Value =
        serde_json::from_slice(&m365sync(&db, &["tenants", "--json"], &[]).stdout).unwrap();
    let org = tenants[0]["organization"].as_str().unwrap().to_string();

    // Software: products with their versions, and the residue.
    let listed = m365sync(&db, &["software", "--json"], &[]);
    assert!(listed.status.success(), "{:?}", text(&listed));
    let products: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let find = |name: &str| {
        products
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["product"] == name)
            .cloned()
    };
    let chrome = find("Google Chrome").expect("Google Chrome");
    assert_eq!(chrome["matched"], true);
    assert!(chrome["devices"].as_u64().unwrap() > 0);
    assert_eq!(chrome["tenants"][0]["organization"], org.as_str());
    assert_eq!(find("contoso timesheets").unwrap()["matched"], false);
    let shown = m365sync(&db, &["software", "--product", "7-zip"], &[]);
    let (out, _) = text(&shown);
    assert!(
        out.contains("detected as:") && out.contains("7-Zip 23.01 (x64)"),
        "{out}"
    );
    let table = m365sync(&db, &["software", "--organization", &org], &[]);
    let (out, _) = text(&table);
    assert!(
        out.contains("Unmatched") && out.contains("contoso timesheets"),
        "{out}"
    );

    // An admin's rule file: a broken one is named by file, line and rule; a good one wins.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "format = 1\nrevision = \"1\"\n[[product]]\nname = \"Timesheets\"\npublisher = \"Contoso\"\nmatch = [\"Contoso Timesheets (x64)\"]\n",
    )
    .unwrap();
    let refused = m365sync(&db, &["consolidate", "--rules", bad.to_str().unwrap()], &[]);
    assert_eq!(refused.status.code(), Some(2));
    let (_, err) = text(&refused);
    assert!(err.contains("bad.toml, line 3, rule 'Timesheets'"), "{err}");
    let good = dir.path().join("rules.toml");
    std::fs::write(
        &good,
        "format = 1\nrevision = \"contoso-1\"\n[[product]]\nname = \"Contoso Timesheets\"\npublisher = \"Contoso\"\nmatch = [\"contoso timesheets\"]\n",
    )
    .unwrap();
    let consolidated = m365sync(
        &db,
        &["consolidate", "--rules", good.to_str().unwrap()],
        &[],
    );
    let (out, err) = text(&consolidated);
    assert!(consolidated.status.success(), "{err}");
    assert!(
        out.contains("contoso-1") && out.contains("products"),
        "{out}"
    );
    let products: Value =
        serde_json::from_slice(&m365sync(&db, &["software", "--json"], &[]).stdout).unwrap();
    let timesheets = products
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["product"] == "Contoso Timesheets")
        .expect("the admin's rule names it");
    assert_eq!(timesheets["matched"], true);

    // Licence waste, priced; a price list's bad row is named.
    let prices = dir.path().join("prices.csv");
    std::fs::write(
        &prices,
        "sku,monthly_price,currency\nSPE_E3,36.00,EUR\nENTERPRISEPACK,23.00,EUR\nSPB,22.00,EUR\n",
    )
    .unwrap();
    let waste = m365sync(
        &db,
        &[
            "licenses",
            "waste",
            "--json",
            "--prices",
            prices.to_str().unwrap(),
        ],
        &[],
    );
    assert!(waste.status.success(), "{:?}", text(&waste));
    let waste: Value = serde_json::from_slice(&waste.stdout).unwrap();
    let waste_total = waste["monthly_waste_cents"]["EUR"].as_i64();
    assert!(!waste["seats"].as_array().unwrap().is_empty());
    for finding in waste["findings"].as_array().unwrap() {
        assert!(finding["evidence"].as_str().is_some_and(|e| !e.is_empty()));
        // The simulated tenant's free Power Automate and Power BI seats are given away, not
        // bought: never waste.
        assert!(
            !finding["skus"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == "FLOW_FREE" || s == "POWER_BI_STANDARD"),
            "{finding}"
        );
    }
    assert!(
        waste["seats"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["sku_part_number"] == "FLOW_FREE" && s["no_charge"] == true)
    );
    // One currency per list, and one row per SKU: each refusal names the rows.
    for (list, named) in [
        (
            "sku,monthly_price,currency\nSPE_E3,36.00,EUR\nSPB,22.00,USD\n",
            "row 3, column currency: SPB is in USD while SPE_E3 on row 2 is in EUR",
        ),
        (
            "sku,monthly_price\nSPE_E3,36\n05e9a617-0261-4cee-bb44-138d3ef5d965,30\n",
            "rows 2 (SPE_E3) and 3 (05e9a617-0261-4cee-bb44-138d3ef5d965) both price one SKU",
        ),
        (
            "sku,monthly_price\nSPE_E3,3600000\n",
            "row 2, column monthly_price",
        ),
    ] {
        let mixed = dir.path().join("mixed.csv");
        std::fs::write(&mixed, list).unwrap();
        let refused = m365sync(
            &db,
            &["licenses", "waste", "--prices", mixed.to_str().unwrap()],
            &[],
        );
        assert_eq!(refused.status.code(), Some(2), "{:?}", text(&refused));
        assert!(text(&refused).1.contains(named), "{:?}", text(&refused));
    }
    let bad_prices = dir.path().join("bad.csv");
    std::fs::write(&bad_prices, "sku,monthly_price\nSPB,22\nSPE_E3,€36\n").unwrap();
    let refused = m365sync(
        &db,
        &[
            "licenses",
            "waste",
            "--prices",
            bad_prices.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused).1.contains("bad.csv, row 3"),
        "{:?}",
        text(&refused)
    );

    // Trends and the report.
    let again = m365sync(&db, &["sync", "contoso"], &[]);
    assert!(again.status.success());
    let trends = m365sync(&db, &["trends", &org], &[]);
    let (out, err) = text(&trends);
    assert!(trends.status.success(), "{err}");
    // The admin's rule moved the software figures between the two syncs: a second snapshot.
    assert!(
        out.contains("users enabled") && out.contains("2 snapshots"),
        "{out}"
    );
    // A day in the future shows no point and says why.
    let future = m365sync(
        &db,
        &["trends", &org, "--since", "2999-01-01", "--json"],
        &[],
    );
    assert!(future.status.success(), "{:?}", text(&future));
    let future: Value = serde_json::from_slice(&future.stdout).unwrap();
    assert_eq!(future[0]["trends"].as_array().unwrap().len(), 0);
    assert!(
        future[0]["note"]
            .as_str()
            .unwrap()
            .starts_with("2999-01-01 is in the future"),
        "{future}"
    );
    let refused = m365sync(&db, &["trends", &org, "--since", "yesterday"], &[]);
    assert_eq!(refused.status.code(), Some(2));
    let unknown = m365sync(&db, &["trends", "Nobody Ltd"], &[]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown).1.contains(&org));

    let html = dir.path().join("report.html");
    let written = m365sync(
        &db,
        &[
            "report",
            &org,
            "--format",
            "html",
            "-o",
            html.to_str().unwrap(),
            "--prices",
            prices.to_str().unwrap(),
        ],
        &[],
    );
    assert!(written.status.success(), "{:?}", text(&written));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!doctype html>"));
    assert!(
        page.contains("<svg") && page.contains("figcaption>Users<"),
        "charts"
    );
    assert!(page.contains("Seats bought and assigned") && page.contains("Google Chrome"));
    // Readable offline: nothing to run and nothing to fetch.
    for fetch in ["<script", "<link", "src=", "url("] {
        assert!(!page.contains(fetch), "{fetch}");
    }
    // Never over an existing file: not the last report, and above all not the store.
    // Compared as a database, not byte for byte: closing the store may fold its write-ahead log
    // into the file, which changes its bytes but not what it holds.
    let organizations_before = text(&m365sync(&db, &["export", "contacts"], &[])).0;
    for target in [html.to_str().unwrap(), db.to_str().unwrap()] {
        let refused = m365sync(&db, &["report", &org, "-o", target], &[]);
        assert_eq!(refused.status.code(), Some(2), "{:?}", text(&refused));
        assert!(
            text(&refused).1.contains("already exists"),
            "{:?}",
            text(&refused)
        );
    }
    assert!(
        std::fs::read(&db)
            .unwrap()
            .starts_with(b"SQLite format 3\0")
    );
    assert_eq!(
        text(&m365sync(&db, &["export", "contacts"], &[])).0,
        organizations_before
    );
    assert_eq!(std::fs::read_to_string(&html).unwrap(), page);
    let json = m365sync(&db, &["report", &org, "--format", "json"], &[]);
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["organization"], org.as_str());
    assert!(
        report["tenants"][0]["figures"]["users.enabled"]
            .as_i64()
            .unwrap()
            > 0
    );

    // Exports.
    let csv = m365sync(&db, &["export", "software", "--format", "csv"], &[]);
    let (out, _) = text(&csv);
    assert!(
        out.starts_with("organization,tenant_id,product,publisher,matched,product_devices"),
        "{out}"
    );
    assert!(
        !out.lines().next().unwrap().contains("raw_names"),
        "no names joined into one cell"
    );
    let names = m365sync(&db, &["export", "software-names", "--format", "csv"], &[]);
    let mut reader = csv::Reader::from_reader(names.stdout.as_slice());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let raw: Vec<&str> = rows.iter().map(|r| r.get(5).unwrap()).collect();
    assert!(raw.contains(&"7-Zip 23.01 (x64)"), "{raw:?}");
    // A name holding "|" reads back as it was detected, one name a row.
    assert!(
        raw.contains(&"Dell Command | Update for Windows Universal"),
        "{raw:?}"
    );
    let snapshots: Value =
        serde_json::from_slice(&m365sync(&db, &["export", "snapshots"], &[]).stdout).unwrap();
    assert!(
        snapshots
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["figure"] == "users.enabled")
    );
    let waste: Value = serde_json::from_slice(
        &m365sync(
            &db,
            &["export", "license-waste"],
            &[("M365SYNC_PRICES", prices.to_str().unwrap())],
        )
        .stdout,
    )
    .unwrap();
    // A seat two findings name is counted in the first: the rows add up to the total.
    let summed: i64 = waste
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|row| row["monthly_cost"].as_str())
        .map(|cost| {
            let (whole, cents) = cost.split_once('.').unwrap();
            whole.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap()
        })
        .sum();
    assert_eq!(Some(summed), waste_total, "{waste}");
    assert!(
        waste
            .as_array()
            .unwrap()
            .iter()
            .all(|row| row["counted_in"].is_string()),
        "{waste}"
    );
    let connectors: Value =
        serde_json::from_slice(&m365sync(&db, &["export", "api-connectors"], &[]).stdout).unwrap();
    assert_eq!(connectors.as_array().unwrap().len(), 2);
}
