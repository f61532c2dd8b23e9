-- Microsoft 365 tenants as seen through connections, and where each stands with its organisation:
-- matched (to organization_id), suggested or unmatched (awaiting a person's decision; suggestions
-- holds what the rules proposed, best first, with score and rule), or ignored. Several tenants may
-- belong to one organisation. `automatic` is false once a person has unlinked a tenant: the
-- rules then only suggest. A tenant named up front by `connection add --organization` has not
-- been seen yet (no display name, no first_seen_at).

CREATE TABLE tenants (
    id INTEGER PRIMARY KEY,
    tenant_id TEXT NOT NULL UNIQUE,
    connection_id BIGINT REFERENCES connections (id) ON DELETE SET NULL,
    display_name TEXT,
    verified_domains TEXT NOT NULL DEFAULT '[]',
    default_domain TEXT,
    state TEXT NOT NULL CHECK (state IN ('matched', 'suggested', 'unmatched', 'ignored')),
    organization_id BIGINT REFERENCES organizations (id),
    suggestions TEXT NOT NULL DEFAULT '[]',
    automatic BOOLEAN NOT NULL DEFAULT TRUE,
    match_rule TEXT,
    first_seen_at BIGINT,
    last_seen_at BIGINT,
    updated_at BIGINT NOT NULL,
    CHECK ((state = 'matched') = (organization_id IS NOT NULL))
);
CREATE INDEX tenants_by_organization ON tenants (organization_id);
CREATE INDEX tenants_by_state ON tenants (state, display_name);

-- Stores made before this table keep their matches: each organisation's tenant is matched to it.
INSERT INTO tenants (tenant_id, connection_id, display_name, verified_domains, default_domain, state, organization_id, match_rule, first_seen_at, last_seen_at, updated_at)
SELECT o.tenant_id,
       (SELECT MIN(c.id) FROM connections c WHERE LOWER(c.tenant_id) = LOWER(o.tenant_id)),
       COALESCE(o.tenant_name, o.name),
       o.verified_domains,
       o.default_domain,
       'matched',
       o.id,
       'tenant_id',
       o.created_at,
       o.updated_at,
       o.updated_at
FROM organizations o
WHERE o.tenant_id IS NOT NULL;

-- Whether a sync may create an organisation for a tenant that fits none (on unless the
-- connection was added with --no-create-organization).
ALTER TABLE connections ADD COLUMN create_organization BOOLEAN NOT NULL DEFAULT TRUE;
