using ClawKeeper.Testing;

namespace ClawKeeper.Platform.Tests.Tasks;

/// <summary>A migrated database with two tenants and helpers to fill its queue.</summary>
internal static class TaskQueueTesting
{
    public const string TenantA = "t-queue-a";
    public const string TenantB = "t-queue-b";

    public static async Task<string> DatabaseAsync()
    {
        var database = await TestDatabases.CreateMigratedAsync();
        await Sql.ExecuteAsync(database, "INSERT INTO tenants (id, name) VALUES ($1, 'Queue A'), ($2, 'Queue B')", TenantA, TenantB);
        return database;
    }

    /// <summary>Tasks <c>{prefix}-0001</c>.. for <paramref name="orchestrator"/>, alternating tenants, the lower numbers older.</summary>
    public static Task InsertAsync(string database, string prefix, string orchestrator, int count, int priority = 0) =>
        Sql.ExecuteAsync(database, """
            INSERT INTO tasks (id, tenant_id, orchestrator, kind, priority, created_at)
            SELECT $1 || '-' || lpad(i::text, 4, '0'), CASE WHEN i % 2 = 0 THEN $2 ELSE $3 END, $4, 'categorize', $5,
                   now() - interval '1 hour' + i * interval '1 millisecond'
            FROM generate_series(1, $6) AS i
            """, prefix, TenantA, TenantB, orchestrator, priority, count);
}
