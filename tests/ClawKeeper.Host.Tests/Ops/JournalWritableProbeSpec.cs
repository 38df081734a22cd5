using ClawKeeper.Actors.Settings;
using ClawKeeper.Host.Ops;
using ClawKeeper.Testing;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;
using Xunit;

namespace ClawKeeper.Host.Tests.Ops;

/// <summary>
/// The readiness probe <c>journal_reachable</c> against a real PostgreSQL: a journal that answers but
/// cannot be written (the heartbeat's persists would all fail) is not ready.
/// </summary>
public class JournalWritableProbeSpec
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    private static async Task<string> JournalDatabaseAsync()
    {
        var journal = await TestDatabases.CreateEmptyAsync();
        // The shape Akka.Persistence.Sql creates is not the subject: a table named journal is.
        await Sql.ExecuteAsync(journal, "create table journal (ordering bigserial primary key, persistence_id text not null, payload bytea)");
        return journal;
    }

    [Fact]
    public async Task A_read_only_journal_database_is_not_ready_and_is_ready_again_once_writable()
    {
        var journal = await JournalDatabaseAsync();
        var name = new NpgsqlConnectionStringBuilder(journal).Database!;
        var admin = await TestPostgres.AdminConnectionStringAsync();
        var probe = new JournalReachableCheck(new JournalSettings(journal, ""), Timeout);

        var writable = await probe.ProbeAsync();
        Assert.Equal(HealthStatus.Healthy, writable.Status);

        await Sql.ExecuteAsync(admin, $"alter database \"{name}\" set default_transaction_read_only = on");
        try
        {
            var readOnly = await probe.ProbeAsync();
            Assert.Equal(HealthStatus.Unhealthy, readOnly.Status);
            Assert.Contains("can be read but not written", readOnly.Description);
            Assert.Contains("default_transaction_read_only", readOnly.Description);
            Assert.Contains(name, readOnly.Description);
        }
        finally
        {
            await Sql.ExecuteAsync(admin, $"alter database \"{name}\" reset default_transaction_read_only");
        }

        Assert.Equal(HealthStatus.Healthy, (await probe.ProbeAsync()).Status);
    }

    [Fact]
    public async Task A_role_without_INSERT_on_the_journal_table_is_not_ready()
    {
        var journal = await JournalDatabaseAsync();
        var role = $"ck_reader_{Guid.NewGuid():N}"[..24];
        await Sql.ExecuteAsync(journal, $"create role {role} login password 'reader-pass' nosuperuser nobypassrls; grant select on journal to {role}");
        var asReader = new NpgsqlConnectionStringBuilder(journal) { Username = role, Password = "reader-pass" }.ConnectionString;
        var probe = new JournalReachableCheck(new JournalSettings(asReader, ""), Timeout);

        var result = await probe.ProbeAsync();
        Assert.Equal(HealthStatus.Unhealthy, result.Status);
        Assert.Contains($"the role {role} may not INSERT into the journal table", result.Description);
        Assert.DoesNotContain("reader-pass", result.Description);

        await Sql.ExecuteAsync(journal, $"grant insert on journal to {role}");
        Assert.Equal(HealthStatus.Healthy, (await probe.ProbeAsync()).Status);
    }
}
