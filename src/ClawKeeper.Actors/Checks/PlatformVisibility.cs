using Npgsql;

namespace ClawKeeper.Actors.Checks;

/// <summary>
/// Cross-tenant checks are only honest when the monitoring role sees every tenant's rows. Under
/// row-level security a normal role would count zero rows and every check would pass silently,
/// so such a connection makes the checks report <c>error</c> instead.
/// </summary>
public static class PlatformVisibility
{
    /// <summary>Null when the connection sees all tenants; otherwise the reason it does not.</summary>
    public static async Task<string?> WhyNotAllTenantsVisibleAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            "select current_user::text, r.rolsuper, r.rolbypassrls from pg_roles r where r.rolname = current_user", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            return "the monitoring role could not be found in pg_roles";
        var role = reader.GetString(0);
        if (reader.GetBoolean(1) || reader.GetBoolean(2)) return null;
        return $"the monitoring role '{role}' is subject to row-level security (neither superuser nor BYPASSRLS) and would see only one tenant's rows; connect the heartbeat with a role that has BYPASSRLS";
    }
}
