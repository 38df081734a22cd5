using Akka.Actor;
using Akka.Persistence;
using Akka.Persistence.TestKit;
using Akka.TestKit;
using ClawKeeper.Actors.Alerts;
using ClawKeeper.Actors.Alerts.Channels;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Actors.Heartbeat.Journal;
using ClawKeeper.Actors.Orchestrators;
using ClawKeeper.Actors.Serialization;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Actors.Tests.Alerts.Channels;
using ClawKeeper.Actors.Tests.Support;
using ClawKeeper.Testing;
using Xunit;
using Xunit.Abstractions;

namespace ClawKeeper.Actors.Tests.Heartbeat.Journal;

/// <summary>
/// Issue 11 item 2, "never silent": a journal that cannot be written (Akka.Persistence.TestKit's TestJournal
/// fails every write or recovery) never stops the supervisor; heartbeats keep their cadence (virtual time),
/// super_admin is alerted by e-mail (loopback SMTP) and Discord (stand-in on loopback), the local spool keeps
/// everything across a restart, and the journal gets every batch exactly once when it returns.
/// </summary>
public class NeverSilentSpec : Akka.TestKit.Xunit2.TestKit, IDisposable
{
    private const string Config = """
        akka.scheduler.implementation = "Akka.TestKit.TestScheduler, Akka.TestKit"
        akka.persistence.journal.plugin = "akka.persistence.journal.test"
        akka.persistence.journal.test {
          class = "Akka.Persistence.TestKit.TestJournal, Akka.Persistence.TestKit"
          plugin-dispatcher = "akka.actor.default-dispatcher"
        }
        akka.persistence.snapshot-store.plugin = "akka.persistence.snapshot-store.inmem"
        akka.logger-formatter = "Akka.Logger.Serilog.SerilogLogMessageFormatter, Akka.Logger.Serilog"
        """;


    private static readonly HeartbeatSettings Settings = new(
        Interval: TimeSpan.FromMinutes(1),
        InitialDelay: TimeSpan.FromSeconds(15),
        GroupTimeout: TimeSpan.FromSeconds(10),
        EscalateAfterFailures: 3,
        SnapshotEvery: 2,
        Retry: RetryPolicy.Immediate);

    /// <summary>Beyond the longest journal backoff (30 s + 20 % jitter).</summary>
    private static readonly TimeSpan PastJournalBackoff = TimeSpan.FromSeconds(40);

    private readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("clawkeeper-spool-");
    private readonly TestProbe _completed;

    public NeverSilentSpec(ITestOutputHelper output) : base(Config, output)
    {
        _completed = CreateTestProbe();
        Sys.EventStream.Subscribe(_completed, typeof(HeartbeatCompleted));
    }

    private TestScheduler Scheduler => (TestScheduler)Sys.Scheduler;

    private ITestJournal Journal => TestJournal.FromRef(Persistence.Instance.Apply(Sys).JournalFor(null));

    private string SpoolPath(string name) => Path.Combine(_directory.FullName, name, "heartbeat-spool.db");

    private static AlertDelivery Delivery(int smtpPort, Uri webhook) => LoopbackAlertDelivery.ToSuperAdmin(smtpPort, webhook);

    private IActorRef Start(string persistenceId, string? spoolPath, Func<CheckStatus> status, IHeartbeatRunLog runLog, AlertDelivery? alerts = null, bool scheduled = false)
    {
        var options = new HeartbeatSupervisorOptions(persistenceId, Settings, new[] { TestGroups.Scripted("system_health", status) },
            Array.Empty<OrchestratorDefinition>(), runLog, Scheduled: scheduled, Alerts: alerts, SpoolPath: spoolPath);
        var supervisor = Sys.ActorOf(HeartbeatSupervisor.Props(options));
        // Answered once the supervisor runs (from the journal, or from the spool when the journal cannot be read).
        supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, TimeSpan.FromSeconds(20)).Wait();
        return supervisor;
    }

    private void Stop(IActorRef supervisor)
    {
        Watch(supervisor);
        Sys.Stop(supervisor);
        ExpectTerminated(supervisor);
        Unwatch(supervisor);
    }

    private static HeartbeatState StateOf(IActorRef supervisor) =>
        supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, TimeSpan.FromSeconds(10)).Result;

    private static HeartbeatReport Beat(IActorRef supervisor) =>
        supervisor.Ask<HeartbeatCompleted>(RunHeartbeatNow.Instance, TimeSpan.FromSeconds(20)).Result.Report;

    private HeartbeatSpool OpenSpool(string path, string persistenceId) =>
        HeartbeatSpool.Open(path, persistenceId, new ClawKeeperSerializer((ExtendedActorSystem)Sys));

    /// <summary>What the journal alone holds: a fresh supervisor with an empty spool of its own recovers it.</summary>
    private HeartbeatState JournalState(string persistenceId)
    {
        var reader = Start(persistenceId, SpoolPath($"reader-{Guid.NewGuid():N}"), () => CheckStatus.Pass, new RecordingRunLog());
        var state = StateOf(reader);
        Stop(reader);
        return state;
    }

    [Fact]
    public async Task A_journal_that_cannot_be_written_keeps_the_cadence_alerts_super_admin_and_gets_every_batch_exactly_once_when_it_returns()
    {
        await using var smtp = await LoopbackSmtpServer.StartAsync();
        await using var discord = await DiscordStandIn.StartAsync();
        var status = CheckStatus.Fail;
        var runLog = new RecordingRunLog { Down = true }; // the platform database is down as well
        var spoolPath = SpoolPath("outage");
        var supervisor = Start("outage", spoolPath, () => status, runLog, Delivery(smtp.Port, discord.Webhook), scheduled: true);
        var deaths = CreateTestProbe();
        deaths.Watch(supervisor);

        await Journal.OnWrite.Fail();
        var reports = new List<HeartbeatReport>();
        for (var i = 1; i <= 5; i++)
        {
            var wait = i == 1 ? Settings.InitialDelay : Settings.Interval;
            Scheduler.Advance(wait - TimeSpan.FromSeconds(1));
            _completed.ExpectNoMsg(TimeSpan.FromMilliseconds(150)); // not before its time ...
            Scheduler.Advance(TimeSpan.FromSeconds(1));
            var report = _completed.ExpectMsg<HeartbeatCompleted>(TimeSpan.FromSeconds(10)).Report; // ... and never skipped
            reports.Add(report);
            Assert.Equal(HeartbeatStatus.Fail, report.Status);
            Assert.Equal(i, report.ConsecutiveFailures);
        }

        // From the second heartbeat on (the first one found out by trying), each report names the journal problem.
        Assert.DoesNotContain(reports[0].Actions, a => a.Action == JournalOutage.Action);
        foreach (var report in reports.Skip(1))
        {
            var journal = Assert.Single(report.Actions, a => a.Action == JournalOutage.Action);
            Assert.StartsWith("journal unreachable since", journal.Detail);
            Assert.Contains("state kept in the local spool", journal.Outcome);
        }
        var escalation = Assert.Single(reports[2].Alerts, a => a.DedupKey == HeartbeatDecisions.ConsecutiveFailuresDedupKey);
        Assert.Contains("database/journal is unreachable", escalation.Summary);

        // super_admin heard of it during the outage, by e-mail and Discord, once.
        var mail = Assert.Single(await smtp.WaitForAsync(1));
        Assert.Contains("database/journal is unreachable", mail.Message.TextBody);
        await AwaitConditionAsync(() => Task.FromResult(discord.Requests.Count >= 1));
        Assert.Contains("unreachable", Assert.Single(discord.Requests).Body);

        // Not one restart of the supervisor; the spool holds what the journal does not.
        deaths.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        Assert.NotEmpty(OpenSpool(spoolPath, "outage").Pending());
        Assert.Equal(5, StateOf(supervisor).ConsecutiveFailures);

        // The journal and the database return.
        await Journal.OnWrite.Pass();
        runLog.Down = false;
        Scheduler.Advance(PastJournalBackoff); // a new journal, and the agent_runs retry (every 30 s); the next tick is later
        await AwaitConditionAsync(() => Task.FromResult(runLog.Written.Count == 5));
        Assert.Equal(reports.Select(r => r.Id), runLog.Written.Select(r => r.Id));
        await AwaitConditionAsync(() => Task.FromResult(StateOf(supervisor).UnloggedRuns.IsEmpty));
        await AwaitAssertAsync(() => Assert.Empty(OpenSpool(spoolPath, "outage").Pending()), TimeSpan.FromSeconds(10));
        Stop(supervisor);
        deaths.ExpectTerminated(supervisor);

        // The journal alone now holds all of it, each batch once.
        var persisted = JournalState("outage");
        Assert.Equal(5, persisted.HeartbeatsRecorded);
        Assert.Equal(5, persisted.ConsecutiveFailures);
        Assert.True(persisted.EscalationRaised);
        Assert.Empty(persisted.Outbox); // the deliveries made during the outage are in it too
        Assert.Empty(persisted.UnloggedRuns);

        // The next passing heartbeat resolves the incident: the resolved notice goes out.
        status = CheckStatus.Pass;
        var again = Start("outage", spoolPath, () => status, runLog, Delivery(smtp.Port, discord.Webhook));
        Assert.Equal(HeartbeatStatus.Pass, Beat(again).Status);
        var mails = await smtp.WaitForAsync(2);
        Assert.Contains("RESOLVED", mails[1].Message.Subject, StringComparison.OrdinalIgnoreCase);
        await AwaitConditionAsync(() => Task.FromResult(discord.Requests.Count == 2));
    }

    [Fact]
    public async Task A_restart_during_the_outage_resumes_from_the_spool_and_sends_no_alert_twice()
    {
        await using var smtp = await LoopbackSmtpServer.StartAsync();
        await using var discord = await DiscordStandIn.StartAsync();
        var runLog = new RecordingRunLog { Down = true };
        var spoolPath = SpoolPath("restart");
        var delivery = Delivery(smtp.Port, discord.Webhook);

        await Journal.OnWrite.Fail();
        var first = Start("restart", spoolPath, () => CheckStatus.Fail, runLog, delivery);
        Assert.Equal(1, Beat(first).ConsecutiveFailures);
        Assert.Equal(2, Beat(first).ConsecutiveFailures);
        Stop(first);

        // The node restarts; the journal can be read (it holds nothing of the outage): the spool fills the gap.
        var second = Start("restart", spoolPath, () => CheckStatus.Fail, runLog, delivery);
        Assert.Equal(2, StateOf(second).ConsecutiveFailures);
        var third = Beat(second);
        Assert.Equal(3, third.ConsecutiveFailures);
        Assert.Contains(third.Alerts, a => a.DedupKey == HeartbeatDecisions.ConsecutiveFailuresDedupKey);
        Assert.Single(await smtp.WaitForAsync(1));
        await AwaitConditionAsync(() => Task.FromResult(discord.Requests.Count == 1));
        await AwaitConditionAsync(() => Task.FromResult(StateOf(second).Outbox.IsEmpty));
        Stop(second);

        // Restarted again, and now the journal cannot even be read: the spool's last state is the start.
        await Journal.OnRecovery.Fail();
        var third2 = Start("restart", spoolPath, () => CheckStatus.Fail, runLog, delivery);
        var resumed = StateOf(third2);
        Assert.Equal(3, resumed.ConsecutiveFailures);
        Assert.Equal(3, resumed.HeartbeatsRecorded);
        Assert.True(resumed.EscalationRaised);
        Assert.Empty(resumed.Outbox);
        await Task.Delay(1000);
        Assert.Single(smtp.Received); // nothing sent twice
        Assert.Single(discord.Requests);

        // The journal returns: everything of the outage goes in, once.
        await Journal.OnRecovery.Pass();
        await Journal.OnWrite.Pass();
        Scheduler.Advance(PastJournalBackoff);
        await AwaitAssertAsync(() => Assert.Empty(OpenSpool(spoolPath, "restart").Pending()), TimeSpan.FromSeconds(10));
        Stop(third2);
        var persisted = JournalState("restart");
        Assert.Equal(3, persisted.HeartbeatsRecorded);
        Assert.Equal(3, persisted.ConsecutiveFailures);
        Assert.True(persisted.EscalationRaised);
        Assert.Empty(persisted.Outbox);
        Assert.Single(smtp.Received);
        Assert.Single(discord.Requests);
    }

    [Fact]
    public void A_batch_the_journal_holds_but_the_spool_still_lists_is_not_written_twice()
    {
        var report = Beat(Start("marker-source", null, () => CheckStatus.Fail, new RecordingRunLog()));
        var spoolPath = SpoolPath("marker");
        var spool = OpenSpool(spoolPath, "marker");
        var events = new IHeartbeatEvent[] { new HeartbeatRecorded(report) };
        var seq = spool.Append(events, events.Aggregate(HeartbeatState.Empty, (s, e) => s.Apply(e)));

        // The journal wrote the batch with its marker, then the node died before the spool was trimmed.
        var parent = CreateTestProbe();
        var journal = parent.ChildActorOf(HeartbeatJournal.Props("marker", 100));
        parent.ExpectMsg<JournalRecovered>();
        journal.Tell(new PersistBatch(seq, events, spool.SpoolId), parent);
        Assert.Equal(1, parent.ExpectMsg<BatchPersisted>().State.HeartbeatsRecorded);
        Watch(journal);
        Sys.Stop(journal);
        ExpectTerminated(journal);
        Assert.Single(spool.Pending());

        var supervisor = Start("marker", spoolPath, () => CheckStatus.Fail, new RecordingRunLog());
        var state = StateOf(supervisor);
        Assert.Equal(1, state.HeartbeatsRecorded); // not 2
        Assert.Equal(1, state.ConsecutiveFailures);
        Assert.Empty(spool.Pending()); // trimmed at start
        Assert.Equal(2, Beat(supervisor).ConsecutiveFailures);
        Stop(supervisor);
        Assert.Equal(2, JournalState("marker").HeartbeatsRecorded);
    }

    [Fact]
    public void Spooled_batches_older_than_the_journals_latest_heartbeat_are_dropped_not_replayed()
    {
        // This node kept a heartbeat in its spool (the journal was down when it stopped) ...
        var old = Beat(Start("stale-source", null, () => CheckStatus.Fail, new RecordingRunLog()));
        var spoolPath = SpoolPath("stale");
        var spool = OpenSpool(spoolPath, "stale");
        var events = new IHeartbeatEvent[] { new HeartbeatRecorded(old) };
        spool.Append(events, events.Aggregate(HeartbeatState.Empty, (s, e) => s.Apply(e)));

        // ... and meanwhile the singleton ran elsewhere and the journal moved on.
        Scheduler.Advance(TimeSpan.FromMinutes(5));
        var elsewhere = Start("stale", SpoolPath("elsewhere"), () => CheckStatus.Pass, new RecordingRunLog());
        var newer = Beat(elsewhere);
        Stop(elsewhere);

        var supervisor = Start("stale", spoolPath, () => CheckStatus.Pass, new RecordingRunLog());
        var state = StateOf(supervisor);
        Assert.Equal(1, state.HeartbeatsRecorded);
        Assert.Equal(newer.Id, state.Latest!.Id);
        Assert.Empty(spool.Pending());
    }

    [Fact]
    public void A_spool_that_cannot_be_opened_is_named()
    {
        var file = Path.Combine(_directory.FullName, "not-a-folder");
        File.WriteAllText(file, "x");
        var error = Assert.Throws<InvalidOperationException>(() => OpenSpool(Path.Combine(file, "spool.db"), "p"));
        Assert.Contains("cannot open the heartbeat spool", error.Message);
        Assert.Contains(file, error.Message);
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
