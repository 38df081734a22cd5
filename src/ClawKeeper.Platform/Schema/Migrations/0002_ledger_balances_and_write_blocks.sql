------------------------------------------------------------------------------------------
-- 0002: per-tenant running ledger totals (so a heartbeat checks the books without reading
-- every line) and write blocks enforced by the database.
------------------------------------------------------------------------------------------

------------------------------------------------------------------------------------------
-- Running totals per tenant and account type, maintained by statement-level triggers on
-- journal_lines. A steady-state heartbeat reads this small table (assets = liabilities +
-- equity at once); the slow full verification recounts journal_lines and compares, which
-- catches a line changed behind the triggers' back (e.g. with triggers disabled).
------------------------------------------------------------------------------------------
CREATE TABLE ledger_balances (
    tenant_id     text        NOT NULL REFERENCES tenants (id),
    account_type  text        NOT NULL CHECK (account_type IN ('asset', 'liability', 'equity', 'revenue', 'expense')),
    debit_cents   bigint      NOT NULL DEFAULT 0,
    credit_cents  bigint      NOT NULL DEFAULT 0,
    line_count    bigint      NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, account_type)
);
ALTER TABLE ledger_balances ENABLE ROW LEVEL SECURITY;
ALTER TABLE ledger_balances FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ledger_balances
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT ON ledger_balances TO clawkeeper_app;

-- Adds signed deltas (sign = +1 for new rows, -1 for old rows) grouped by tenant and type.
-- SECURITY DEFINER: the application role can read but not write the totals; only these
-- triggers move them.
CREATE FUNCTION ledger_balances_apply(p_delta jsonb)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    INSERT INTO ledger_balances AS b (tenant_id, account_type, debit_cents, credit_cents, line_count, updated_at)
    SELECT d.tenant_id, d.account_type, d.debit_cents, d.credit_cents, d.line_count, now()
    FROM jsonb_to_recordset(p_delta) AS d(tenant_id text, account_type text, debit_cents bigint, credit_cents bigint, line_count bigint)
    ON CONFLICT (tenant_id, account_type) DO UPDATE
        SET debit_cents  = b.debit_cents  + excluded.debit_cents,
            credit_cents = b.credit_cents + excluded.credit_cents,
            line_count   = b.line_count   + excluded.line_count,
            updated_at   = now();
END
$$;
REVOKE ALL ON FUNCTION ledger_balances_apply(jsonb) FROM PUBLIC;

CREATE FUNCTION ledger_balances_after_insert()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    PERFORM ledger_balances_apply(coalesce((
        SELECT jsonb_agg(t) FROM (
            SELECT n.tenant_id, a.type AS account_type, sum(n.debit_cents) AS debit_cents,
                   sum(n.credit_cents) AS credit_cents, count(*) AS line_count
            FROM new_rows n JOIN ledger_accounts a ON a.id = n.account_id AND a.tenant_id = n.tenant_id
            GROUP BY n.tenant_id, a.type) t), '[]'::jsonb));
    RETURN NULL;
END
$$;

CREATE FUNCTION ledger_balances_after_delete()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    PERFORM ledger_balances_apply(coalesce((
        SELECT jsonb_agg(t) FROM (
            SELECT o.tenant_id, a.type AS account_type, -sum(o.debit_cents) AS debit_cents,
                   -sum(o.credit_cents) AS credit_cents, -count(*) AS line_count
            FROM old_rows o JOIN ledger_accounts a ON a.id = o.account_id AND a.tenant_id = o.tenant_id
            GROUP BY o.tenant_id, a.type) t), '[]'::jsonb));
    RETURN NULL;
END
$$;

CREATE FUNCTION ledger_balances_after_update()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    PERFORM ledger_balances_apply(coalesce((
        SELECT jsonb_agg(t) FROM (
            SELECT tenant_id, account_type, sum(debit_cents) AS debit_cents, sum(credit_cents) AS credit_cents,
                   sum(line_count) AS line_count
            FROM (
                SELECT n.tenant_id, a.type AS account_type, n.debit_cents, n.credit_cents, 1 AS line_count
                FROM new_rows n JOIN ledger_accounts a ON a.id = n.account_id AND a.tenant_id = n.tenant_id
                UNION ALL
                SELECT o.tenant_id, a.type, -o.debit_cents, -o.credit_cents, -1
                FROM old_rows o JOIN ledger_accounts a ON a.id = o.account_id AND a.tenant_id = o.tenant_id) d
            GROUP BY tenant_id, account_type) t), '[]'::jsonb));
    RETURN NULL;
END
$$;

CREATE TRIGGER ledger_balances_after_insert AFTER INSERT ON journal_lines
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_balances_after_insert();
CREATE TRIGGER ledger_balances_after_delete AFTER DELETE ON journal_lines
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_balances_after_delete();
CREATE TRIGGER ledger_balances_after_update AFTER UPDATE ON journal_lines
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_balances_after_update();

-- Lines that already exist (a database migrated after data was written).
INSERT INTO ledger_balances (tenant_id, account_type, debit_cents, credit_cents, line_count)
SELECT l.tenant_id, a.type, sum(l.debit_cents), sum(l.credit_cents), count(*)
FROM journal_lines l JOIN ledger_accounts a ON a.id = l.account_id AND a.tenant_id = l.tenant_id
GROUP BY l.tenant_id, a.type;

------------------------------------------------------------------------------------------
-- Write blocks. While a block is open (lifted_at IS NULL) the financial tables refuse
-- INSERT, UPDATE, DELETE and TRUNCATE from every writer — superusers included, and with
-- session_replication_role = replica too (ENABLE ALWAYS). Reads keep working.
------------------------------------------------------------------------------------------
CREATE UNIQUE INDEX write_blocks_one_open ON write_blocks ((true)) WHERE lifted_at IS NULL;

CREATE FUNCTION write_block_guard()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_block write_blocks%ROWTYPE;
BEGIN
    SELECT * INTO v_block FROM write_blocks WHERE lifted_at IS NULL ORDER BY id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'writes to % are blocked (write block #% since %): %',
            TG_TABLE_NAME, v_block.id, to_char(v_block.imposed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), v_block.reason
            USING ERRCODE = 'CK001',
                  HINT = 'Reads keep working. A super_admin lifts the block with `clawkeeper writes unblock --reason ...` once the integrity failure is repaired.';
    END IF;
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['ledger_accounts', 'journal_entries', 'journal_lines', 'ledger_balances'] LOOP
        EXECUTE format('CREATE TRIGGER write_block_guard BEFORE INSERT OR UPDATE OR DELETE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION write_block_guard()', t);
        EXECUTE format('CREATE TRIGGER write_block_guard_truncate BEFORE TRUNCATE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION write_block_guard()', t);
        EXECUTE format('ALTER TABLE %I ENABLE ALWAYS TRIGGER write_block_guard', t);
        EXECUTE format('ALTER TABLE %I ENABLE ALWAYS TRIGGER write_block_guard_truncate', t);
    END LOOP;
END
$$;

-- Imposes a block (or returns the one already open) and records it in the system audit chain.
CREATE FUNCTION impose_write_block(p_reason text, p_imposed_by text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    SELECT id INTO v_id FROM write_blocks WHERE lifted_at IS NULL ORDER BY id LIMIT 1;
    IF FOUND THEN
        RETURN v_id;
    END IF;
    INSERT INTO write_blocks (reason, imposed_by) VALUES (p_reason, p_imposed_by)
    ON CONFLICT DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN -- a concurrent imposer won
        SELECT id INTO STRICT v_id FROM write_blocks WHERE lifted_at IS NULL;
        RETURN v_id;
    END IF;
    PERFORM set_config('app.tenant_id', 'system', true);
    INSERT INTO audit_log (tenant_id, actor, action, entity_type, entity_id, payload)
    VALUES ('system', p_imposed_by, 'write_block.imposed', 'write_block', v_id::text, jsonb_build_object('reason', p_reason));
    RETURN v_id;
END
$$;

-- Lifts the open block (NULL when none is open) and records who and why in the audit chain.
CREATE FUNCTION lift_write_block(p_lifted_by text, p_reason text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    IF coalesce(btrim(p_reason), '') = '' THEN
        RAISE EXCEPTION 'a reason is required to lift a write block' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE write_blocks SET lifted_at = now(), lifted_by = p_lifted_by, lift_reason = p_reason
    WHERE lifted_at IS NULL
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('app.tenant_id', 'system', true);
    INSERT INTO audit_log (tenant_id, actor, action, entity_type, entity_id, payload)
    VALUES ('system', p_lifted_by, 'write_block.lifted', 'write_block', v_id::text, jsonb_build_object('reason', p_reason));
    RETURN v_id;
END
$$;
REVOKE ALL ON FUNCTION impose_write_block(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION lift_write_block(text, text) FROM PUBLIC;
