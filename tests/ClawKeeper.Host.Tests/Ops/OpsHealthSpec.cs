using System.Net;
using System.Text.Json;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Testing;
using Microsoft.Data.Sqlite;
using Npgsql;
using Xunit;

namespace ClawKeeper.Host.Tests.Ops;

/// <summary>
/// <c>/health/live</c> and <c>/health/ready</c> from Akka.Hosting's health checks, with a real
/// journal database that goes away and comes back.
/// </summary>
public class OpsHealthSpec
{
    private static async Task<(HttpStatusCode Status, JsonElement Body)> GetAsync(OpsTestHost host, string path)
    {
        using var response = await host.Http.GetAsync(path);
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return (response.StatusCode, document.RootElement.Clone());
    }

    private static string[] Failing(JsonElement body) =>
        body.GetProperty("failing").EnumerateArray().Select(e => e.GetString()!).ToArray();

    private static JsonElement Condition(JsonElement body, string name) =>
        body.GetProperty("conditions").EnumerateArray().Single(c => c.GetProperty("condition").GetString() == name);

    /// <summary>Polls <paramref name="path"/> until it answers <paramref name="status"/>; returns the last answer.</summary>
    private static async Task<(HttpStatusCode Status, JsonElement Body)> EventuallyAsync(OpsTestHost host, string path, HttpStatusCode status)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var answer = await GetAsync(host, path);
            if (answer.Status == status || DateTime.UtcNow > deadline) return answer;
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task Ready_turns_503_naming_the_journal_while_its_PostgreSQL_database_refuses_connections_and_200_when_it_is_back_live_stays_200()
    {
        var journal = await TestDatabases.CreateEmptyAsync();
        var journalName = new NpgsqlConnectionStringBuilder(journal).Database!;
        var admin = await TestPostgres.AdminConnectionStringAsync();
        var state = OpsSamples.StateWith(OpsSamples.Report(DateTimeOffset.UtcNow, failing: false));
        await using var host = await OpsTestHost.StartAsync(await TestDatabases.CreateSeededAsync(), state, journal: new JournalSettings(journal, ""));
        try
        {
            var before = await EventuallyAsync(host, "/health/ready", HttpStatusCode.OK);
            Assert.True(before.Status == HttpStatusCode.OK, before.Body.ToString());
            var probe = Condition(before.Body, "journal_reachable");
            Assert.Equal("healthy", probe.GetProperty("status").GetString());
            Assert.Contains($"/{journalName} answered in", probe.GetProperty("detail").GetString());
            Assert.True(probe.GetProperty("durationMs").GetDouble() >= 0);

            // The journal database goes away for real: new connections refused, open ones ended.
            await Sql.ExecuteAsync(admin, $"alter database \"{journalName}\" allow_connections false");
            await Sql.ExecuteAsync(admin, "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1", journalName);

            var outage = await EventuallyAsync(host, "/health/ready", HttpStatusCode.ServiceUnavailable);
            Assert.True(outage.Status == HttpStatusCode.ServiceUnavailable, outage.Body.ToString());
            Assert.False(outage.Body.GetProperty("ready").GetBoolean());
            Assert.Equal(new[] { "journal_reachable" }, Failing(outage.Body));
            var down = Condition(outage.Body, "journal_reachable");
            Assert.Equal("unhealthy", down.GetProperty("status").GetString());
            Assert.Contains(journalName, down.GetProperty("detail").GetString());
            Assert.DoesNotContain("Password", outage.Body.ToString(), StringComparison.OrdinalIgnoreCase);

            var live = await GetAsync(host, "/health/live");
            Assert.Equal(HttpStatusCode.OK, live.Status);
            Assert.Equal("alive", live.Body.GetProperty("status").GetString());
            Assert.Equal("akka.actorsystem", Assert.Single(live.Body.GetProperty("conditions").EnumerateArray()).GetProperty("condition").GetString());

            await Sql.ExecuteAsync(admin, $"alter database \"{journalName}\" allow_connections true");
            var back = await EventuallyAsync(host, "/health/ready", HttpStatusCode.OK);
            Assert.True(back.Status == HttpStatusCode.OK, back.Body.ToString());
            Assert.Empty(Failing(back.Body));
        }
        finally
        {
            await Sql.ExecuteAsync(admin, $"alter database \"{journalName}\" allow_connections true");
        }
    }

    [Fact]
    public async Task Ready_follows_a_SQLite_journal_file_that_disappears_and_returns()
    {
        var directory = Directory.CreateTempSubdirectory("clawkeeper-ops-journal-");
        try
        {
            var path = Path.Combine(directory.FullName, "journal.db");
            await using (var create = new SqliteConnection($"Data Source={path};Pooling=false"))
            {
                await create.OpenAsync();
                await using var command = create.CreateCommand();
                command.CommandText = "create table probe (id integer)";
                await command.ExecuteNonQueryAsync();
            }
            var state = OpsSamples.StateWith(OpsSamples.Report(DateTimeOffset.UtcNow, failing: false));
            await using var host = await OpsTestHost.StartAsync(await TestDatabases.CreateSeededAsync(), state, journal: new JournalSettings("", path));

            var before = await EventuallyAsync(host, "/health/ready", HttpStatusCode.OK);
            Assert.True(before.Status == HttpStatusCode.OK, before.Body.ToString());
            Assert.Contains("SQLite journal", Condition(before.Body, "journal_reachable").GetProperty("detail").GetString());

            File.Move(path, path + ".away");
            var gone = await GetAsync(host, "/health/ready");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, gone.Status);
            Assert.Equal(new[] { "journal_reachable" }, Failing(gone.Body));
            Assert.Contains("does not exist", Condition(gone.Body, "journal_reachable").GetProperty("detail").GetString());
            Assert.Equal(HttpStatusCode.OK, (await GetAsync(host, "/health/live")).Status);

            File.Move(path + ".away", path);
            Assert.Equal(HttpStatusCode.OK, (await GetAsync(host, "/health/ready")).Status);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }
}
