//! Groups (a typed table) and their memberships (the `group_members` join table): writing a
//! `domain::groups` plan in one transaction with the round's delta link, and reading groups with
//! their members named from the contacts as they are now, so that a renamed user is never shown
//! under an old name by a group that did not change.

use std::collections::{BTreeMap, HashMap, HashSet};

use domain::TenantId;
use domain::groups::{GroupPlan, GroupRecord, Members};
use domain::rows::StoredRow;
use serde::Serialize;

use crate::backend::{Columns, fetch_in, on_pool, on_tx};
use crate::error::{Context, Executed, Result};
use crate::typed::{Cell, Cells, Kind, RowBatch, TypedTable, select_list, stored_row};
use crate::{Checkpoint, StepCounts, Store, now_millis};

impl TypedTable for GroupRecord {
    const TABLE: &'static str = "groups";
    const COLUMNS: &'static [(&'static str, Kind)] = &[
        ("display_name", Kind::Text),
        ("description", Kind::Text),
        ("mail", Kind::Text),
        ("mail_enabled", Kind::Flag),
        ("security_enabled", Kind::Flag),
        ("group_types", Kind::Text),
        ("visibility", Kind::Text),
        ("created", Kind::Text),
    ];

    fn cells(&self) -> Vec<Cell> {
        vec![
            Cell::Text(self.display_name.clone()),
            Cell::Text(self.description.clone()),
            Cell::Text(self.mail.clone()),
            Cell::Flag(self.mail_enabled),
            Cell::Flag(self.security_enabled),
            Cell::Text(Some(self.group_types.join(","))),
            Cell::Text(self.visibility.clone()),
            Cell::Text(self.created.clone()),
        ]
    }

    fn from_cells(key: String, cells: &mut Cells) -> Result<Self> {
        Ok(Self {
            object_id: key,
            display_name: cells.text()?,
            description: cells.text()?,
            mail: cells.text()?,
            mail_enabled: cells.flag()?,
            security_enabled: cells.flag()?,
            group_types: cells
                .text()?
                .unwrap_or_default()
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
            visibility: cells.text()?,
            created: cells.text()?,
        })
    }
}

/// A group as listed, with how many members it has.
#[derive(Debug, Clone)]
pub struct GroupRow {
    pub organization: String,
    pub tenant_id: String,
    pub group: GroupRecord,
    pub archived: bool,
    pub member_count: u64,
}

/// One membership as listed: the group, and the member named from the contacts when it is one.
#[derive(Debug, Clone, Serialize)]
pub struct GroupMemberRow {
    pub organization: String,
    pub tenant_id: String,
    pub group_id: String,
    pub group_name: String,
    pub member_id: String,
    pub member_type: Option<String>,
    pub display_name: Option<String>,
    pub user_principal_name: Option<String>,
    pub group_archived: bool,
}

/// One groups round being written: the group rows and their memberships in one transaction,
/// holding the tenant's lock.
pub struct GroupBatch {
    rows: RowBatch<GroupRecord>,
}

/// Memberships written per statement.
const CHUNK: usize = 200;

impl GroupBatch {
    /// The stored rows of these groups, archived ones included.
    pub async fn stored<'k>(
        &mut self,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> Result<HashMap<String, StoredRow<GroupRecord>>> {
        self.rows.stored(keys).await
    }

    /// The tenant's active groups (what a whole round may archive).
    pub async fn active_keys(&mut self) -> Result<HashSet<String>> {
        self.rows.active_keys().await
    }

    /// The stored members of these groups.
    pub async fn members<'k>(
        &mut self,
        groups: impl IntoIterator<Item = &'k str>,
    ) -> Result<HashMap<String, Members>> {
        let groups: Vec<&str> = groups.into_iter().collect();
        let tenant = self.rows.tenant().to_string();
        let mut members: HashMap<String, Members> = HashMap::new();
        for chunk in groups.chunks(500) {
            let rows = on_tx!(self.rows.tx(), |c| {
                let rows = fetch_in!(
                    c,
                    "SELECT group_key, member_id, member_type FROM group_members",
                    "group_key",
                    tenant,
                    chunk
                )
                .doing("reading group members")?;
                rows.iter()
                    .map(|r| {
                        Ok((
                            r.text_req("group_key")?,
                            r.text_req("member_id")?,
                            r.text("member_type")?,
                        ))
                    })
                    .collect::<Result<Vec<_>>>()
            })?;
            for (group, member, kind) in rows {
                members.entry(group).or_default().insert(member, kind);
            }
        }
        Ok(members)
    }

    /// Writes the plan's groups, memberships and the round's checkpoint in this transaction.
    pub async fn apply(
        &mut self,
        plan: &GroupPlan,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<StepCounts> {
        // The group rows first: a new group's memberships refer to its row.
        let counts = self.rows.apply(&plan.groups, checkpoint).await?;
        let tenant = self.rows.tenant().to_string();
        let now = now_millis();
        for chunk in plan.join.chunks(CHUNK) {
            let tenant = tenant.clone();
            on_tx!(self.rows.tx(), |c| {
                let mut query = sqlx::QueryBuilder::new(
                    "INSERT INTO group_members (tenant_id, group_key, member_id, member_type, created_at) ",
                );
                query.push_values(chunk, |mut row, m| {
                    row.push_bind(tenant.clone())
                        .push_bind(m.group_id.clone())
                        .push_bind(m.member_id.clone())
                        .push_bind(m.member_type.clone())
                        .push_bind(now);
                });
                query.push(
                    " ON CONFLICT (tenant_id, group_key, member_id) DO UPDATE SET member_type = excluded.member_type",
                );
                query
                    .build()
                    .persistent(false)
                    .execute(c)
                    .await
                    .done("adding group members")
            })?;
        }
        let mut leaving: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (group, member) in &plan.leave {
            leaving.entry(group).or_default().push(member);
        }
        for (group, members) in leaving {
            for chunk in members.chunks(CHUNK) {
                let tenant = tenant.clone();
                on_tx!(self.rows.tx(), |c| {
                    let mut query =
                        sqlx::QueryBuilder::new("DELETE FROM group_members WHERE tenant_id = ");
                    query
                        .push_bind(tenant)
                        .push(" AND group_key = ")
                        .push_bind(group.to_string())
                        .push(" AND member_id IN (");
                    let mut list = query.separated(", ");
                    for member in chunk {
                        list.push_bind(member.to_string());
                    }
                    query.push(")");
                    query
                        .build()
                        .persistent(false)
                        .execute(c)
                        .await
                        .done("removing group members")
                })?;
            }
        }
        Ok(counts)
    }

    pub async fn commit(self) -> Result<()> {
        self.rows.commit().await
    }
}

impl Store {
    /// Opens a groups round for one tenant, under the tenant's lock.
    pub async fn group_batch(
        &self,
        organization_id: i64,
        tenant_id: &TenantId,
    ) -> Result<GroupBatch> {
        Ok(GroupBatch {
            rows: self.row_batch(organization_id, tenant_id).await?,
        })
    }

    /// Groups, of one tenant when given, by organisation and name, with their member counts.
    pub async fn groups(
        &self,
        tenant_id: Option<&TenantId>,
        include_archived: bool,
    ) -> Result<Vec<GroupRow>> {
        let listed = self
            .typed_rows::<GroupRecord>(tenant_id, include_archived)
            .await?;
        let tenant = tenant_id.map(ToString::to_string);
        let counts: HashMap<(String, String), i64> = on_pool!(&self.pool, |p| {
            let rows = sqlx::query(
                "SELECT tenant_id, group_key, COUNT(*) AS members FROM group_members \
                 WHERE ($1 IS NULL OR tenant_id = $1) GROUP BY tenant_id, group_key",
            )
            .bind(tenant.as_deref())
            .fetch_all(p)
            .await
            .doing("counting group members")?;
            rows.iter()
                .map(|r| {
                    Ok((
                        (r.text_req("tenant_id")?, r.text_req("group_key")?),
                        r.int_req("members")?,
                    ))
                })
                .collect::<Result<HashMap<_, _>>>()
        })?;
        let mut groups: Vec<GroupRow> = listed
            .into_iter()
            .map(|listed| {
                let member_count = counts
                    .get(&(
                        listed.tenant_id.clone(),
                        listed.row.record.object_id.clone(),
                    ))
                    .copied()
                    .unwrap_or(0) as u64;
                GroupRow {
                    organization: listed.organization,
                    tenant_id: listed.tenant_id,
                    group: listed.row.record,
                    archived: listed.row.archived,
                    member_count,
                }
            })
            .collect();
        groups.sort_by(|a, b| {
            (&a.organization, &a.tenant_id, a.group.name().to_lowercase()).cmp(&(
                &b.organization,
                &b.tenant_id,
                b.group.name().to_lowercase(),
            ))
        });
        Ok(groups)
    }

    /// Every membership of the groups (of one tenant when given), each member named from its
    /// contact when it is one; by organisation, group and member.
    pub async fn group_members(
        &self,
        tenant_id: Option<&TenantId>,
        include_archived: bool,
    ) -> Result<Vec<GroupMemberRow>> {
        let tenant = tenant_id.map(ToString::to_string);
        on_pool!(&self.pool, |p| {
            let rows = sqlx::query(
                "SELECT o.name AS organization, m.tenant_id, m.group_key, g.display_name AS group_name, g.archived, \
                 m.member_id, m.member_type, c.display_name, c.user_principal_name \
                 FROM group_members m \
                 JOIN groups g ON g.tenant_id = m.tenant_id AND g.item_key = m.group_key \
                 JOIN organizations o ON o.id = g.organization_id \
                 LEFT JOIN contacts c ON c.tenant_id = m.tenant_id AND c.object_id = m.member_id \
                 WHERE ($1 IS NULL OR m.tenant_id = $1) AND ($2 OR g.archived = FALSE) \
                 ORDER BY o.name, m.tenant_id, g.display_name, m.group_key, c.display_name, m.member_id",
            )
            .bind(tenant.as_deref())
            .bind(include_archived)
            .fetch_all(p)
            .await
            .doing("listing group members")?;
            rows.iter()
                .map(|r| {
                    let group_id = r.text_req("group_key")?;
                    Ok(GroupMemberRow {
                        organization: r.text_req("organization")?,
                        tenant_id: r.text_req("tenant_id")?,
                        group_name: r.text("group_name")?.unwrap_or_else(|| group_id.clone()),
                        group_id,
                        member_id: r.text_req("member_id")?,
                        member_type: r.text("member_type")?,
                        display_name: r.text("display_name")?,
                        user_principal_name: r.text("user_principal_name")?,
                        group_archived: r.flag("archived")?.unwrap_or(false),
                    })
                })
                .collect()
        })
    }

    /// The members (object ids, lower case) of the tenant's active groups named by object id or
    /// display name, case-insensitively: what the filter `members of chosen groups only` keeps.
    pub async fn members_of_groups(
        &self,
        tenant_id: &TenantId,
        chosen: &[String],
    ) -> Result<HashSet<String>> {
        let keys: Vec<String> = self
            .typed_rows::<GroupRecord>(Some(tenant_id), false)
            .await?
            .into_iter()
            .map(|listed| listed.row.record)
            .filter(|group| {
                chosen.iter().any(|c| {
                    c.eq_ignore_ascii_case(&group.object_id)
                        || group
                            .display_name
                            .as_deref()
                            .is_some_and(|n| c.eq_ignore_ascii_case(n))
                })
            })
            .map(|group| group.object_id)
            .collect();
        let tenant = tenant_id.to_string();
        on_pool!(&self.pool, |p| {
            let rows = fetch_in!(
                p,
                "SELECT member_id FROM group_members",
                "group_key",
                tenant,
                &keys
            )
            .doing("reading the members of chosen groups")?;
            rows.iter()
                .map(|r| Ok(r.text_req("member_id")?.to_lowercase()))
                .collect()
        })
    }

    /// The active groups a member (a user, group, device, …) belongs to, by name.
    pub async fn groups_of_member(
        &self,
        tenant_id: &TenantId,
        member_id: &str,
    ) -> Result<Vec<GroupRecord>> {
        let columns: String = select_list::<GroupRecord>()
            .split(", ")
            .map(|c| format!("g.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns} FROM group_members m \
             JOIN groups g ON g.tenant_id = m.tenant_id AND g.item_key = m.group_key \
             WHERE m.tenant_id = $1 AND m.member_id = $2 AND g.archived = FALSE"
        );
        let tenant = tenant_id.to_string();
        let mut groups: Vec<GroupRecord> = on_pool!(&self.pool, |p| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(&tenant)
                .bind(member_id.to_lowercase())
                .fetch_all(p)
                .await
                .doing("reading a member's groups")?;
            rows.iter()
                .map(|r| Ok(stored_row::<GroupRecord>(r)?.1.record))
                .collect::<Result<Vec<_>>>()
        })?;
        groups.sort_by_key(|g| g.name().to_lowercase());
        Ok(groups)
    }
}

impl GroupRow {
    /// The group's key within its tenant.
    pub fn key(&self) -> &str {
        &self.group.object_id
    }
}
