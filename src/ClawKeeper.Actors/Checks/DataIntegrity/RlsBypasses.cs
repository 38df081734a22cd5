using Npgsql;

namespace ClawKeeper.Actors.Checks.DataIntegrity;

/// <summary>
/// Objects through which the application role reads tenant tables with someone else's rights, so that
/// row-level security is evaluated for their owner instead of the caller (issue 12 item 4):
/// <list type="bullet">
/// <item>a <c>SECURITY DEFINER</c> function the application role may EXECUTE whose body names a tenant table,
/// depends on one (SQL-standard bodies), or runs dynamic SQL (plpgsql <c>EXECUTE</c>: it may read any table);
/// trigger functions are left out — they cannot be called, only fired by their table's triggers;</item>
/// <item>a view over tenant tables (directly or through other views) without <c>security_invoker</c> that the
/// application role may SELECT (the tables' policies are checked as the view's owner), and any materialized
/// view over tenant tables it may SELECT (a materialized view has no row-level security at all).</item>
/// </list>
/// Tenant tables are discovered as in <c>rls_policies_active</c>: tables of schema public with a <c>tenant_id</c>
/// column, and <c>tenants</c>. The platform's migrations create no such object: their SECURITY DEFINER functions
/// are trigger functions or have EXECUTE revoked from PUBLIC (<c>ledger_balances_apply</c>), and they create no view.
/// <see cref="Allowed"/> lists deliberate exceptions with their reason (none today).
/// </summary>
public static class RlsBypasses
{
    /// <summary>Functions (regprocedure text) or views (regclass text) allowed on purpose, with the reason.</summary>
    public static readonly IReadOnlyDictionary<string, string> Allowed = new Dictionary<string, string>(StringComparer.Ordinal);

    private const string TenantTables = """
        tenant_tables as (
            select c.oid, c.relname::text as relname from pg_class c
            where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
              and (c.relname = 'tenants' or exists (
                   select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and a.attnum > 0 and not a.attisdropped)))
        """;

    public static async Task<IReadOnlyList<string>> FindAsync(NpgsqlConnection connection, string applicationRole, CancellationToken cancellationToken)
    {
        var problems = new List<string>();
        await using (var command = new NpgsqlCommand($$"""
            with {{TenantTables}}
            select p.oid::regprocedure::text, pg_get_userbyid(p.proowner), r.rolsuper or r.rolbypassrls,
                   coalesce((select string_agg(t.relname, ', ' order by t.relname) from tenant_tables t
                             where p.prosrc ~* ('\m' || t.relname || '\M')
                                or exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid
                                             and d.refclassid = 'pg_class'::regclass and d.refobjid = t.oid)), ''),
                   l.lanname = 'plpgsql' and p.prosrc ~* '\mexecute\M'
            from pg_proc p
            join pg_roles r on r.oid = p.proowner
            join pg_language l on l.oid = p.prolang
            where p.prosecdef
              and p.prorettype not in ('trigger'::regtype, 'event_trigger'::regtype)
              and p.pronamespace not in ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
              and has_function_privilege(@role, p.oid, 'EXECUTE')
            order by 1
            """, connection) { CommandTimeout = 0 })
        {
            command.Parameters.AddWithValue("role", applicationRole);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var function = reader.GetString(0);
                var tables = reader.GetString(3);
                var dynamic = reader.GetBoolean(4);
                if ((tables.Length == 0 && !dynamic) || Allowed.ContainsKey(function)) continue;
                var owner = $"{reader.GetString(1)}{(reader.GetBoolean(2) ? ", who bypasses row-level security" : "")}";
                var reads = tables.Length > 0 ? $"reads tenant table(s) {tables}" : "runs dynamic SQL (EXECUTE: it can read any tenant table)";
                problems.Add($"function {function} is SECURITY DEFINER (runs as {owner}), {applicationRole} may execute it and it {reads}: row-level security is applied to its owner, not to the caller");
            }
        }

        await using (var command = new NpgsqlCommand($$"""
            with recursive {{TenantTables}},
            reads (view_oid, rel) as (
                select rw.ev_class, d.refobjid
                from pg_rewrite rw
                join pg_depend d on d.classid = 'pg_rewrite'::regclass and d.objid = rw.oid and d.refclassid = 'pg_class'::regclass and d.refobjid <> rw.ev_class
                union
                select reads.view_oid, d.refobjid
                from reads
                join pg_rewrite rw on rw.ev_class = reads.rel
                join pg_depend d on d.classid = 'pg_rewrite'::regclass and d.objid = rw.oid and d.refclassid = 'pg_class'::regclass and d.refobjid <> rw.ev_class)
            select v.oid::regclass::text, v.relkind::text, pg_get_userbyid(v.relowner), r.rolsuper or r.rolbypassrls,
                   string_agg(distinct t.relname, ', ')
            from pg_class v
            join pg_roles r on r.oid = v.relowner
            join reads on reads.view_oid = v.oid
            join tenant_tables t on t.oid = reads.rel
            where v.relkind in ('v', 'm')
              and v.relnamespace not in ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
              and has_table_privilege(@role, v.oid, 'SELECT')
              and (v.relkind = 'm' or not coalesce((select lower(o.option_value) in ('true', 'on', 'yes', '1')
                                                    from pg_options_to_table(v.reloptions) o where o.option_name = 'security_invoker'), false))
            group by 1, 2, 3, 4
            order by 1
            """, connection) { CommandTimeout = 0 })
        {
            command.Parameters.AddWithValue("role", applicationRole);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var view = reader.GetString(0);
                if (Allowed.ContainsKey(view)) continue;
                var tables = reader.GetString(4);
                var owner = $"{reader.GetString(2)}{(reader.GetBoolean(3) ? ", who bypasses row-level security: every tenant's rows are visible through it" : "")}";
                problems.Add(reader.GetString(1) == "m"
                    ? $"materialized view {view} holds rows of tenant table(s) {tables} and {applicationRole} may SELECT it: a materialized view has no row-level security"
                    : $"view {view} reads tenant table(s) {tables} without security_invoker and {applicationRole} may SELECT it: row-level security is checked as its owner ({owner}), not as the caller");
            }
        }
        return problems;
    }
}
