using System.Text.Json;
using Akka.Actor;
using Akka.Configuration;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Actors.Hosting;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Actors.Tests.Checks.DataIntegrity;
using ClawKeeper.Actors.Tests.Support;
using ClawKeeper.Platform.WriteBlocks;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace ClawKeeper.Actors.Tests.Heartbeat;

/// <summary>The whole heartbeat against a real platform database: write blocks, alerts and watermarks across restarts.</summary>
public class HeartbeatIntegritySpec : Akka.TestKit.Xunit2.TestKit
{
    private static readonly HttpClient Http = new();

    public HeartbeatIntegritySpec(ITestOutputHelper output) : base("""
        akka.persistence.journal.plugin = "akka.persistence.journal.inmem"
        akka.persistence.snapshot-store.plugin = "akka.persistence.snapshot-store.inmem"
        akka.logger-formatter = "Akka.Logger.Serilog.SerilogLogMessageFormatter, Akka.Logger.Serilog"
        """, output)
    {
    }

    private static LoopbackHttpServer? _providers;

    /// <summary>The shipped configuration on this database, with every provider pointed at a healthy loopback stand-in.</summary>
    private static ClawKeeperSettings Settings(string database)
    {
        _providers ??= LoopbackHttpServer.StartAsync().GetAwaiter().GetResult();
        var providers = ProviderStandIns.Hocon(_providers.BaseAddress);
        return ClawKeeperSettings.FromConfig(
            ConfigurationFactory.ParseString($"clawkeeper.platform-db.connection-string = {JsonSerializer.Serialize(database)}\n{providers}")
                .WithFallback(ConfigurationFactory.ParseString(File.ReadAllText(RepositoryFiles.Path("hocon", "clawkeeper.conf")))));
    }

    private async Task<IActorRef> StartAsync(string persistenceId, NpgsqlDataSource platform, ClawKeeperSettings settings)
    {
        var supervisor = Sys.ActorOf(HeartbeatSupervisor.Props(
            HeartbeatComponents.SupervisorOptions(Sys, settings, platform, Http, persistenceId, scheduled: false, dryRun: false)));
        await supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, TimeSpan.FromSeconds(10));
        return supervisor;
    }

    private static async Task<HeartbeatReport> BeatAsync(IActorRef supervisor, bool full = false) =>
        (await supervisor.Ask<HeartbeatCompleted>(new RunHeartbeatNow(full), TimeSpan.FromSeconds(60))).Report;

    private async Task<HeartbeatState> RestartAsync(IActorRef supervisor, string persistenceId, NpgsqlDataSource platform, ClawKeeperSettings settings, Action<IActorRef> keep)
    {
        Watch(supervisor);
        Sys.Stop(supervisor);
        ExpectTerminated(supervisor);
        var restarted = await StartAsync(persistenceId, platform, settings);
        keep(restarted);
        return await restarted.Ask<HeartbeatState>(GetHeartbeatState.Instance, TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task An_audit_gap_blocks_writes_in_the_database_alerts_super_admin_once_and_the_block_survives_a_restart()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await using var platform = NpgsqlDataSource.Create(database);
        var settings = Settings(database);
        await Integrity.TamperAsync(database, "delete from audit_log where tenant_id = 't-summit-hvac' and seq = 7");

        var supervisor = await StartAsync("gap", platform, settings);
        var report = await BeatAsync(supervisor);
        Assert.Equal(HeartbeatStatus.Fail, report.Status);
        var audit = report.Groups.Single(g => g.Group == CheckGroups.DataIntegrity).Checks.Single(c => c.Check == "audit_log_continuous");
        Assert.Equal(CheckStatus.Fail, audit.Status);
        Assert.Contains("tenant t-summit-hvac: seq 7 missing (gap in the chain) (after seq 6 at ", audit.Detail);
        var action = Assert.Single(report.Actions, a => a.Action == "block_writes");
        Assert.StartsWith("done: write block #", action.Outcome);
        Assert.True(report.WriteBlock.Active);
        var alert = Assert.Single(report.Alerts, a => a.DedupKey == HeartbeatDecisions.CheckDedupKey("data_integrity", "audit_log_continuous"));
        Assert.Equal("super_admin", alert.Audience);
        Assert.Contains("t-summit-hvac", alert.Summary);

        // The database refuses writes now, whoever writes.
        var refused = await Assert.ThrowsAsync<PostgresException>(() => Sql.ExecuteAsync(database,
            "insert into journal_entries (id, tenant_id) values ('je-blocked', 't-acme-bakery')"));
        Assert.Equal(WriteBlockStore.BlockedSqlState, refused.SqlState);

        // A restart keeps the block (and does not alert again for the same incident).
        var state = await RestartAsync(supervisor, "gap", platform, settings, r => supervisor = r);
        Assert.True(state.WriteBlock.Active);
        Assert.Equal(report.WriteBlock.BlockId, state.WriteBlock.BlockId);
        var again = await BeatAsync(supervisor);
        Assert.Contains(again.Actions, a => a.Action == "block_writes" && a.Outcome.StartsWith("already in force", StringComparison.Ordinal));
        Assert.DoesNotContain(again.Alerts, a => a.DedupKey == alert.DedupKey);

        // A super_admin lifts it while the gap is still there: the next heartbeat notices, and blocks again.
        await new WriteBlockStore(platform).LiftAsync("super_admin:test", "forced for a repair");
        var afterLift = await BeatAsync(supervisor);
        Assert.Contains(afterLift.Actions, a => a.Action == "write_block_lifted" && a.Detail.Contains("super_admin:test"));
        Assert.Contains(afterLift.Actions, a => a.Action == "block_writes" && a.Outcome.StartsWith("done: write block #", StringComparison.Ordinal));
        Assert.NotEqual(report.WriteBlock.BlockId, afterLift.WriteBlock.BlockId);
    }

    [Fact]
    public async Task Watermarks_survive_a_restart_so_the_next_heartbeat_is_incremental()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await using var platform = NpgsqlDataSource.Create(database);
        var settings = Settings(database);
        var supervisor = await StartAsync("watermarks", platform, settings);

        var first = await BeatAsync(supervisor);
        Assert.True(first.Status == HeartbeatStatus.Pass, string.Join("; ", first.Problems().Select(p => p.Check.Check + ": " + p.Check.Detail)));
        Assert.Contains("(full verification)", Observed(first, "audit_log_continuous"));

        var state = await RestartAsync(supervisor, "watermarks", platform, settings, r => supervisor = r);
        Assert.Equal(4, state.Watermarks.Audit.Count);
        Assert.True(state.Watermarks.LedgerLineId > 0);
        Assert.NotNull(state.Watermarks.LastFullVerificationAt);

        await Sql.ExecuteAsync(database, """
            begin; select set_config('app.tenant_id', 't-acme-bakery', true);
            insert into audit_log (tenant_id, actor, action) values ('t-acme-bakery', 'carol', 'report.exported');
            commit;
            """);
        var second = await BeatAsync(supervisor);
        Assert.Equal(HeartbeatStatus.Pass, second.Status);
        Assert.StartsWith("1 entries verified (incremental)", Observed(second, "audit_log_continuous"));

        var onDemand = await BeatAsync(supervisor, full: true);
        Assert.Contains("(full verification)", Observed(onDemand, "audit_log_continuous"));
    }

    [Fact]
    public async Task A_block_imposed_while_the_database_is_unreachable_is_applied_when_it_returns()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await using var platform = NpgsqlDataSource.Create(database);
        var guard = new PlatformWriteBlockGuard(platform);
        var down = new NpgsqlConnectionStringBuilder(database) { Port = LoopbackHttpServer.RefusingAddress().Port, Timeout = 2 };
        await using var unreachable = NpgsqlDataSource.Create(down.ConnectionString);
        var failure = new IntegrityFailure("financial_totals_balance: tenant t-acme-bakery off by 0.01", new[] { "financial_totals_balance" });

        var held = await new PlatformWriteBlockGuard(unreachable).ReconcileAsync(WriteBlockState.None, failure, DateTimeOffset.UtcNow, CancellationToken.None);
        var imposed = Assert.IsType<WriteBlockImposed>(Assert.Single(held.Events));
        Assert.Contains("database is unreachable", Assert.Single(held.Actions).Outcome);
        var state = HeartbeatState.Empty.Apply(imposed);
        Assert.True(state.WriteBlock.AwaitingDatabase);

        // The database is back; the failure itself may no longer be observable (no failure passed): the held block is still applied.
        var applied = await guard.ReconcileAsync(state.WriteBlock, null, DateTimeOffset.UtcNow, CancellationToken.None);
        var blockId = Assert.IsType<WriteBlockApplied>(Assert.Single(applied.Events)).BlockId;
        Assert.Contains("re-applied after the database returned", Assert.Single(applied.Actions).Outcome);
        Assert.Equal(blockId, (await new WriteBlockStore(platform).StatusAsync()).Open!.Id);
    }

    private static string Observed(HeartbeatReport report, string check) =>
        report.AllChecks().Single(c => c.Check.Check == check).Check.Observed;
}
