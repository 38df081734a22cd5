using ClawKeeper.Actors.Settings;
using Npgsql;

namespace ClawKeeper.Actors.Checks.DataIntegrity;

/// <summary>
/// <c>rls_policies_active</c>: every tenant-scoped table (any table or partitioned table of the
/// platform with a <c>tenant_id</c> column, plus <c>tenants</c>) has row-level security enabled
/// and forced, at least one policy, no always-true policy and no policy that ignores the tenant;
/// the application role is not superuser, has no BYPASSRLS and owns no tenant table. A new table
/// created without RLS is caught because tables are discovered, not listed. Ways around row-level
/// security that are not tables — a SECURITY DEFINER function or a view without <c>security_invoker</c>
/// (or a materialized view) over tenant tables that the application role may use — are failures too,
/// each named (<see cref="RlsBypasses"/>).
/// </summary>
public sealed class RlsPoliciesActiveCheck(NpgsqlDataSource? platform, DataIntegritySettings settings) : PlatformQueryCheck(platform)
{
    public override string Id => "rls_policies_active";
    public override TimeSpan Timeout => settings.Timeout;
    protected override string Threshold => "every tenant table: RLS enabled + forced, a tenant policy, none always-true; app role without BYPASSRLS owning none";

    protected override async Task<CheckOutcome> EvaluateAsync(NpgsqlConnection connection, CheckContext context, CancellationToken cancellationToken)
    {
        var problems = new List<string>();
        var examined = 0;
        await using (var command = Command(connection, """
            select c.oid::regclass::text, c.relkind::text, c.relrowsecurity, c.relforcerowsecurity,
                   pg_get_userbyid(c.relowner),
                   (select count(*) from pg_policy p where p.polrelid = c.oid)::int,
                   coalesce((select string_agg(p.polname, ', ') from pg_policy p
                             where p.polrelid = c.oid and p.polpermissive and (
                                   (p.polcmd in ('*', 'r', 'w', 'd') and (p.polqual is null or pg_get_expr(p.polqual, p.polrelid) in ('true', '(true)')))
                                or (p.polcmd in ('*', 'a', 'w') and p.polwithcheck is not null and pg_get_expr(p.polwithcheck, p.polrelid) in ('true', '(true)')))), ''),
                   coalesce((select string_agg(p.polname, ', ') from pg_policy p
                             where p.polrelid = c.oid and p.polpermissive
                               and coalesce(pg_get_expr(p.polqual, p.polrelid), '') not like case when c.relname = 'tenants' then '%id%' else '%tenant_id%' end
                               and coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '') not like case when c.relname = 'tenants' then '%id%' else '%tenant_id%' end), '')
            from pg_class c
            where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
              and (c.relname = 'tenants' or exists (
                   select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and a.attnum > 0 and not a.attisdropped))
            order by 1
            """))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                examined++;
                var table = reader.GetString(0);
                var kind = reader.GetString(1) == "p" ? "partitioned table " : "";
                if (!reader.GetBoolean(2)) problems.Add($"{kind}{table}: row-level security is not enabled");
                else if (!reader.GetBoolean(3)) problems.Add($"{kind}{table}: row-level security is not forced (the owner bypasses it)");
                if (reader.GetInt32(5) == 0) problems.Add($"{kind}{table}: no policy");
                if (reader.GetString(6).Length > 0) problems.Add($"{kind}{table}: always-true policy {reader.GetString(6)}");
                else if (reader.GetString(7).Length > 0) problems.Add($"{kind}{table}: policy {reader.GetString(7)} does not refer to the tenant column");
                if (reader.GetString(4) == settings.ApplicationRole) problems.Add($"{kind}{table}: owned by the application role {settings.ApplicationRole}");
            }

        problems.AddRange(await RlsBypasses.FindAsync(connection, settings.ApplicationRole, cancellationToken).ConfigureAwait(false));

        await using (var command = Command(connection, "select rolsuper, rolbypassrls from pg_roles where rolname = @role", ("role", settings.ApplicationRole)))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                problems.Add($"application role {settings.ApplicationRole} does not exist");
            else
            {
                if (reader.GetBoolean(0)) problems.Add($"application role {settings.ApplicationRole} is a superuser (bypasses row-level security)");
                if (reader.GetBoolean(1)) problems.Add($"application role {settings.ApplicationRole} has BYPASSRLS");
            }
        }

        if (examined == 0)
            return CheckOutcome.Error(Threshold, "0 tenant-scoped tables found in schema public: nothing was examined (wrong database?)");
        var observed = $"{examined} tenant tables examined, {problems.Count} problem(s)";
        return problems.Count == 0
            ? CheckOutcome.Pass(observed, Threshold, $"application role {settings.ApplicationRole}: no superuser, no BYPASSRLS, owns no tenant table")
            : CheckOutcome.Fail(observed, Threshold, string.Join("; ", problems));
    }
}
