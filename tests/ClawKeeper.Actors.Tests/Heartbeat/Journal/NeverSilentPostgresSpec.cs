using Akka.Actor;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Actors.Heartbeat.Journal;
using ClawKeeper.Actors.Orchestrators;
using ClawKeeper.Actors.Serialization;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Actors.Tests.Support;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace ClawKeeper.Actors.Tests.Heartbeat.Journal;

/// <summary>
/// The same outage with the real journal plugin: Akka.Persistence.Sql on a PostgreSQL database that stops
/// accepting connections (every open one ended) for a few heartbeats and then comes back.
/// </summary>
public class NeverSilentPostgresSpec : Akka.TestKit.Xunit2.TestKit, IDisposable
{
    private static readonly HeartbeatSettings Settings = new(TimeSpan.FromHours(4), TimeSpan.FromHours(1), TimeSpan.FromSeconds(10), 3, 2, RetryPolicy.Immediate);

    private readonly string _journal;
    private readonly ITestOutputHelper _output;
    private readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("clawkeeper-spool-pg-");

    public NeverSilentPostgresSpec(ITestOutputHelper output) : this(TestDatabases.CreateEmptyAsync().GetAwaiter().GetResult(), output)
    {
    }

    private NeverSilentPostgresSpec(string journal, ITestOutputHelper output) : base(Akka.Configuration.ConfigurationFactory.ParseString($$"""
        akka.actor.serializers.clawkeeper-json = "ClawKeeper.Actors.Serialization.ClawKeeperSerializer, ClawKeeper.Actors"
        akka.actor.serialization-bindings { "ClawKeeper.Actors.Serialization.IClawKeeperMessage, ClawKeeper.Actors" = clawkeeper-json }
        akka.actor.serialization-identifiers { "ClawKeeper.Actors.Serialization.ClawKeeperSerializer, ClawKeeper.Actors" = 4242 }
        akka.persistence.journal.plugin = "akka.persistence.journal.sql"
        akka.persistence.journal.sql {
          class = "Akka.Persistence.Sql.Journal.SqlWriteJournal, Akka.Persistence.Sql"
          connection-string = "{{journal}}"
          provider-name = "PostgreSQL.15"
          auto-initialize = on
        }
        akka.persistence.snapshot-store.plugin = "akka.persistence.snapshot-store.sql"
        akka.persistence.snapshot-store.sql {
          connection-string = "{{journal}}"
          provider-name = "PostgreSQL.15"
          auto-initialize = on
        }
        akka.logger-formatter = "Akka.Logger.Serilog.SerilogLogMessageFormatter, Akka.Logger.Serilog"
        """).WithFallback(Akka.Persistence.Sql.SqlPersistence.DefaultConfiguration), output: output)
    {
        _journal = journal;
        _output = output;
    }

    private IActorRef Start(string spoolName, IHeartbeatRunLog runLog)
    {
        var options = new HeartbeatSupervisorOptions("pg-outage", Settings, new[] { TestGroups.Scripted("system_health", () => CheckStatus.Fail) },
            Array.Empty<OrchestratorDefinition>(), runLog, Scheduled: false, SpoolPath: Path.Combine(_directory.FullName, spoolName));
        var supervisor = Sys.ActorOf(HeartbeatSupervisor.Props(options));
        supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, TimeSpan.FromSeconds(60)).Wait();
        return supervisor;
    }

    private static HeartbeatReport Beat(IActorRef supervisor) =>
        supervisor.Ask<HeartbeatCompleted>(RunHeartbeatNow.Instance, TimeSpan.FromSeconds(60)).Result.Report;

    private async Task AllowConnectionsAsync(bool allow)
    {
        var admin = await TestPostgres.AdminConnectionStringAsync();
        var name = new NpgsqlConnectionStringBuilder(_journal).Database!;
        await Sql.ExecuteAsync(admin, $"alter database \"{name}\" allow_connections {(allow ? "true" : "false")}");
        if (!allow) await Sql.ExecuteAsync(admin, "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1", name);
    }

    [Fact]
    public async Task A_journal_database_that_refuses_connections_stops_nothing_and_gets_every_heartbeat_once_when_it_returns()
    {
        var runLog = new RecordingRunLog();
        var supervisor = Start("spool.db", runLog);
        Assert.Equal(1, Beat(supervisor).ConsecutiveFailures); // the journal works
        var deaths = CreateTestProbe();
        deaths.Watch(supervisor);

        await AllowConnectionsAsync(false);
        try
        {
            for (var i = 2; i <= 4; i++)
            {
                // Heartbeat ids are per second (HeartbeatDecisions.NextId): one heartbeat per second keeps them distinct.
                await Task.Delay(TimeSpan.FromSeconds(1.1));
                var report = Beat(supervisor);
                Assert.Equal(i, report.ConsecutiveFailures);
                if (i > 2) Assert.Contains(report.Actions, a => a.Action == JournalOutage.Action);
            }
            deaths.ExpectNoMsg(TimeSpan.FromMilliseconds(500));
            var spool = HeartbeatSpool.Open(Path.Combine(_directory.FullName, "spool.db"), "pg-outage", new ClawKeeperSerializer((ExtendedActorSystem)Sys));
            Assert.NotEmpty(spool.Pending());
        }
        finally
        {
            await AllowConnectionsAsync(true);
        }
        var back = System.Diagnostics.Stopwatch.StartNew();

        // The supervisor tries again with backoff (at most 30 s + jitter); then the spool is empty.
        var drained = HeartbeatSpool.Open(Path.Combine(_directory.FullName, "spool.db"), "pg-outage", new ClawKeeperSerializer((ExtendedActorSystem)Sys));
        await AwaitAssertAsync(() => Assert.Empty(drained.Pending()), TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(100));
        // A measurement, not an assertion: how long after the database accepted connections again the journal had everything.
        _output.WriteLine($"MEASURED: spool reconciled into the PostgreSQL journal {back.ElapsedMilliseconds} ms after the database accepted connections again");
        deaths.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        Watch(supervisor);
        Sys.Stop(supervisor);
        ExpectTerminated(supervisor);

        var reader = Start("reader.db", runLog);
        var persisted = await reader.Ask<HeartbeatState>(GetHeartbeatState.Instance, TimeSpan.FromSeconds(10));
        Assert.Equal(4, persisted.HeartbeatsRecorded);
        Assert.Equal(4, persisted.ConsecutiveFailures);
        Assert.True(persisted.EscalationRaised);
        await AwaitConditionAsync(() => Task.FromResult(runLog.Written.Count == 4));
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            try { _directory.Delete(recursive: true); } catch (IOException) { }
        }
    }
}
