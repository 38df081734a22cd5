-- 0001_platform_schema.sql — the ClawKeeper platform schema, version 1.
--
-- Applied by PlatformMigrator in ONE transaction, under the migrator's advisory lock.
-- Objects are created in the first schema of the search_path (normally `public`).
-- Table and column names listed in ARCHITECTURE.md §3 are contracts: keep them.
--
-- Keep this file free of BEGIN ATOMIC bodies: Npgsql splits a command on top-level `;`
-- (it understands quotes, dollar quotes and comments, not BEGIN ATOMIC ... END).

------------------------------------------------------------------------------------------
-- Application role (cluster-wide).
-- Roles are shared by every database of the cluster, and the test suites migrate many
-- databases of one cluster in parallel, so creation must tolerate a concurrent creator:
-- the loser of the race blocks on the winner's catalog row, then sees unique_violation
-- (or duplicate_object when the winner had already committed).
------------------------------------------------------------------------------------------
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'clawkeeper_app') THEN
        BEGIN
            CREATE ROLE clawkeeper_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            RAISE NOTICE 'role clawkeeper_app was created concurrently; using it';
        END;
    END IF;
END
$$;

-- Let the migrating (privileged) role `SET ROLE clawkeeper_app` for isolation probes.
-- A superuser does not need it; a non-superuser without CREATEROLE cannot do it: tolerate.
DO $$
BEGIN
    IF NOT pg_catalog.pg_has_role(current_user, 'clawkeeper_app', 'MEMBER') THEN
        EXECUTE format('GRANT clawkeeper_app TO %I', current_user);
    END IF;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'could not grant clawkeeper_app to %: % (SET ROLE probes need a superuser then)',
        current_user, SQLERRM;
END
$$;

------------------------------------------------------------------------------------------
-- Tenants
------------------------------------------------------------------------------------------
CREATE TABLE tenants (
    id          text        PRIMARY KEY CHECK (id <> ''),
    name        text        NOT NULL,
    status      text        NOT NULL DEFAULT 'active'
                            CHECK (status IN ('active', 'suspended', 'closed')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The reserved tenant that owns platform-level rows (the heartbeat's agent_runs, ...).
-- Inserted before RLS is switched on below.
INSERT INTO tenants (id, name, status)
VALUES ('system', 'ClawKeeper system', 'active')
ON CONFLICT (id) DO NOTHING;

------------------------------------------------------------------------------------------
-- Task queue
------------------------------------------------------------------------------------------
-- Orchestrators: cfo, accounts-payable-lead, accounts-receivable-lead, reconciliation-lead,
-- compliance-lead, reporting-lead, integration-lead, data-etl-lead, support-lead.
CREATE TABLE tasks (
    id            text        PRIMARY KEY,
    tenant_id     text        NOT NULL REFERENCES tenants (id),
    orchestrator  text        NOT NULL,
    kind          text        NOT NULL DEFAULT 'generic',
    payload       jsonb       NOT NULL DEFAULT '{}',
    status        text        NOT NULL DEFAULT 'pending'
                              CHECK (status IN ('pending', 'assigned', 'running',
                                                'completed', 'failed', 'cancelled')),
    priority      int         NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    assigned_at   timestamptz,
    started_at    timestamptz,
    -- set when the task finished, whatever the outcome (completed, failed, cancelled)
    completed_at  timestamptz,
    attempts      int         NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error    text,
    claimed_by    text,
    CONSTRAINT tasks_finished_has_completed_at
        CHECK (status NOT IN ('completed', 'failed', 'cancelled') OR completed_at IS NOT NULL)
);
CREATE INDEX tasks_status_idx              ON tasks (status);
CREATE INDEX tasks_status_completed_at_idx ON tasks (status, completed_at);
CREATE INDEX tasks_orchestrator_status_idx ON tasks (orchestrator, status);
CREATE INDEX tasks_tenant_id_idx           ON tasks (tenant_id);

CREATE TABLE agent_runs (
    id            text          PRIMARY KEY,
    tenant_id     text          NOT NULL REFERENCES tenants (id),
    agent_id      text          NOT NULL,
    -- soft reference, deliberately no foreign key: the heartbeat writes 'heartbeat-<timestamp>'
    task_id       text,
    status        text          NOT NULL,
    started_at    timestamptz   NOT NULL,
    completed_at  timestamptz,
    duration_ms   bigint        CHECK (duration_ms >= 0),
    tokens_used   bigint        NOT NULL DEFAULT 0 CHECK (tokens_used >= 0),
    cost          numeric(14,6) NOT NULL DEFAULT 0 CHECK (cost >= 0),
    output        jsonb
);
CREATE INDEX agent_runs_agent_started_idx  ON agent_runs (agent_id, started_at DESC);
CREATE INDEX agent_runs_tenant_started_idx ON agent_runs (tenant_id, started_at);
CREATE INDEX agent_runs_task_id_idx        ON agent_runs (task_id);

------------------------------------------------------------------------------------------
-- Audit log: an append-only, per-tenant, gapless hash chain assigned by the database.
------------------------------------------------------------------------------------------

-- One row per tenant: the end of its chain. The audit trigger locks it (FOR UPDATE) to
-- serialise that tenant's writers, so seq is gapless 1..n even with concurrent writers,
-- and a rolled-back insert rolls the head back with it (a sequence would leave a gap).
CREATE TABLE audit_chain_heads (
    tenant_id   text        PRIMARY KEY REFERENCES tenants (id),
    last_seq    bigint      NOT NULL CHECK (last_seq >= 0),
    last_hash   text        NOT NULL CHECK (last_hash ~ '^[0-9a-f]{64}$'),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_log (
    tenant_id    text        NOT NULL REFERENCES tenants (id),
    seq          bigint      NOT NULL CHECK (seq >= 1),
    occurred_at  timestamptz NOT NULL DEFAULT now() CHECK (isfinite(occurred_at)),
    actor        text        NOT NULL,
    action       text        NOT NULL,
    entity_type  text,
    entity_id    text,
    payload      jsonb       NOT NULL DEFAULT '{}',
    prev_hash    text        NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash         text        NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_log_occurred_at_idx ON audit_log (occurred_at);

-- Canonical encoding of one audit entry, version 1. The hash is
--   lower-hex( sha256( utf8( audit_entry_canonical(...) ) ) )
-- where the canonical text is 'clawkeeper-audit-v1' followed by the nine fields in
-- declaration order, each encoded as
--   NULL      ->  'N;'
--   value v   ->  'S' || <number of UTF-8 bytes of v, decimal> || ':' || v || ';'
-- (length-prefixed, so no separator inside a value can be confused with a boundary, and
-- NULL differs from ''), with these textual forms:
--   p_seq          decimal integer
--   p_occurred_at  microseconds since 1970-01-01T00:00:00Z, decimal integer (time-zone free)
--   p_payload      jsonb's canonical text output (keys sorted, whitespace normalised)
-- Genesis: the first entry of a tenant has prev_hash = 64 zeros.
CREATE FUNCTION audit_hash_field(p_value text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
           WHEN p_value IS NULL THEN 'N;'
           ELSE 'S' || octet_length(convert_to(p_value, 'UTF8'))::text || ':' || p_value || ';'
       END;

CREATE FUNCTION audit_entry_canonical(
    p_tenant_id   text,
    p_seq         bigint,
    p_occurred_at timestamptz,
    p_actor       text,
    p_action      text,
    p_entity_type text,
    p_entity_id   text,
    p_payload     jsonb,
    p_prev_hash   text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 'clawkeeper-audit-v1'
    || audit_hash_field(p_tenant_id)
    || audit_hash_field(p_seq::text)
    || audit_hash_field((extract(epoch FROM p_occurred_at) * 1000000)::bigint::text)
    || audit_hash_field(p_actor)
    || audit_hash_field(p_action)
    || audit_hash_field(p_entity_type)
    || audit_hash_field(p_entity_id)
    || audit_hash_field(p_payload::text)
    || audit_hash_field(p_prev_hash);

CREATE FUNCTION audit_entry_hash(
    p_tenant_id   text,
    p_seq         bigint,
    p_occurred_at timestamptz,
    p_actor       text,
    p_action      text,
    p_entity_type text,
    p_entity_id   text,
    p_payload     jsonb,
    p_prev_hash   text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN encode(sha256(convert_to(
           audit_entry_canonical(p_tenant_id, p_seq, p_occurred_at, p_actor, p_action,
                                 p_entity_type, p_entity_id, p_payload, p_prev_hash),
           'UTF8')), 'hex');

-- BEFORE INSERT: assigns seq, prev_hash and hash (whatever the caller passed is overwritten).
--
-- Why SECURITY DEFINER (runs as the schema owner, with a pinned search_path so a caller
-- cannot shadow the tables or functions it uses): the application role clawkeeper_app
-- gets NO write privilege on audit_chain_heads, so it cannot move a chain head (which
-- would forge a gap or a fork); only this trigger moves heads. Row-level security still
-- holds: audit_chain_heads is FORCE RLS with the tenant_isolation policy like every other
-- tenant table (so when the owner is not a superuser, the trigger sees only the head of
-- app.tenant_id's tenant), and the audit_log row itself is checked against the caller's
-- tenant_isolation policy after this trigger — a clawkeeper_app writer can only append
-- to the chain of the tenant in app.tenant_id, and a refused row rolls the head back.
CREATE FUNCTION audit_log_assign_chain()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_last_seq  bigint;
    v_last_hash text;
BEGIN
    IF NEW.tenant_id IS NULL THEN
        RAISE EXCEPTION 'audit_log: tenant_id must not be null' USING ERRCODE = 'not_null_violation';
    END IF;

    IF row_security_active('audit_chain_heads')
       AND NEW.tenant_id IS DISTINCT FROM current_setting('app.tenant_id', true) THEN
        RAISE EXCEPTION 'audit_log: cannot append to the audit chain of tenant % while app.tenant_id is %',
            NEW.tenant_id, coalesce(current_setting('app.tenant_id', true), '(unset)')
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'SELECT set_config(''app.tenant_id'', <tenant>, true) in the writing transaction.';
    END IF;

    SELECT h.last_seq, h.last_hash INTO v_last_seq, v_last_hash
    FROM audit_chain_heads h
    WHERE h.tenant_id = NEW.tenant_id
    FOR UPDATE;

    IF NOT FOUND THEN
        -- First entry of this tenant. A concurrent first writer may be inserting the head
        -- too: ON CONFLICT waits for it, then the locking read below sees its committed row.
        INSERT INTO audit_chain_heads (tenant_id, last_seq, last_hash)
        VALUES (NEW.tenant_id, 0, repeat('0', 64))
        ON CONFLICT (tenant_id) DO NOTHING;

        SELECT h.last_seq, h.last_hash INTO STRICT v_last_seq, v_last_hash
        FROM audit_chain_heads h
        WHERE h.tenant_id = NEW.tenant_id
        FOR UPDATE;
    END IF;

    NEW.seq         := v_last_seq + 1;
    NEW.prev_hash   := v_last_hash;
    NEW.occurred_at := coalesce(NEW.occurred_at, now());
    NEW.payload     := coalesce(NEW.payload, '{}'::jsonb);
    NEW.hash        := audit_entry_hash(NEW.tenant_id, NEW.seq, NEW.occurred_at, NEW.actor,
                                        NEW.action, NEW.entity_type, NEW.entity_id,
                                        NEW.payload, NEW.prev_hash);

    UPDATE audit_chain_heads
    SET last_seq = NEW.seq, last_hash = NEW.hash, updated_at = now()
    WHERE tenant_id = NEW.tenant_id;

    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION audit_log_assign_chain() FROM PUBLIC;

CREATE TRIGGER audit_log_assign_chain
    BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_assign_chain();

-- Append-only for ordinary writers. (Replication, and deliberate tampering in tests, run
-- with session_replication_role = replica, where ordinary triggers do not fire.)
CREATE FUNCTION audit_log_refuse_change()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'audit_log is append-only: TRUNCATE refused'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RAISE EXCEPTION 'audit_log is append-only: % of tenant %''s entry seq % refused',
        TG_OP, OLD.tenant_id, OLD.seq
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Correct a mistake by appending a new audit entry.';
END
$$;

CREATE TRIGGER audit_log_refuse_update_delete
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();

CREATE TRIGGER audit_log_refuse_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

------------------------------------------------------------------------------------------
-- Books: chart of accounts and double-entry journal (amounts in cents).
-- Lines reference their entry and account together with the tenant (composite foreign
-- keys), so a line can never join one tenant's entry to another tenant's account.
------------------------------------------------------------------------------------------
CREATE TABLE ledger_accounts (
    id          text        PRIMARY KEY,
    tenant_id   text        NOT NULL REFERENCES tenants (id),
    code        text        NOT NULL,
    name        text        NOT NULL,
    type        text        NOT NULL
                            CHECK (type IN ('asset', 'liability', 'equity', 'revenue', 'expense')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ledger_accounts_tenant_code_key UNIQUE (tenant_id, code),
    CONSTRAINT ledger_accounts_id_tenant_key   UNIQUE (id, tenant_id)
);

CREATE TABLE journal_entries (
    id           text        PRIMARY KEY,
    tenant_id    text        NOT NULL REFERENCES tenants (id),
    posted_at    timestamptz NOT NULL DEFAULT now(),
    description  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT journal_entries_id_tenant_key UNIQUE (id, tenant_id)
);
CREATE INDEX journal_entries_tenant_posted_idx ON journal_entries (tenant_id, posted_at);

CREATE TABLE journal_lines (
    id            bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    tenant_id     text   NOT NULL REFERENCES tenants (id),
    entry_id      text   NOT NULL,
    account_id    text   NOT NULL,
    debit_cents   bigint NOT NULL DEFAULT 0 CHECK (debit_cents >= 0),
    credit_cents  bigint NOT NULL DEFAULT 0 CHECK (credit_cents >= 0),
    CONSTRAINT journal_lines_one_side CHECK (debit_cents = 0 OR credit_cents = 0),
    CONSTRAINT journal_lines_entry_fkey
        FOREIGN KEY (entry_id, tenant_id) REFERENCES journal_entries (id, tenant_id),
    CONSTRAINT journal_lines_account_fkey
        FOREIGN KEY (account_id, tenant_id) REFERENCES ledger_accounts (id, tenant_id)
);
CREATE INDEX journal_lines_entry_idx   ON journal_lines (entry_id);
CREATE INDEX journal_lines_account_idx ON journal_lines (account_id);
CREATE INDEX journal_lines_tenant_idx  ON journal_lines (tenant_id);

------------------------------------------------------------------------------------------
-- Security
------------------------------------------------------------------------------------------
CREATE TABLE api_keys (
    id          text        PRIMARY KEY,
    tenant_id   text        NOT NULL REFERENCES tenants (id),
    name        text        NOT NULL,
    key_prefix  text        NOT NULL,
    -- lower-hex sha256 of the key; the key itself is never stored
    key_hash    text        NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id);

CREATE TABLE security_events (
    id           bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    tenant_id    text        REFERENCES tenants (id),
    -- unauthorized_access, tenant_isolation_failure, ...
    kind         text        NOT NULL,
    source       text,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    detail       jsonb
);
CREATE INDEX security_events_kind_occurred_idx ON security_events (kind, occurred_at);
CREATE INDEX security_events_occurred_idx      ON security_events (occurred_at);

------------------------------------------------------------------------------------------
-- Integrations
------------------------------------------------------------------------------------------
CREATE TABLE integration_connections (
    id               text        PRIMARY KEY,
    tenant_id        text        NOT NULL REFERENCES tenants (id),
    provider         text        NOT NULL CHECK (provider IN ('plaid', 'stripe', 'quickbooks', 'xero')),
    status           text        NOT NULL DEFAULT 'active'
                                 CHECK (status IN ('active', 'error', 'disconnected')),
    last_success_at  timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT integration_connections_id_tenant_key UNIQUE (id, tenant_id)
);
CREATE INDEX integration_connections_provider_idx ON integration_connections (provider, status);

CREATE TABLE integration_syncs (
    id             bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    connection_id  text        NOT NULL,
    tenant_id      text        NOT NULL REFERENCES tenants (id),
    provider       text        NOT NULL CHECK (provider IN ('plaid', 'stripe', 'quickbooks', 'xero')),
    started_at     timestamptz NOT NULL DEFAULT now(),
    completed_at   timestamptz,
    outcome        text        CHECK (outcome IN ('success', 'failed', 'partial')),
    detail         text,
    CONSTRAINT integration_syncs_connection_fkey
        FOREIGN KEY (connection_id, tenant_id) REFERENCES integration_connections (id, tenant_id)
);
CREATE INDEX integration_syncs_connection_started_idx ON integration_syncs (connection_id, started_at DESC);
CREATE INDEX integration_syncs_provider_started_idx   ON integration_syncs (provider, started_at DESC);

------------------------------------------------------------------------------------------
-- Write blocks (platform-wide, not tenant-scoped). While one is open (lifted_at IS NULL),
-- the financial tables refuse writes — those triggers arrive in a later migration.
------------------------------------------------------------------------------------------
CREATE TABLE write_blocks (
    id           bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    reason       text        NOT NULL,
    imposed_at   timestamptz NOT NULL DEFAULT now(),
    imposed_by   text,
    lifted_at    timestamptz,
    lifted_by    text,
    lift_reason  text
);
CREATE INDEX write_blocks_open_idx ON write_blocks (imposed_at) WHERE lifted_at IS NULL;

------------------------------------------------------------------------------------------
-- Row-level security: every tenant-scoped table is ENABLEd and FORCEd (so the owner is
-- subject to it too; only superusers and BYPASSRLS roles are not) with one policy,
-- tenant_isolation, keyed on the transaction/session setting app.tenant_id.
-- current_setting(..., true) is NULL when unset, and NULL matches no row.
------------------------------------------------------------------------------------------
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (id = current_setting('app.tenant_id', true))
    WITH CHECK (id = current_setting('app.tenant_id', true));

ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE tasks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tasks
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE agent_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE agent_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON agent_runs
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE audit_chain_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_chain_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_chain_heads
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_log
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE ledger_accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE ledger_accounts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ledger_accounts
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE journal_entries ENABLE ROW LEVEL SECURITY;
ALTER TABLE journal_entries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON journal_entries
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE journal_lines ENABLE ROW LEVEL SECURITY;
ALTER TABLE journal_lines FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON journal_lines
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_keys
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE security_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE security_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON security_events
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE integration_connections ENABLE ROW LEVEL SECURITY;
ALTER TABLE integration_connections FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON integration_connections
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE integration_syncs ENABLE ROW LEVEL SECURITY;
ALTER TABLE integration_syncs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON integration_syncs
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

------------------------------------------------------------------------------------------
-- Privileges of the application role: data access only, owns nothing.
-- audit_log is append-only (SELECT, INSERT); audit_chain_heads is read-only (only the
-- SECURITY DEFINER audit trigger moves heads); write_blocks is readable, not writable.
------------------------------------------------------------------------------------------
GRANT USAGE ON SCHEMA public TO clawkeeper_app;

GRANT SELECT, INSERT, UPDATE, DELETE ON
    tenants, tasks, agent_runs, ledger_accounts, journal_entries, journal_lines,
    api_keys, security_events, integration_connections, integration_syncs
TO clawkeeper_app;

GRANT SELECT, INSERT ON audit_log TO clawkeeper_app;
GRANT SELECT ON audit_chain_heads TO clawkeeper_app;
GRANT SELECT ON write_blocks TO clawkeeper_app;

GRANT USAGE ON SEQUENCE
    journal_lines_id_seq, security_events_id_seq, integration_syncs_id_seq
TO clawkeeper_app;
