------------------------------------------------------------------------------------------
-- 0009: the monitoring role (least privilege for `run` and `check`; docs/security.md).
--
-- clawkeeper_monitor is a NOLOGIN group role. Operators grant it to the login role the nodes
-- and `check` connect as, and give that login BYPASSRLS (role attributes are not inherited):
--     CREATE ROLE clawkeeper_node LOGIN PASSWORD '...' BYPASSRLS IN ROLE clawkeeper_monitor;
--
-- What it may do:
--   * read every table (the 21 checks, the ops surface, the fleet);
--   * append heartbeat and fleet runs (agent_runs), security events and alert controls;
--   * move tasks through their states (the fleet claims and finishes tasks);
--   * impose a write block, only through impose_write_block() (SECURITY DEFINER from now on);
--   * SET ROLE clawkeeper_app (the isolation probe, the API's task writes): it is a member,
--     but NOINHERIT, so it does not hold the application's privileges as itself.
-- What it may not do: write the books (ledger_accounts, journal_entries, journal_lines,
-- ledger_balances, audit_log, audit_chain_heads, write_blocks directly), execute
-- lift_write_block(), run DDL (it owns nothing and has no CREATE), disable triggers (owner only).
-- Lifting a block goes through super_admin's own connection (CLAWKEEPER_ADMIN_DB).
------------------------------------------------------------------------------------------
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'clawkeeper_monitor') THEN
        BEGIN
            CREATE ROLE clawkeeper_monitor NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION BYPASSRLS;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                RAISE NOTICE 'role clawkeeper_monitor was created concurrently; using it';
            WHEN insufficient_privilege THEN
                -- Only a superuser may create a BYPASSRLS role; the group needs no attribute itself.
                CREATE ROLE clawkeeper_monitor NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION;
        END;
    END IF;
END
$$;

-- The isolation probe and the API's task writes act as the application role.
DO $$
BEGIN
    IF NOT pg_catalog.pg_has_role('clawkeeper_monitor', 'clawkeeper_app', 'MEMBER') THEN
        GRANT clawkeeper_app TO clawkeeper_monitor;
    END IF;
EXCEPTION WHEN OTHERS THEN
    -- A concurrent migration of another database of this cluster granted it first.
    IF NOT pg_catalog.pg_has_role('clawkeeper_monitor', 'clawkeeper_app', 'MEMBER') THEN
        RAISE;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO clawkeeper_monitor;

-- Read everything, now and in the tables later migrations of this owner create.
GRANT SELECT ON ALL TABLES IN SCHEMA public TO clawkeeper_monitor;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO clawkeeper_monitor;

-- Appends: heartbeat and fleet runs, security events (API refusals, unblock refusals), alert controls (ops ack/silence).
GRANT INSERT ON agent_runs, security_events, alert_controls TO clawkeeper_monitor;
GRANT USAGE ON SEQUENCE security_events_id_seq, alert_controls_id_seq TO clawkeeper_monitor;

-- The fleet claims, starts, finishes and re-queues tasks.
GRANT UPDATE ON tasks TO clawkeeper_monitor;

-- A write block is imposed through the function only: it writes write_blocks and the audit chain as its owner.
ALTER FUNCTION impose_write_block(text, text) SECURITY DEFINER;
GRANT EXECUTE ON FUNCTION impose_write_block(text, text) TO clawkeeper_monitor;
-- lift_write_block stays revoked from PUBLIC: super_admin's connection (the owner) lifts.
REVOKE ALL ON FUNCTION lift_write_block(text, text) FROM clawkeeper_monitor;
