using ClawKeeper.Host.Tests.Support;
using ClawKeeper.Testing;
using Xunit;

namespace ClawKeeper.Host.Tests.Cli;

public class DatabaseCommandsSpec
{
    [Fact]
    public async Task Migrate_is_idempotent_and_seed_demo_runs_once()
    {
        var database = await TestDatabases.CreateEmptyAsync();
        var env = ClawKeeperProcess.PlatformDb(database);

        var first = await ClawKeeperProcess.RunAsync(env, "db", "migrate");
        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.Matches(@": [1-9]\d* migration\(s\) applied", first.StandardOutput);
        var second = await ClawKeeperProcess.RunAsync(env, "db", "migrate");
        Assert.Contains(": 0 migration(s) applied", second.StandardOutput);

        var seeded = await ClawKeeperProcess.RunAsync(env, "db", "seed-demo");
        Assert.True(seeded.ExitCode == 0, seeded.ToString());
        Assert.Contains("seeded 4 tenants", seeded.StandardOutput);
        var again = await ClawKeeperProcess.RunAsync(env, "db", "seed-demo");
        Assert.Contains("already seeded", again.StandardOutput);
        Assert.Equal(5L, await Sql.ScalarAsync<long>(database, "select count(*) from tenants"));

        var password = new Npgsql.NpgsqlConnectionStringBuilder(database).Password;
        if (!string.IsNullOrEmpty(password))
            Assert.DoesNotContain(password, first.StandardOutput + first.StandardError + seeded.StandardOutput + seeded.StandardError);
    }
}
