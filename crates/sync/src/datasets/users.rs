//! Users into contacts, by delta query: each page normalised, filtered by the connection's
//! rules, planned against the stored contacts (`domain::plan`) and applied with its checkpoint;
//! a whole listing archives what it lacked, unless that looks like a mistake. Every user a page
//! changes, leaves out, holds or cannot store is logged under the step with its outcome, in the
//! page's transaction (a few pages share one); an unchanged user is only counted.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use domain::{Dataset, ObjectId};
use graph::GraphError;
use graph::models::{USER_SELECT, User};
use store::{ContactBatch, RecordOutcome, RunRecord, RunWarning, StepCounts, StoredSince};
use tracing::{debug, warn};

use super::delta::{Round, USERS_RESOURCE, by_delta, checkpoint_of};
use super::{DatasetSync, Outcome, Run};
use crate::Result;
use crate::normalise::{self, NormaliseError};
/// Users into contacts (`User.Read.All`).
pub(super) struct Users;

impl DatasetSync for Users {
    fn dataset(&self) -> Dataset {
        Dataset::Users
    }
    fn probe(&self) -> Option<&'static str> {
        Some("v1.0/users?$top=1&$select=id")
    }
    async fn sync(&self, run: &mut Run<'_>) -> Result<Outcome> {
        by_delta(run, USERS_RESOURCE).await
    }
}

/// Pages written in one transaction at most, and for how long one stays open at most. Each
/// commit rewrites every index page its users' random keys touched, so a transaction per page
/// wrote the contacts' indexes a hundred times over for a large tenant; pages already fetched
/// when the one before is written go into the same commit, while the time other steps wait to
/// write stays short. What a crash loses uncommitted is read again by the next round.
const PAGES_PER_TRANSACTION: usize = 10;
const LONGEST_TRANSACTION: Duration = Duration::from_secs(1);

/// Where a users round starts: at the saved delta link, or at the whole listing.
fn round_url(link: Option<String>) -> String {
    link.unwrap_or_else(|| format!("v1.0/users/delta?$select={USER_SELECT}"))
}

/// The first page of the tenant's users round, asked for before the steps it waits on.
pub(crate) struct UsersAhead {
    url: String,
    pager: graph::Pager<'static, User>,
}

/// Asks for the first page of the users round now, from where the round will start: on a
/// distant tenant its round trip then overlaps the organisation's step and the others before
/// the users' in their lane. `None` where the round would not follow the saved link (it goes
/// elsewhere, and the round drops it).
pub(crate) async fn start_round(run: &Run<'_>) -> Result<Option<UsersAhead>> {
    let link = if run.full {
        None
    } else {
        run.store.delta_link(&run.tenant_id, USERS_RESOURCE).await?
    };
    if link.as_deref().is_some_and(|l| !run.client.is_own_link(l)) {
        return Ok(None);
    }
    let url = round_url(link);
    let pager = run
        .client
        .pages::<User>(&url)
        .max_page_size(run.page_size)
        .started();
    Ok(Some(UsersAhead { url, pager }))
}

/// The transaction pages are being written in, while it is open.
struct OpenBatch {
    batch: ContactBatch,
    opened: Instant,
    pages: usize,
}

/// Commits the pages written so far, before anything else is written or the round returns,
/// counting the contacts they created.
async fn settle(open: &mut Option<OpenBatch>, since: &mut StoredSince) -> Result<()> {
    if let Some(open) = open.take() {
        since.created(open.batch.commit().await?);
    }
    Ok(())
}

/// A users round. With a link only the changes since the last round are read; otherwise every
/// user is listed and whoever the complete listing lacks is archived. The next round's link is
/// saved in the same transaction as the data of the round's last page, so a crash never skips a
/// change.
pub(super) async fn users_round(run: &mut Run<'_>, link: Option<String>) -> Result<Round> {
    let incremental = link.is_some();
    let url = round_url(link);
    let mut pager = match run.users_ahead.take() {
        Some(ahead) if ahead.url == url => ahead.pager,
        _ => run.client.pages::<User>(&url).max_page_size(run.page_size),
    };
    let organization_id = run.organization_id.unwrap_or_default();
    // A full listing can show how far it has got; the count only serves the display, so a
    // tenant that will not count is no reason to stop. It is asked beside the first page, not
    // before it: on a distant tenant every round trip in a row is time lost.
    let counted = async {
        if !incremental {
            match run.client.count("v1.0/users/$count").await {
                Ok(total) => run.progress.expected(Dataset::Users, total),
                Err(e) => debug!(error = %e, "users could not be counted"),
            }
        }
    };
    let (first, facts, stored_since, ()) = tokio::join!(
        pager.next_page(),
        run.store.user_facts(&run.tenant_id, &run.user_filter),
        // Only a whole listing looks for what it lacked.
        async {
            if incremental {
                Ok(StoredSince::default())
            } else {
                run.store.contacts_stored_since().await
            }
        },
        counted
    );
    let facts = facts?;
    let mut stored_since = stored_since?;
    let mut filtered: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut filtered_sample: Vec<String> = Vec::new();
    let mut counts = StepCounts::default();
    let mut seen: HashSet<ObjectId> = HashSet::new();
    let mut skipped: Vec<String> = Vec::new();
    let mut held = 0u64;
    let mut deferred_archives: Vec<domain::plan::ContactAction> = Vec::new();
    let step = run.record_step(Dataset::Users);
    let mut open: Option<OpenBatch> = None;
    // The first page; each later one is fetched and read while the page before is written.
    let mut fetched = prepared(first, run.tenant_id);
    loop {
        // Stopped between pages: nothing archived and no link saved, so the next run lists on.
        if let Some(stopped) = run.stopped(counts) {
            settle(&mut open, &mut stored_since).await?;
            return Ok(Round::Done(stopped));
        }
        let Page {
            records,
            removed,
            not_stored,
            known,
            skipped: page_skipped,
        } = match fetched {
            Ok(Some(page)) => page,
            Ok(None) => break,
            Err(PageError::Graph(GraphError::DeltaExpired { .. })) if incremental => {
                settle(&mut open, &mut stored_since).await?;
                return Ok(Round::Expired);
            }
            // Nothing is archived and no link saved: the round did not finish (invariant 3).
            Err(PageError::Graph(e)) => {
                settle(&mut open, &mut stored_since).await?;
                let page = format!("page {} of users", pager.pages_read() + 1);
                run.store
                    .record_outcomes(&step, &[graph_failure(page, &e)])
                    .await?;
                return Ok(Round::Done(Outcome::from_graph(counts, &e)));
            }
            Err(PageError::Unreadable(e)) => {
                settle(&mut open, &mut stored_since).await?;
                let message = format!("page {} of users: {e}", pager.pages_read());
                return Ok(Round::Done(Outcome::failed(counts, &message, None)));
            }
        };
        seen.extend(known);
        skipped.extend(page_skipped);
        // Plan against what the store holds, under the tenant's lock, and apply the plan with
        // the checkpoint it covers: the store writes what the plan says and nothing else.
        let OpenBatch {
            mut batch,
            opened,
            pages,
        } = match open.take() {
            Some(open) => open,
            None => OpenBatch {
                batch: run
                    .store
                    .contact_batch(organization_id, &run.tenant_id)
                    .await?
                    .logging(Some(step.clone())),
                opened: Instant::now(),
                pages: 0,
            },
        };
        batch.also_record(not_stored);
        let stored = batch.stored(&records, &removed, &run.field_mapping).await?;
        // The connection's filters: users they leave out are not written, and a contact
        // whose user leaves them is archived with the rule's reason.
        let mut kept = Vec::with_capacity(records.len());
        let mut left_out = Vec::new();
        for record in records {
            match run.user_filter.verdict(&record, &facts) {
                None => kept.push(record),
                Some(reason) => left_out.push((record, reason)),
            }
        }
        for (record, reason) in &left_out {
            *filtered.entry(reason.code()).or_default() += 1;
            if filtered_sample.len() < 5 {
                filtered_sample.push(format!("{} ({reason})", record.user_principal_name));
            }
        }
        let out_ids: Vec<(ObjectId, domain::filter::SkipReason)> = left_out
            .iter()
            .map(|(r, reason)| (r.object_id, reason.clone()))
            .collect();
        let mut plan = domain::plan::plan_contacts(
            &kept,
            &removed,
            &stored,
            &run.field_mapping,
            store::now_millis(),
        );
        // What takes contacts away (archives, users deleted in Microsoft 365, users leaving the
        // filters) is applied after the last page, with the link, where a drop too large to be
        // true can be held whole. A user this page lists in scope was replayed in an earlier
        // state by an earlier page (Graph may repeat an object within a round): its latest
        // entry holds, so what those pages would have taken away is dropped.
        let present: HashSet<i64> = plan
            .actions
            .iter()
            .filter_map(|action| match action {
                domain::plan::ContactAction::Update { contact_id, .. }
                | domain::plan::ContactAction::Unchanged { contact_id } => Some(*contact_id),
                _ => None,
            })
            .collect();
        deferred_archives.retain(|action| match action {
            domain::plan::ContactAction::Archive { contact_id, .. }
            | domain::plan::ContactAction::MarkDeleted { contact_id, .. } => {
                !present.contains(contact_id)
            }
            _ => true,
        });
        deferred_archives.extend(domain::plan::plan_out_of_scope(&out_ids, &stored).actions);
        let (away, stay): (Vec<_>, Vec<_>) =
            plan.actions.into_iter().partition(domain::plan::takes_away);
        plan.actions = stay;
        deferred_archives.extend(away);
        // The page is written while the next one is fetched and read: the store works on its
        // own thread, so downloading, parsing and writing overlap.
        let tenant_id = run.tenant_id;
        let next = async { prepared(pager.next_page().await, tenant_id) };
        tokio::pin!(next);
        let mut ready = None;
        let applied = {
            let write = async {
                let applied = batch.apply(&plan, Some(run.run_id), None).await?;
                if !run.user_filter.is_empty() {
                    let kept_ids: Vec<ObjectId> = kept.iter().map(|r| r.object_id).collect();
                    batch.record_filtered(&left_out, &kept_ids).await?;
                }
                Ok::<_, crate::SyncError>(applied)
            };
            tokio::pin!(write);
            loop {
                tokio::select! {
                    biased;
                    applied = &mut write => break applied?,
                    page = &mut next, if ready.is_none() => ready = Some(page),
                }
            }
        };
        if pages + 1 >= PAGES_PER_TRANSACTION || opened.elapsed() >= LONGEST_TRANSACTION {
            stored_since.created(batch.commit().await?);
        } else {
            open = Some(OpenBatch {
                batch,
                opened,
                pages: pages + 1,
            });
        }
        fetched = match ready {
            Some(page) => page,
            // A transaction left open holds the write lock every other step of the tenant
            // (and on SQLite every tenant) waits for: it never waits on the network.
            None => {
                settle(&mut open, &mut stored_since).await?;
                next.await
            }
        };
        counts += applied.counts;
        held += applied.held;
        run.progress.items(
            Dataset::Users,
            counts.created + counts.updated + counts.unchanged,
        );
    }
    settle(&mut open, &mut stored_since).await?;
    {
        let checkpoint = checkpoint_of(&pager, USERS_RESOURCE);
        let mut batch = run
            .store
            .contact_batch(organization_id, &run.tenant_id)
            .await?
            .logging(Some(step.clone()));
        // A round of changes needs only the number of active contacts, for the guard below;
        // a whole listing, those it lacked.
        let active_count = batch.active_linked_count().await?;
        let active = if incremental {
            Vec::new()
        } else {
            batch
                .active_linked_where(Some(&stored_since), |c| !seen.contains(&c.object_id))
                .await?
        };
        // Only a whole listing proves a user gone by leaving them out (invariant 3).
        let mut plan = if incremental {
            domain::plan::ContactPlan::default()
        } else {
            domain::plan::plan_not_listed(&active, &seen)
        };
        plan.actions.append(&mut deferred_archives);
        let losing = plan
            .actions
            .iter()
            .filter(|a| domain::plan::takes_away(a))
            .count();
        if !run.confirm_archive
            && let Some(why) = run.connection.drop_guard.suspicious(losing, active_count)
        {
            // Nothing taken away and no link saved: the next sync weighs the same again.
            drop(batch);
            let count = |wanted: fn(&domain::plan::ContactAction) -> bool| {
                plan.actions.iter().filter(|a| wanted(a)).count()
            };
            let not_listed = count(|a| {
                matches!(
                    a,
                    domain::plan::ContactAction::Archive {
                        reason: domain::plan::ArchiveReason::NotListed,
                        ..
                    }
                )
            });
            let filtered = count(|a| {
                matches!(
                    a,
                    domain::plan::ContactAction::Archive {
                        reason: domain::plan::ArchiveReason::OutOfScope(_),
                        ..
                    }
                )
            });
            let deleted = losing - not_listed - filtered;
            let message = format!(
                "held: {why} ({not_listed} no longer listed, {deleted} deleted in Microsoft 365, {filtered} left out by the connection's filters), which looks like a mistake; nothing was taken away"
            );
            let name = &run.connection.name;
            return Ok(Round::Done(Outcome::failed(
                counts,
                &message,
                Some(format!(
                    "Check the tenant in the Microsoft 365 admin center and the filters with `m365sync connection filter {name}`; if the drop is real, run `m365sync sync {name} --accept-drop` (the share allowed is set with `m365sync connection guard {name} --max-drop PERCENT`)"
                )),
            )));
        }
        let applied = batch
            .apply(&plan, Some(run.run_id), checkpoint.as_ref())
            .await?;
        counts.archived += applied.counts.archived;
        counts.deleted += applied.counts.deleted;
        batch.commit().await?;
    }
    // Users deleted in Microsoft 365 more than 30 days ago were not restored: archived now.
    let mut batch = run
        .store
        .contact_batch(organization_id, &run.tenant_id)
        .await?
        .logging(Some(step));
    let marked = batch.marked_deleted().await?;
    let expired = domain::plan::plan_expired_deletions(&marked, store::now_millis());
    if !expired.actions.is_empty() {
        counts.archived += batch
            .apply(&expired, Some(run.run_id), None)
            .await?
            .counts
            .archived;
    }
    batch.commit().await?;
    if !filtered.is_empty() {
        let total: u64 = filtered.values().sum();
        let by_rule: Vec<String> = filtered
            .iter()
            .map(|(rule, n)| format!("{n} {rule}"))
            .collect();
        run.warnings.push(RunWarning {
            code: "users_filtered".into(),
            message: format!(
                "{total} users were left out by the connection's filters ({}), e.g. {}; `m365sync export filtered-users` lists them with the reason",
                by_rule.join(", "),
                filtered_sample.join(", ")
            ),
        });
    }
    if held > 0 {
        run.warnings.push(RunWarning {
            code: "users_held_for_review".into(),
            message: format!(
                "{held} users could each be more than one existing contact and were not written; decide with `m365sync review`"
            ),
        });
    }
    if !skipped.is_empty() {
        let sample: Vec<&str> = skipped.iter().take(5).map(String::as_str).collect();
        warn!(count = skipped.len(), "users skipped");
        run.warnings.push(RunWarning {
            code: "users_skipped".into(),
            message: format!(
                "{} users could not be stored as they are (no usable user principal name, or a field no store keeps) and were left out: {}",
                skipped.len(),
                sample.join(", ")
            ),
        });
    }
    let message = if incremental {
        "changes since the last sync (delta)"
    } else {
        "full listing"
    };
    Ok(Round::Done(Outcome::done(
        counts,
        Some(message.to_string()),
    )))
}

/// A page of users as read: what can be planned, and what is logged or counted aside.
struct Page {
    records: Vec<domain::ContactRecord>,
    removed: Vec<domain::plan::Removal>,
    not_stored: Vec<RunRecord>,
    /// Users the page lists (stored or not), so that a whole listing does not archive them.
    known: Vec<ObjectId>,
    /// Users left out, as the run's warning names them.
    skipped: Vec<String>,
}

/// Why a page could not be planned.
enum PageError {
    Graph(GraphError),
    /// Graph sent something that is not a user as the store knows one.
    Unreadable(NormaliseError),
}

/// A fetched page, normalised: its users as contact records, its removals, and the users that
/// cannot be stored as they are.
fn prepared(
    fetched: graph::Result<Option<Vec<User>>>,
    tenant_id: domain::TenantId,
) -> std::result::Result<Option<Page>, PageError> {
    let Some(users) = fetched.map_err(PageError::Graph)? else {
        return Ok(None);
    };
    let mut page = Page {
        records: Vec::with_capacity(users.len()),
        removed: Vec::new(),
        not_stored: Vec::new(),
        known: Vec::with_capacity(users.len()),
        skipped: Vec::new(),
    };
    for user in &users {
        if let Some(removal) = &user.removed {
            let reason = removal.get("reason").and_then(|r| r.as_str());
            match ObjectId::parse(&user.id) {
                Ok(id) => page
                    .removed
                    .push(domain::plan::Removal::from_reason(id, reason)),
                Err(_) => {
                    let reason = "removed, but its id is not a GUID";
                    page.not_stored.push(failed_user(user, reason));
                    page.skipped.push(format!("{} ({reason})", user.id))
                }
            }
            continue;
        }
        match normalise::contact_from_user(tenant_id, user) {
            Ok(record) => {
                page.known.push(record.object_id);
                page.records.push(record);
            }
            Err(NormaliseError::UserNotStorable { id, reason }) => {
                // Known by id, so it is not archived; but it cannot be stored as is.
                if let Ok(object_id) = ObjectId::parse(&id) {
                    page.known.push(object_id);
                }
                page.not_stored.push(failed_user(user, &reason));
                page.skipped.push(format!("{id} ({reason})"));
            }
            Err(e) => return Err(PageError::Unreadable(e)),
        }
    }
    Ok(Some(page))
}

/// A user Graph sent that no store could keep as it is, as the run logs it.
fn failed_user(user: &User, reason: &str) -> RunRecord {
    RunRecord {
        outcome: RecordOutcome::Failed,
        key: user.id.clone(),
        label: user
            .user_principal_name
            .clone()
            .or_else(|| user.display_name.clone()),
        detail: serde_json::json!({"code": "not_storable", "why": reason}),
        contact_id: None,
    }
}

/// A page Graph would not give, as the run logs it: Graph's error code, status and request-id
/// where it sent them.
fn graph_failure(page: String, error: &GraphError) -> RunRecord {
    let mut detail = serde_json::json!({
        "code": error.code(),
        "why": error.to_string(),
        "fix": error.fix(),
    });
    if let GraphError::Api {
        status,
        code,
        request_id,
        ..
    } = error
    {
        detail["status"] = serde_json::json!(status);
        detail["graph_code"] = serde_json::json!(code);
        detail["request_id"] = serde_json::json!(request_id);
    }
    RunRecord {
        outcome: RecordOutcome::Failed,
        key: page,
        label: None,
        detail,
        contact_id: None,
    }
}
