using System.Collections.Immutable;
using Akka.Actor;
using System.Runtime.Serialization;
using ClawKeeper.Actors.Alerts;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.DataIntegrity;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Actors.Hosting;
using ClawKeeper.Actors.Serialization;
using Xunit;

namespace ClawKeeper.Actors.Tests.Serialization;

public class ClawKeeperSerializerSpec : Akka.TestKit.Xunit2.TestKit
{
    public ClawKeeperSerializerSpec() : base("""
        akka.actor.serializers.clawkeeper-json = "ClawKeeper.Actors.Serialization.ClawKeeperSerializer, ClawKeeper.Actors"
        akka.actor.serialization-bindings { "ClawKeeper.Actors.Serialization.IClawKeeperMessage, ClawKeeper.Actors" = clawkeeper-json }
        akka.actor.serialization-identifiers { "ClawKeeper.Actors.Serialization.ClawKeeperSerializer, ClawKeeper.Actors" = 4242 }
        """)
    {
    }

    private static readonly HeartbeatReport Report = new(
        "heartbeat-2026-11-28T04:00:00Z",
        new DateTimeOffset(2026, 11, 28, 4, 0, 0, TimeSpan.Zero),
        new DateTimeOffset(2026, 11, 28, 4, 0, 1, 250, TimeSpan.Zero),
        HeartbeatStatus.Fail,
        3,
        new WriteBlockReport(false),
        new[] { new GroupReport("task_queue", CheckStatus.Fail, new[] { new CheckResult("queue_depth", CheckStatus.Fail, "168 pending", "pending < 100", "cfo 20", 4) }) },
        new[] { new ActionReport("none", "nothing to do", "done") },
        new[] { new AlertReport("super_admin", new[] { "email", "discord" }, HeartbeatDecisions.ConsecutiveFailuresDedupKey, "critical", "3 failed", "recorded") });

    private static readonly Incident Incident = new(HeartbeatDecisions.ConsecutiveFailuresDedupKey, "super_admin", new[] { "email", "discord" }, "critical",
        "3 consecutive failed heartbeats", new[] { new NotificationLine("task_queue", "queue_depth", "fail", "168 pending", "pending < 100", "cfo 20") },
        Report.StartedAt, Report.CompletedAt, false, false, null);

    private static readonly QueuedNotification Queued = new(
        new Notification("heartbeat-2026-11-28T04:00:00Z:super_admin:firing", "super_admin", NotificationKind.Firing, "critical", "CRITICAL: 1 alert",
            "3 failed", new[] { Incident.DedupKey }, Incident.Lines, Report.Id, Report.CompletedAt),
        ImmutableHashSet.Create("email", "discord"));

    public static IEnumerable<object[]> Messages() => new[]
    {
        new object[] { new HeartbeatRecorded(Report) },
        new object[] { new HeartbeatRunLogged(Report.Id) },
        new object[] { new HeartbeatState(3, 17, Report, ImmutableList.Create(Report),
            ImmutableDictionary<string, Incident>.Empty.Add(HeartbeatDecisions.ConsecutiveFailuresDedupKey, Incident),
            ImmutableDictionary<string, QueuedNotification>.Empty.Add(Queued.Notification.Id, Queued),
            new IntegrityWatermarks(ImmutableDictionary<string, AuditPosition>.Empty.Add("t-1", new AuditPosition(42, new string('a', 64))), 1234, Report.CompletedAt),
            new WriteBlockState(true, "financial_totals_balance: tenant t-1 off by 0.01", new[] { "financial_totals_balance" }, Report.CompletedAt, 7)) },
        new object[] { new IntegrityVerified(new IntegrityWatermarks(ImmutableDictionary<string, AuditPosition>.Empty.Add("t-2", new AuditPosition(1, new string('b', 64))), 9, null,
            "7716187746021759722/16384/platform", 4_294_967_800, 812, ImmutableDictionary<string, long>.Empty.Add("t-2", 40))) },
        new object[] { new WriteBlockImposed("audit gap", new[] { "audit_log_continuous" }, Report.StartedAt) },
        new object[] { new WriteBlockApplied(12) },
        new object[] { new IncidentsUpdated(ImmutableDictionary<string, Incident>.Empty.Add(Incident.DedupKey, Incident)) },
        new object[] { new NotificationsQueued(new[] { Queued }) },
        new object[] { new NotificationDelivered(Queued.Notification.Id, "email", Report.CompletedAt) },
        new object[] { new WriteBlockLifted(12, "super_admin:ops", "repaired", Report.CompletedAt) },
        new object[] { new BreakersObserved(ImmutableDictionary<string, ClawKeeper.Actors.Integrations.BreakerObservation>.Empty
            .Add("plaid", new ClawKeeper.Actors.Integrations.BreakerObservation("plaid", Report.StartedAt, 2, TimeSpan.FromSeconds(60)))) },
        new object[] { RunHeartbeatNow.Instance },
        new object[] { new HeartbeatCompleted(Report) },
        new object[] { GetHeartbeatState.Instance },
        new object[] { ReconcileWriteBlock.Instance },
        new object[] { new CheckStatesObserved(States) },
        new object[] { new ClawKeeper.Actors.Heartbeat.Journal.SpoolReconciled("3f2a9c", 17) },
        new object[] { new ClawKeeper.Actors.Heartbeat.Journal.HeartbeatJournalSnapshot(HeartbeatState.Empty.Apply(new HeartbeatRecorded(Report)),
            ImmutableDictionary<string, long>.Empty.Add("3f2a9c", 17)) },
        new object[] { new HeartbeatRecorded(Report with
        {
            Groups = new[] { new GroupReport("system_health", CheckStatus.Error, new[] { new CheckResult("api_server_responding", CheckStatus.Error, "no answer", "2xx", "refused", 3)
                { State = "soft", Attempt = "2/3", Flapping = false, CarriedFrom = "heartbeat-2026-11-28T03:59:00Z" } }) },
            Actions = new[] { new ActionReport("restart_api_server", "error: refused", "restarted: listening again") { Recheck = "GET /health answered 200 in 3 ms" } },
            Rechecked = new[] { "system_health/api_server_responding" },
        }) },
        new object[] { HeartbeatState.Empty.Apply(new CheckStatesObserved(States)) },
        new object[] { new ClawKeeper.Actors.Orchestrators.RestartOrchestrators(new[] { "cfo", "support-lead" }, "heartbeat-2026-11-28T04:00:00Z: orchestrators_reachable") },
        new object[] { new ClawKeeper.Actors.Orchestrators.OrchestratorsRestarted(new[] { new ClawKeeper.Actors.Orchestrators.OrchestratorRestartOutcome("cfo", true, "restarted as cfo-1 (start #2)") }) },
        new object[] { new ClawKeeper.Actors.Orchestrators.PingOrchestrator("cfo") },
        new object[] { new ClawKeeper.Actors.Orchestrators.OrchestratorPong("cfo", 16, 3) },
        new object[] { new ClawKeeper.Actors.Orchestrators.UnknownOrchestrator("chief-fun-officer") },
        new object[] { new ClawKeeper.Actors.Orchestrators.OrchestratorRestarting("cfo", 4, Report.CompletedAt) },
        new object[] { new ClawKeeper.Actors.Orchestrators.OrchestratorEscalation("cfo", 5, TimeSpan.FromMinutes(1), "InvalidOperationException: boom", TimeSpan.FromSeconds(8)) },
    };

    private static readonly CheckStates States = new(
        ImmutableDictionary<string, CheckState>.Empty
            .Add("system_health/api_server_responding", new CheckState(CheckStatus.Error, 2, false, "0010101", true, 0.3125, Report.CompletedAt))
            .Add("data_integrity/audit_log_continuous", new CheckState(CheckStatus.Pass, 1, true, "00", false, 0, Report.CompletedAt)),
        true, Report.StartedAt, Report.StartedAt.AddHours(-4));

    [Theory]
    [MemberData(nameof(Messages))]
    public void Every_persisted_event_and_cluster_message_round_trips_through_its_own_serializer(object message)
    {
        var serializer = Sys.Serialization.FindSerializerFor(message);
        Assert.IsType<ClawKeeperSerializer>(serializer);
        var manifest = Akka.Serialization.Serialization.ManifestFor(serializer, message);
        Assert.Matches(@"\.v\d+$", manifest);
        var back = Sys.Serialization.Deserialize(serializer.ToBinary(message), serializer.Identifier, manifest);
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(message, message.GetType()), System.Text.Json.JsonSerializer.Serialize(back, back.GetType()));
    }

    [Fact]
    public void Every_registered_manifest_has_a_sample_here()
    {
        var serializer = new ClawKeeperSerializer((ExtendedActorSystem)Sys);
        Assert.Equal(ClawKeeperSerializer.Manifests.OrderBy(m => m, StringComparer.Ordinal),
            Messages().Select(m => serializer.Manifest(m[0])).Distinct().OrderBy(m => m, StringComparer.Ordinal));
    }

    [Fact]
    public void A_v1_heartbeat_event_written_today_is_read_tomorrow()
    {
        // Frozen bytes of heartbeat-recorded.v1: if this test breaks, add a v2 manifest instead of changing v1.
        const string frozen = """
            {"report":{"id":"heartbeat-2026-11-28T04:00:00Z","startedAt":"2026-11-28T04:00:00+00:00","completedAt":"2026-11-28T04:00:01.25+00:00","status":"fail","consecutiveFailures":3,"writeBlock":{"active":false},"groups":[{"group":"task_queue","status":"fail","checks":[{"check":"queue_depth","status":"fail","observed":"168 pending","threshold":"pending < 100","detail":"cfo 20","durationMs":4}]}],"actions":[],"alerts":[],"dryRun":false,"durationMs":1250}}
            """;
        var serializer = new ClawKeeperSerializer((ExtendedActorSystem)Sys);
        var recorded = Assert.IsType<HeartbeatRecorded>(serializer.FromBinary(System.Text.Encoding.UTF8.GetBytes(frozen), "heartbeat-recorded.v1"));
        Assert.Equal(3, recorded.Report.ConsecutiveFailures);
        Assert.Equal(CheckStatus.Fail, recorded.Report.Groups[0].Checks[0].Status);
        Assert.Equal(1250, recorded.Report.DurationMs);
    }

    [Fact]
    public void V1_watermarks_without_change_horizons_are_read_by_the_v2_shape()
    {
        // Frozen bytes of integrity-verified.v1 (before change horizons and kept line counts).
        const string frozen = """
            {"watermarks":{"audit":{"t-2":{"seq":17,"hash":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}},"ledgerLineId":9,"lastFullVerificationAt":"2026-11-28T04:00:00+00:00","platformFingerprint":"7716187746021759722/16384/platform"}}
            """;
        var serializer = new ClawKeeperSerializer((ExtendedActorSystem)Sys);
        var verified = Assert.IsType<IntegrityVerified>(serializer.FromBinary(System.Text.Encoding.UTF8.GetBytes(frozen), "integrity-verified.v1"));
        Assert.Equal(17, verified.Watermarks.Audit["t-2"].Seq);
        Assert.Equal(9, verified.Watermarks.LedgerLineId);
        Assert.Null(verified.Watermarks.AuditHorizon); // the next round examines every row once and records one
        Assert.Null(verified.Watermarks.LedgerLineCounts);
        Assert.Equal("integrity-verified.v2", serializer.Manifest(verified));
    }

    [Fact]
    public void An_escalation_written_before_it_kept_what_it_told_is_read_without_it()
    {
        // Frozen bytes of incidents-updated.v1 as written before Incident.Told (AlertDecisions then takes the checks its summary names).
        const string frozen = """
            {"incidents":{"heartbeat:consecutive-failures:super_admin":{"dedupKey":"heartbeat:consecutive-failures:super_admin","audience":"super_admin","channels":["email","discord"],"severity":"critical","summary":"3 consecutive failed heartbeats; failing now: task_queue/queue_depth","lines":[{"group":"task_queue","check":"queue_depth","status":"fail","observed":"168 pending","threshold":"pending < 100","detail":"cfo 20"}],"openedAt":"2026-11-28T04:00:01+00:00","lastNotifiedAt":"2026-11-28T04:00:01+00:00","acknowledged":false,"suppressed":false,"resolvedAt":null}}}
            """;
        var serializer = new ClawKeeperSerializer((ExtendedActorSystem)Sys);
        var updated = Assert.IsType<IncidentsUpdated>(serializer.FromBinary(System.Text.Encoding.UTF8.GetBytes(frozen), "incidents-updated.v1"));
        var escalation = updated.Incidents[HeartbeatDecisions.ConsecutiveFailuresDedupKey];
        Assert.Null(escalation.Told);
        Assert.Equal("queue_depth", Assert.Single(escalation.Lines).Check);
    }

    [Fact]
    public void An_unknown_manifest_is_refused_by_name()
    {
        var serializer = new ClawKeeperSerializer((ExtendedActorSystem)Sys);
        var error = Assert.Throws<SerializationException>(() => serializer.FromBinary(new byte[] { 0x7b, 0x7d }, "heartbeat-recorded.v9"));
        Assert.Contains("heartbeat-recorded.v9", error.Message);
    }

    [Fact]
    public void The_hosting_extension_binds_the_marker_interface()
    {
        // Guard against a message type that implements the marker but has no manifest.
        var missing = typeof(IClawKeeperMessage).Assembly.GetTypes()
            .Where(t => typeof(IClawKeeperMessage).IsAssignableFrom(t) && t is { IsInterface: false, IsAbstract: false })
            .Where(t => !ClawKeeperSerializer.Manifests.Any(m => SafeManifest(t) == m))
            .ToList();
        Assert.Empty(missing);
        Assert.Equal("clawkeeper", ClawKeeperAkkaExtensions.ActorSystemName);
    }

    private static string? SafeManifest(Type type)
    {
        try
        {
            var instance = System.Runtime.CompilerServices.RuntimeHelpers.GetUninitializedObject(type);
            return new ClawKeeperSerializer(null!).Manifest(instance);
        }
        catch (ArgumentException)
        {
            return null;
        }
    }
}
