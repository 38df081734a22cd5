------------------------------------------------------------------------------------------
-- 0007: TRUNCATE of the books keeps the running totals right.
-- The running totals (ledger_balances, 0002) are moved by statement triggers on INSERT,
-- UPDATE and DELETE of journal_lines; TRUNCATE fired none of them, so the totals kept the
-- sums of lines that no longer existed. Now:
--   * TRUNCATE journal_lines (directly, or by CASCADE from journal_entries / ledger_accounts /
--     tenants) empties ledger_balances in the same transaction: no line, no total.
--   * TRUNCATE ledger_balances on its own is refused (the totals would say 0 while the lines
--     still hold money); only the journal_lines handler above may empty it.
-- Both triggers are ENABLE ALWAYS: they fire with session_replication_role = replica too
-- (a restore, a replica applying a TRUNCATE, a superuser working "as a replica").
-- The write-block guard (0002) still refuses all of it while a write block is open.
------------------------------------------------------------------------------------------
CREATE FUNCTION ledger_balances_after_truncate()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    -- TRUNCATE is not subject to row-level security: every tenant's totals go, as every line went.
    PERFORM set_config('clawkeeper.ledger_balances_reset', 'on', true);
    TRUNCATE ledger_balances;
    PERFORM set_config('clawkeeper.ledger_balances_reset', 'off', true);
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION ledger_balances_after_truncate() FROM PUBLIC;

CREATE FUNCTION ledger_balances_refuse_truncate()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF current_setting('clawkeeper.ledger_balances_reset', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'ledger_balances holds the running totals of journal_lines: TRUNCATE refused'
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'TRUNCATE journal_lines empties the running totals together with the lines.';
END
$$;
REVOKE ALL ON FUNCTION ledger_balances_refuse_truncate() FROM PUBLIC;

CREATE TRIGGER ledger_balances_after_truncate AFTER TRUNCATE ON journal_lines
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_balances_after_truncate();
ALTER TABLE journal_lines ENABLE ALWAYS TRIGGER ledger_balances_after_truncate;

CREATE TRIGGER ledger_balances_refuse_truncate BEFORE TRUNCATE ON ledger_balances
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_balances_refuse_truncate();
ALTER TABLE ledger_balances ENABLE ALWAYS TRIGGER ledger_balances_refuse_truncate;
