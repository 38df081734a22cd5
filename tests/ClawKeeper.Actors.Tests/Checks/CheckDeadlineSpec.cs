using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.DataIntegrity;
using ClawKeeper.Actors.Tests.Checks.DataIntegrity;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;

namespace ClawKeeper.Actors.Tests.Checks;

/// <summary>A check still running at the round's deadline is cancelled, and its query stops on the server.</summary>
public class CheckDeadlineSpec
{
    [Fact]
    public async Task An_integrity_query_past_the_deadline_is_an_error_and_is_cancelled_on_the_server()
    {
        var database = await TestDatabases.CreateSeededAsync();
        const string application = "ck-deadline-spec";
        await using var platform = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(database) { ApplicationName = application }.ConnectionString);

        // Another connection holds audit_log: the check's scan waits for the lock (a slow database, as far as it can tell).
        await using var locker = await Sql.OpenAsync(database);
        await Sql.ExecuteAsync(locker, "begin");
        await Sql.ExecuteAsync(locker, "lock table audit_log in access exclusive mode");

        const string ours = "select count(*) from pg_stat_activity where application_name = $1 and state = 'active'";
        var context = Integrity.Full with { Deadline = TimeSpan.FromSeconds(3) }; // the check's own timeout is 60 s
        var running = CheckRunner.RunOneAsync(new AuditLogContinuousCheck(platform, Integrity.Settings), context, CancellationToken.None);
        Assert.True(await EventuallyAsync(async () => await Sql.ScalarAsync<long>(database, ours, application) == 1, TimeSpan.FromSeconds(3)),
            "the check's query was never seen waiting on the server");

        var result = await running;
        Assert.Equal(CheckStatus.Error, result.Status);
        Assert.Contains("did not finish by the round's deadline (3000 ms): cancelled", result.Detail);
        Assert.True(await EventuallyAsync(async () => await Sql.ScalarAsync<long>(database, ours, application) == 0, TimeSpan.FromSeconds(5)),
            "the abandoned query still runs on the server");
        await Sql.ExecuteAsync(locker, "rollback");
    }

    private static async Task<bool> EventuallyAsync(Func<Task<bool>> condition, TimeSpan within)
    {
        var until = DateTime.UtcNow + within;
        do
        {
            if (await condition()) return true;
            await Task.Delay(100);
        }
        while (DateTime.UtcNow < until);
        return await condition();
    }
}
