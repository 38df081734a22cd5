------------------------------------------------------------------------------------------
-- 0005: the audit hash functions are STABLE, not IMMUTABLE.
-- Their bodies call convert_to(), which PostgreSQL declares STABLE; an IMMUTABLE SQL function
-- whose body is less than immutable is never inlined, so every row paid three function calls
-- through the SQL-function executor. STABLE lets the planner inline them into the verifying
-- query (and into the trigger): measured 27.8x faster incremental and 2.8x+ faster full
-- verification on 10M audit rows (tests/ClawKeeper.Benchmarks/RESULTS.md). Same results.
------------------------------------------------------------------------------------------
ALTER FUNCTION audit_hash_field(text) STABLE;
ALTER FUNCTION audit_entry_canonical(text, bigint, timestamptz, text, text, text, text, jsonb, text) STABLE;
ALTER FUNCTION audit_entry_hash(text, bigint, timestamptz, text, text, text, text, jsonb, text) STABLE;
