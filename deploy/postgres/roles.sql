-- The login roles of a ClawKeeper deployment (docs/security.md), run by a superuser AFTER
-- `clawkeeper db migrate` (migration 0009 creates the clawkeeper_monitor group): PostgreSQL 15 lets only a
-- superuser create a BYPASSRLS role ("must be superuser to create bypassrls users"); in the container the schema
-- owner is one. Idempotent: it sets
-- the passwords again on every run. Passwords come as psql variables, never on a command line:
--   psql -v node_pw="$CLAWKEEPER_NODE_DB_PASSWORD" -v journal_pw="$CLAWKEEPER_JOURNAL_DB_PASSWORD" -f roles.sql
--   clawkeeper_node     what `run` and `check` connect as (CLAWKEEPER_PLATFORM_DB): the monitoring
--                       group plus BYPASSRLS (an attribute, so it is set on the login itself).
--   clawkeeper_journal  owns the database clawkeeper_journal, where the Akka journal creates its tables
--                       (CLAWKEEPER_JOURNAL_DB); it has no rights on the platform database's tables.
\set ON_ERROR_STOP on

SELECT format('CREATE ROLE clawkeeper_node LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE BYPASSRLS IN ROLE clawkeeper_monitor PASSWORD %L', :'node_pw')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'clawkeeper_node') \gexec
SELECT format('ALTER ROLE clawkeeper_node WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE BYPASSRLS PASSWORD %L', :'node_pw') \gexec
GRANT clawkeeper_monitor TO clawkeeper_node;

SELECT format('CREATE ROLE clawkeeper_journal LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD %L', :'journal_pw')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'clawkeeper_journal') \gexec
SELECT format('ALTER ROLE clawkeeper_journal WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD %L', :'journal_pw') \gexec
SELECT 'CREATE DATABASE clawkeeper_journal OWNER clawkeeper_journal'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'clawkeeper_journal') \gexec
REVOKE ALL ON DATABASE clawkeeper_journal FROM PUBLIC;
