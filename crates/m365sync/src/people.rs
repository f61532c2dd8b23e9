//! `history`, `review` and `import`: what a technician looks back on, decides, and brings in.

use std::collections::HashMap;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use domain::import::ImportedContact;
use store::{ImportOutcome, Resolution};

use crate::UsageError;
use crate::commands::open_store;

#[derive(Subcommand)]
pub enum HistoryCommand {
    /// Every change made to a contact: by which run, field by field, old and new.
    Contact {
        /// The contact's id (as `export contacts` shows it).
        id: i64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub async fn history(db: &str, command: HistoryCommand) -> anyhow::Result<ExitCode> {
    let HistoryCommand::Contact { id, json } = command;
    let store = open_store(db).await?;
    if store.contact_as_planned(id).await?.is_none() {
        return Err(UsageError(format!(
            "there is no contact {id}; `m365sync export contacts` lists them with their id"
        ))
        .into());
    }
    let changes = store.contact_history(id).await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&changes)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if changes.is_empty() {
        out!("Contact {id} has no recorded changes.")?;
    }
    for change in &changes {
        let when = chrono::DateTime::from_timestamp_millis(change.changed_at)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default();
        let by = change
            .run_id
            .map(|run| format!("run {run}"))
            .unwrap_or_else(|| "by hand".to_string());
        let note = change
            .note
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".to_string());
        out!(
            "{when} · {by} · {}: {} → {}{note}",
            change.field,
            show(&change.old),
            show(&change.new)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum ContactCommand {
    /// Edit a contact by hand: one of its fields (one its connection's mapping leaves to the
    /// technician), or a custom field with `--custom NAME VALUE`. An empty VALUE empties it.
    Set {
        /// The contact's id (as `export contacts` shows it).
        id: i64,
        /// FIELD VALUE, or with `--custom`, NAME VALUE.
        #[arg(num_args = 2, value_names = ["FIELD", "VALUE"])]
        field_and_value: Vec<String>,
        /// The first argument names a custom field.
        #[arg(long)]
        custom: bool,
    },
}

pub async fn contact(db: &str, command: ContactCommand) -> anyhow::Result<ExitCode> {
    let ContactCommand::Set {
        id,
        field_and_value,
        custom,
    } = command;
    let [field, value] = field_and_value.as_slice() else {
        return Err(UsageError("give a FIELD and a VALUE".into()).into());
    };
    let store = open_store(db).await?;
    let Some(planned) = store.contact_as_planned(id).await? else {
        return Err(UsageError(format!(
            "there is no contact {id}; `m365sync export contacts` lists them with their id"
        ))
        .into());
    };
    // A contact kept by hand (no tenant) has no connection: every field is the technician's.
    let mapping = match &planned.tenant_id {
        Some(tenant) => Some(store.field_mapping_of(&tenant.to_string()).await?),
        None => None,
    };
    let edit = if custom {
        let name = match &mapping {
            Some(m) => m.hand_edit_custom(field),
            None => domain::FieldMapping::default().hand_edit_custom(field),
        };
        store::HandEdit::Custom(name.map_err(|e| refused(id, e))?)
    } else {
        let field = domain::mapping::mappable(field).map_err(|e| UsageError(e.to_string()))?;
        if let Some(mapping) = &mapping {
            mapping.hand_edit(field).map_err(|e| refused(id, e))?;
        }
        store::HandEdit::Field(field)
    };
    let old = store.edit_contact(id, &edit, Some(value)).await?;
    let name = match &edit {
        store::HandEdit::Field(f) => f.to_string(),
        store::HandEdit::Custom(c) => format!("custom field '{c}'"),
    };
    let show = |v: Option<&str>| {
        v.filter(|v| !v.trim().is_empty())
            .unwrap_or("—")
            .to_string()
    };
    out!(
        "Contact {id}: {name} {} → {} (kept in `m365sync history contact {id}`).",
        show(old.as_deref()),
        show(Some(value.trim()))
    )?;
    Ok(ExitCode::SUCCESS)
}

fn refused(id: i64, e: domain::InputError) -> anyhow::Error {
    anyhow::anyhow!("contact {id} was not changed: {}; {}", e.problem, e.fix)
}

#[derive(Subcommand)]
pub enum UnlinkCommand {
    /// Undo a contact's link to its user: the contact stays, the user is never put back on it
    /// unasked, and the next sync gives the user a contact of their own.
    Contact {
        /// The contact's id (as `export contacts` shows it).
        id: i64,
    },
}

pub async fn unlink(db: &str, command: UnlinkCommand) -> anyhow::Result<ExitCode> {
    let UnlinkCommand::Contact { id } = command;
    let store = open_store(db).await?;
    let user = store.unlink_contact(id).await?;
    out!(
        "Contact {id} is no longer linked to user {user}; the next sync will not link them again."
    )?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct ReviewArgs {
    /// The item to settle; without it, the open items are listed.
    item: Option<i64>,
    /// The held user is this existing contact.
    #[arg(
        long,
        value_name = "CONTACT_ID",
        requires = "item",
        conflicts_with = "create"
    )]
    link: Option<i64>,
    /// The held user is none of the candidates: give them a contact of their own.
    #[arg(long, requires = "item")]
    create: bool,
    /// List settled items too.
    #[arg(long, conflicts_with = "item")]
    all: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub async fn review(db: &str, args: ReviewArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(db).await?;
    let Some(item) = args.item else {
        let items = store.review_items(args.all).await?;
        if args.json {
            out!("{}", serde_json::to_string_pretty(&items)?)?;
            return Ok(ExitCode::SUCCESS);
        }
        if items.is_empty() {
            out!("Nothing waits for review.")?;
        }
        if !items.is_empty() {
            let mut table = crate::output::Table::new(&[
                "ITEM",
                "USER",
                "SIGN-IN NAME",
                "STATE",
                "RULE",
                "COULD BE CONTACT",
            ]);
            for item in &items {
                let mut candidates = item.candidates.iter().map(|candidate| {
                    format!(
                        "{} · {} · {}",
                        candidate.contact_id,
                        candidate.display_name,
                        candidate
                            .email
                            .as_deref()
                            .or(candidate.user_principal_name.as_deref())
                            .unwrap_or("—")
                    )
                });
                table.row(vec![
                    item.id.to_string(),
                    item.display_name.clone(),
                    item.user_principal_name.clone(),
                    item.state.clone(),
                    item.rule.clone(),
                    candidates.next().unwrap_or_else(|| "-".into()),
                ]);
                // Every further candidate on a line of its own, under the first.
                for candidate in candidates {
                    table.row(vec![
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                        candidate,
                    ]);
                }
            }
            table.print()?;
        }
        if !args.json && items.iter().any(|i| i.state == "open") {
            out!(
                "Settle one with `m365sync review ITEM --link CONTACT_ID` or `m365sync review ITEM --create`."
            )?;
        }
        return Ok(ExitCode::SUCCESS);
    };
    let resolution = match (args.link, args.create) {
        (Some(contact), false) => Resolution::Link(contact),
        (None, true) => Resolution::Create,
        _ => {
            return Err(UsageError(format!(
                "say how to settle item {item}: --link CONTACT_ID (the user is that contact) or --create (a contact of their own)"
            ))
            .into());
        }
    };
    let contact = sync::settle_review(&store, item, resolution).await?;
    out!(
        "Item {item} settled: the user is contact {contact} from now on. `m365sync history contact {contact}` shows it."
    )?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum ImportCommand {
    /// Contacts from a CSV file with a header row: display_name, email, and optionally
    /// user_principal_name, job_title, mobile_phone and organization. A contact whose mail or
    /// user principal name is already in the organisation is left as it is; a later sync links
    /// each to its user instead of making a second contact.
    Contacts {
        /// The CSV file to read (columns as described above).
        file: std::path::PathBuf,
        /// The organisation for rows without an `organization` column (made if it does not
        /// exist).
        #[arg(long)]
        organization: Option<String>,
    },
}

const IMPORT_COLUMNS: &[&str] = &[
    "organization",
    "display_name",
    "email",
    "user_principal_name",
    "job_title",
    "mobile_phone",
];

/// One row of an import, checked.
struct ImportRow {
    organization: String,
    contact: ImportedContact,
}

pub async fn import(db: &str, command: ImportCommand) -> anyhow::Result<ExitCode> {
    let ImportCommand::Contacts { file, organization } = command;
    if organization.as_deref().is_some_and(|o| o.trim().is_empty()) {
        return Err(
            UsageError("--organization is empty: give the organisation's name".into()).into(),
        );
    }
    // The flag's name is checked as the flag's, not as each row's that lacks one.
    let organization = organization
        .as_deref()
        .map(domain::names::organization_name)
        .transpose()
        .map_err(|problem| UsageError(format!("--organization: {problem}")))?;
    let rows = read_import(&file, organization.as_deref())?;
    let store = open_store(db).await?;
    // Rows by organisation, in file order: "Contoso Ltd" and "Contoso, LTD." are one
    // organisation, as tenant matching says.
    let mut by_organization: Vec<(String, Vec<ImportedContact>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for row in rows {
        let key = domain::matching::normalize_name(&row.organization);
        let slot = *index.entry(key).or_insert_with(|| {
            by_organization.push((row.organization.clone(), Vec::new()));
            by_organization.len() - 1
        });
        by_organization[slot].1.push(row.contact);
    }
    let known = store.organizations().await?;
    let (mut created, mut there) = (0u64, 0u64);
    for (name, contacts) in &by_organization {
        let organization_id = match known
            .iter()
            .find(|o| domain::matching::same_name(&o.name, name))
        {
            Some(found) => found.id,
            None => store.create_organization(name).await?,
        };
        let mut batch = store.import_batch(organization_id).await?;
        let plan = domain::import::plan_import(&batch.known().await?, contacts);
        for outcome in batch.apply(contacts, &plan).await? {
            match outcome {
                ImportOutcome::Created(_) => created += 1,
                ImportOutcome::AlreadyThere(_) => there += 1,
            }
        }
    }
    let were = if there == 1 { "was" } else { "were" };
    out!(
        "Imported {created} contacts from {}; {there} {were} there already (same mail or user principal name as a contact of the organisation, or as an earlier row) and left as they are.",
        file.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Reads and checks the whole file first: one bad row imports nothing, and every bad row is
/// named by its line.
fn read_import(
    path: &std::path::Path,
    organization: Option<&str>,
) -> anyhow::Result<Vec<ImportRow>> {
    let bad = |message: String| anyhow::Error::new(UsageError(message));
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| {
            bad(format!(
                "{}: {e}; give the path of a CSV file",
                path.display()
            ))
        })?;
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| {
            bad(format!(
                "{}: the header row cannot be read: {e}",
                path.display()
            ))
        })?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_lowercase())
        .collect();
    if let Some(unknown) = headers
        .iter()
        .find(|h| !IMPORT_COLUMNS.contains(&h.as_str()))
    {
        return Err(bad(format!(
            "{}: unknown column '{unknown}'; the columns are {}",
            path.display(),
            IMPORT_COLUMNS.join(", ")
        )));
    }
    if !headers.iter().any(|h| h == "display_name") {
        return Err(bad(format!(
            "{}: the header has no display_name column; the columns are {}",
            path.display(),
            IMPORT_COLUMNS.join(", ")
        )));
    }
    if organization.is_none() && !headers.iter().any(|h| h == "organization") {
        return Err(bad(format!(
            "{}: say which organisation the contacts belong to: an organization column, or --organization NAME",
            path.display()
        )));
    }
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                problems.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let field = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .and_then(|i| record.get(i))
                .map(|v| graph::text::clean_str(v).trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let Some(display_name) = field("display_name") else {
            problems.push(format!("line {line}: display_name is empty"));
            continue;
        };
        let email = field("email");
        let upn = field("user_principal_name");
        if email.is_none() && upn.is_none() {
            problems.push(format!(
                "line {line}: give an email or a user_principal_name, so that a sync can find the contact's user"
            ));
            continue;
        }
        if let Some(mail) = email.as_deref().filter(|m| !looks_like_mail(m)) {
            problems.push(format!("line {line}: email '{mail}' is not a mail address"));
            continue;
        }
        if let Some(name) = upn.as_deref()
            && let Err(e) = domain::Upn::parse(name)
        {
            problems.push(format!("line {line}: user_principal_name: {}", e.problem));
            continue;
        }
        let Some(organization) = field("organization").or(organization.map(str::to_string)) else {
            problems.push(format!(
                "line {line}: organization is empty; fill it or give --organization NAME"
            ));
            continue;
        };
        let organization = match domain::names::organization_name(&organization) {
            Ok(name) => name,
            Err(problem) => {
                problems.push(format!("line {line}: organization: {problem}"));
                continue;
            }
        };
        rows.push(ImportRow {
            organization,
            contact: ImportedContact {
                display_name,
                email,
                user_principal_name: upn,
                job_title: field("job_title"),
                mobile_phone: field("mobile_phone"),
            },
        });
    }
    if !problems.is_empty() {
        let shown: Vec<&str> = problems.iter().take(10).map(String::as_str).collect();
        return Err(bad(format!(
            "{}: {} rows cannot be imported, so none was: {}{}",
            path.display(),
            problems.len(),
            shown.join("; "),
            if problems.len() > 10 { "; …" } else { "" }
        )));
    }
    Ok(rows)
}

fn looks_like_mail(text: &str) -> bool {
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !text.chars().any(char::is_whitespace)
        }
        None => false,
    }
}
