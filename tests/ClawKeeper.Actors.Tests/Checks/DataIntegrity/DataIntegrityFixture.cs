using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.DataIntegrity;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Testing;
using Npgsql;

namespace ClawKeeper.Actors.Tests.Checks.DataIntegrity;

/// <summary>Runs the data-integrity checks against a real database and tampers with it the way an attacker or a bug would.</summary>
public static class Integrity
{
    public static readonly DataIntegritySettings Settings = new(TimeSpan.FromSeconds(60), TimeSpan.FromHours(24), 5, "clawkeeper_app", true);

    public static CheckContext Full => new("heartbeat-test", DateTimeOffset.UtcNow, null, null, FullVerification: true);

    /// <summary>A full verification that knows the verified positions (as the heartbeat, <c>check --once --full</c> and <c>writes unblock</c> run it).</summary>
    public static CheckContext FullAgainst(IntegrityWatermarks watermarks) => new("heartbeat-test", DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddMinutes(-5), watermarks, FullVerification: true);

    public static CheckContext Incremental(IntegrityWatermarks watermarks) => new("heartbeat-test", DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddMinutes(-5), watermarks, FullVerification: false);

    public static async Task<CheckResult> RunAsync(IPlatformCheck check, CheckContext context) =>
        await CheckRunner.RunOneAsync(check, context, CancellationToken.None);

    /// <summary>Runs a full verification of the four checks and returns the watermarks they verified.</summary>
    public static async Task<IntegrityWatermarks> VerifiedWatermarksAsync(NpgsqlDataSource platform)
    {
        var results = await CheckRunner.RunAllAsync(Hosting.HeartbeatComponents.DataIntegrity(platform, Settings), Full, CancellationToken.None);
        foreach (var result in results)
            if (result.Status != CheckStatus.Pass) throw new InvalidOperationException($"{result.Check} did not pass on the clean platform: {result.Observed} {result.Detail}");
        return IntegrityWatermarks.None.Advance(results.Where(r => r.Progress is not null).Select(r => r.Progress!), true, DateTimeOffset.UtcNow);
    }

    /// <summary>Runs the four checks incrementally and, when all pass, returns the watermarks advanced by them (as the supervisor does).</summary>
    public static async Task<(IReadOnlyList<CheckResult> Results, IntegrityWatermarks Next)> IncrementalRoundAsync(NpgsqlDataSource platform, IntegrityWatermarks watermarks)
    {
        var results = await CheckRunner.RunAllAsync(Hosting.HeartbeatComponents.DataIntegrity(platform, Settings), Incremental(watermarks), CancellationToken.None);
        return (results, watermarks.Advance(results.Where(r => r.Progress is not null).Select(r => r.Progress!), false, DateTimeOffset.UtcNow));
    }

    /// <summary>Runs SQL as the application role (row-level security, triggers on), in the tenant's context.</summary>
    public static async Task AsApplicationAsync(string database, string tenant, string sql, params object?[] parameters)
    {
        await using var connection = await Sql.OpenAsync(database);
        await Sql.ExecuteAsync(connection, "set role clawkeeper_app");
        await Sql.ExecuteAsync(connection, "select set_config('app.tenant_id', $1, false)", tenant);
        await Sql.ExecuteAsync(connection, sql, parameters);
    }

    /// <summary>Runs SQL with ordinary triggers off (replica mode): how tampering bypasses the append-only guard.</summary>
    public static async Task TamperAsync(string database, string sql, params object?[] parameters)
    {
        await using var connection = await Sql.OpenAsync(database);
        await Sql.ExecuteAsync(connection, "set session_replication_role = replica");
        await Sql.ExecuteAsync(connection, sql, parameters);
    }
}
