using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Security.Cryptography;
using System.Text;
using Akka.Actor;
using Akka.Event;
using Akka.Hosting;
using ClawKeeper.Actors.Alerts;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Actors.Hosting;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Host.Ops;
using ClawKeeper.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;

namespace ClawKeeper.Host.Tests.Ops;

/// <summary>What the stand-in supervisor answers and what it was told.</summary>
public sealed class StandInControl
{
    private HeartbeatState _state = HeartbeatState.Empty;

    public HeartbeatState State
    {
        get => Volatile.Read(ref _state);
        set => Volatile.Write(ref _state, value);
    }

    /// <summary>False: GetHeartbeatState goes unanswered (a singleton that is not reachable).</summary>
    public volatile bool Answers = true;

    public ConcurrentQueue<RunHeartbeatNow> Runs { get; } = new();

    /// <summary>How often the supervisor was told to reconcile its write block (after an ops unblock).</summary>
    public int Reconciles;
}

/// <summary>Stands in for the heartbeat supervisor under <see cref="HeartbeatSupervisorKey"/>.</summary>
public sealed class StandInSupervisor : ReceiveActor
{
    public StandInSupervisor(StandInControl control)
    {
        Receive<GetHeartbeatState>(_ =>
        {
            if (control.Answers) Sender.Tell(control.State);
        });
        Receive<RunHeartbeatNow>(run => control.Runs.Enqueue(run));
        Receive<ReconcileWriteBlock>(_ => Interlocked.Increment(ref control.Reconciles));
    }
}

/// <summary>Collects the warnings published on the event stream.</summary>
public sealed class WarningCollector : ReceiveActor
{
    public WarningCollector(ConcurrentQueue<string> warnings) =>
        Receive<Warning>(warning => warnings.Enqueue(warning.ToString()));
}

/// <summary>
/// A generic host with Akka.Hosting, the ops routes (Kestrel) on a free port of 127.0.0.1, a stand-in
/// heartbeat supervisor and a real platform database.
/// </summary>
public sealed class OpsTestHost : IAsyncDisposable
{
    public const string Token = "ops-token-correct-horse";
    public static readonly string TokenSha256 = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Token)));
    public const string SuperAdminToken = "super-admin-token-battery-staple";
    public const string ReadToken = "ops-read-token-tr0ub4dor";
    public static readonly string ReadTokenSha256 = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(ReadToken)));
    public static readonly string SuperAdminTokenSha256 = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(SuperAdminToken)));

    private OpsTestHost(IHost host, StandInControl control, NpgsqlDataSource platform, string database, ConcurrentQueue<string> warnings)
    {
        Host = host;
        Control = control;
        Platform = platform;
        Database = database;
        Warnings = warnings;
        System = host.Services.GetRequiredService<ActorSystem>();
        BaseUri = System.OpsBaseUri() ?? throw new InvalidOperationException("the ops routes are not configured");
        Http = new HttpClient { BaseAddress = BaseUri, Timeout = TimeSpan.FromSeconds(30) };
    }

    public IHost Host { get; }
    public ActorSystem System { get; }
    public StandInControl Control { get; }
    public NpgsqlDataSource Platform { get; }
    public string Database { get; }
    public ConcurrentQueue<string> Warnings { get; }
    public Uri BaseUri { get; }
    public HttpClient Http { get; }

    public static async Task<OpsTestHost> StartAsync(
        string database,
        HeartbeatState? state = null,
        string? tokenSha256 = null,
        bool clustered = false,
        TimeSpan? heartbeatInterval = null,
        TimeSpan? askTimeout = null,
        bool answers = true,
        JournalSettings? journal = null,
        OpsWriteSettings? writes = null,
        ClawKeeperSettings? realSupervisor = null,
        string? extraHocon = null,
        bool exposeTenantDetails = true,
        string? readTokenSha256 = null,
        TimeSpan? healthCache = null,
        TimeSpan? maxSilence = null)
    {
        var control = new StandInControl { State = state ?? HeartbeatState.Empty, Answers = answers };
        var warnings = new ConcurrentQueue<string>();
        var platform = NpgsqlDataSource.Create(database);
        var settings = OpsSettings.Default with
        {
            Port = 0,
            TokenSha256 = tokenSha256 ?? TokenSha256,
            HeartbeatInterval = heartbeatInterval ?? TimeSpan.FromMinutes(5),
            AskTimeout = askTimeout ?? TimeSpan.FromSeconds(3),
            // The specs of what the routes say read the details (the redaction has its own spec) and
            // expect each request to run the probes (the cache has its own spec).
            ExposeTenantDetails = exposeTenantDetails,
            ReadTokenSha256 = readTokenSha256 ?? "",
            HealthCache = healthCache ?? TimeSpan.Zero,
            MaxSilence = maxSilence ?? OpsSettings.DefaultMaxSilence,
        };

        // The journal probe needs a journal: by default the test's own (reachable) PostgreSQL database.
        var journalSettings = journal ?? new JournalSettings(database, "");
        var builder = new HostApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddHealthChecks();
        builder.Services.AddAkka("ops-spec", (akka, _) =>
        {
            akka.AddHocon("akka.loglevel = INFO\nakka.stdout-loglevel = WARNING", HoconAddMode.Prepend);
            if (extraHocon is not null)
                akka.AddHocon(extraHocon, HoconAddMode.Prepend);
            if (clustered)
                akka.WithClawKeeperCluster(new NodeSettings("127.0.0.1", 0, Array.Empty<string>()));
            if (journal is not null)
                akka.WithClawKeeperPersistence(journal);
            akka.WithClawKeeperOps(settings, platform, writes ?? new OpsWriteSettings(new SecuritySettings(SuperAdminTokenSha256), null))
                .WithClawKeeperHealthChecks(settings, journalSettings, clustered)
                .WithActors((system, _) =>
                    system.EventStream.Subscribe(system.ActorOf(Props.Create(() => new WarningCollector(warnings)), "warnings"), typeof(Warning)));
            if (realSupervisor is not null)
            {
                // The real heartbeat (as `check --once` hosts it) on the in-memory journal.
                akka.AddHocon("""
                    akka.persistence.journal.plugin = "akka.persistence.journal.inmem"
                    akka.persistence.snapshot-store.plugin = "akka.persistence.snapshot-store.inmem"
                    """, HoconAddMode.Prepend);
                akka.WithClawKeeperSerialization()
                    .WithHeartbeatActor(system => HeartbeatComponents.SupervisorOptions(
                        system, realSupervisor, platform, SharedHttp, "ops-spec-heartbeat", scheduled: false, dryRun: false));
            }
            else
            {
                akka.WithActors((system, registry) =>
                    registry.Register<HeartbeatSupervisorKey>(system.ActorOf(Props.Create(() => new StandInSupervisor(control)), "heartbeat")));
            }
        });
        var host = builder.Build();
        await host.StartAsync();
        return new OpsTestHost(host, control, platform, database, warnings);
    }

    private static readonly HttpClient SharedHttp = new();

    public async Task<HttpResponseMessage> PostAsync(string path, string? bearer, string? json = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path)
        {
            Content = json is null ? new ByteArrayContent(Array.Empty<byte>()) : new StringContent(json, Encoding.UTF8, "application/json"),
        };
        if (bearer is not null) request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + bearer);
        return await Http.SendAsync(request);
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        try
        {
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await Host.StopAsync(stop.Token);
        }
        catch (OperationCanceledException)
        {
        }
        Host.Dispose();
        await Platform.DisposeAsync();
    }

    /// <summary>Polls until <paramref name="condition"/> holds or the time is up.</summary>
    public static async Task<bool> EventuallyAsync(Func<bool> condition, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(5));
        while (DateTime.UtcNow < deadline)
        {
            if (condition()) return true;
            await Task.Delay(50);
        }
        return condition();
    }
}

/// <summary>Heartbeat reports and states to serve and to store.</summary>
public static class OpsSamples
{
    public const string BlockReason = "financial_totals_balance: tenant t-acme-bakery assets 1200.00 != liabilities + equity 1195.00";

    public static HeartbeatReport Report(DateTimeOffset completedAt, bool failing, bool writeBlock = false, int consecutiveFailures = 0, long durationMs = 1234)
    {
        var startedAt = completedAt - TimeSpan.FromMilliseconds(durationMs);
        var id = "heartbeat-" + startedAt.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);
        var systemHealth = new[]
        {
            new CheckResult("api_server_responding", CheckStatus.Pass, "200 in 42 ms", "2xx in < 100 ms", "GET http://127.0.0.1:5000/health", 42),
            new CheckResult("database_connection", CheckStatus.Pass, "round trip in 3 ms", "a round trip within 5s", "127.0.0.1:5432/clawkeeper, PostgreSQL 15", 3),
        };
        var taskQueue = new[]
        {
            new CheckResult("queue_depth", CheckStatus.Pass, "4 pending", "pending < 100", "cfo 2, support-lead 2", 5),
            failing
                ? new CheckResult("error_rate", CheckStatus.Fail, "12.5 % (1/8 failed)", "failed/finished < 5.0 % over 1h", "recent failures: task-9 (cfo: <timeout> & retry)", 7)
                : new CheckResult("error_rate", CheckStatus.Pass, "0.0 % (0/8 failed)", "failed/finished < 5.0 % over 1h", "", 7),
        };
        return new HeartbeatReport(
            id, startedAt, completedAt, failing ? HeartbeatStatus.Fail : HeartbeatStatus.Pass, consecutiveFailures,
            writeBlock ? new WriteBlockReport(true, BlockReason, startedAt, 7) : new WriteBlockReport(false),
            [
                new GroupReport("system_health", CheckStatusExtensions.Worst(systemHealth.Select(c => c.Status)), systemHealth),
                new GroupReport("task_queue", CheckStatusExtensions.Worst(taskQueue.Select(c => c.Status)), taskQueue),
            ],
            [],
            failing ? [new AlertReport("admin", ["email"], "check:task_queue/error_rate", "warning", "error rate 12.5 %", "recorded")] : [],
            Incidents: failing ? [new IncidentReport("check:task_queue/error_rate", "admin", startedAt, false, false, null)] : null);
    }

    /// <summary>The supervisor's state after <paramref name="report"/>: its incidents and, if the report says so, the write block.</summary>
    public static HeartbeatState StateWith(HeartbeatReport report)
    {
        var incidents = ImmutableDictionary<string, Incident>.Empty;
        if (report.Status == HeartbeatStatus.Fail)
            incidents = incidents.Add("check:task_queue/error_rate", new Incident("check:task_queue/error_rate", "admin", ["email"], "warning",
                "error rate 12.5 %", Array.Empty<NotificationLine>(), report.StartedAt, report.CompletedAt, false, false, null));
        return HeartbeatState.Empty with
        {
            ConsecutiveFailures = report.ConsecutiveFailures,
            HeartbeatsRecorded = 5,
            Latest = report,
            Incidents = incidents,
            WriteBlock = report.WriteBlock.Active
                ? new WriteBlockState(true, report.WriteBlock.Reason, ["financial_totals_balance"], report.WriteBlock.Since, report.WriteBlock.BlockId)
                : WriteBlockState.None,
        };
    }

    /// <summary>Stores <paramref name="report"/> in agent_runs as the heartbeat does (tenant 'system', agent 'clawkeeper').</summary>
    public static async Task InsertRunAsync(string database, HeartbeatReport report)
    {
        await using var connection = await Sql.OpenAsync(database);
        await using var transaction = await connection.BeginTransactionAsync();
        await Sql.ExecuteAsync(connection, "select set_config('app.tenant_id', 'system', true)");
        await Sql.ExecuteAsync(connection, """
            insert into agent_runs (id, tenant_id, agent_id, task_id, status, started_at, completed_at, duration_ms, output)
            values ($1, 'system', 'clawkeeper', $1, $2, $3, $4, $5, $6::jsonb)
            """,
            report.Id, report.Status == HeartbeatStatus.Pass ? "completed" : "failed", report.StartedAt.UtcDateTime, report.CompletedAt.UtcDateTime,
            report.DurationMs, report.ToJson());
        await transaction.CommitAsync();
    }
}
