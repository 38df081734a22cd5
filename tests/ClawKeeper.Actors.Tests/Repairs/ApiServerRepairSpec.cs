using System.Net;
using Akka.Actor;
using ClawKeeper.Actors.Alerts;
using ClawKeeper.Actors.Alerts.Channels;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.SystemHealth;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Actors.Orchestrators;
using ClawKeeper.Actors.Repairs;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Actors.Tests.Alerts.Channels;
using ClawKeeper.Actors.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Xunit;
using Xunit.Abstractions;

namespace ClawKeeper.Actors.Tests.Repairs;

/// <summary>
/// API server down: the heartbeat restarts the hosted listener (a real loopback HTTP server here),
/// re-checks <c>/health</c>, records both in <c>actions</c> and alerts admin through the outbox (a real
/// Discord stand-in receives it); recovery resolves the admin's incident.
/// </summary>
public sealed class ApiServerRepairSpec(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit("""
    akka.persistence.journal.plugin = "akka.persistence.journal.inmem"
    akka.persistence.snapshot-store.plugin = "akka.persistence.snapshot-store.inmem"
    """, output)
{
    private static readonly HttpClient Http = new();
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private IActorRef StartSupervisor(string persistenceId, RestartableApiServer api, IApiServerControl? control, Uri webhook)
    {
        var health = new SystemHealthSettings(api.BaseUrl, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(1),
            TimeSpan.FromSeconds(1), 0.2, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        var group = new CheckGroupDefinition(CheckGroups.SystemHealth, new[] { "api_server_responding" }, _ =>
            CheckGroupActor.Props(CheckGroups.SystemHealth, new IPlatformCheck[] { new ApiServerRespondingCheck(Http, health) }));
        var delivery = new AlertDelivery(
            new AlertPolicy(TimeSpan.FromHours(4), new Dictionary<string, IReadOnlyList<string>> { ["admin"] = new[] { "discord" } }),
            new IAlertChannel[] { new DiscordAlertChannel(Http) },
            new Dictionary<string, AudienceRoute> { ["admin"] = new("admin", Array.Empty<string>(), webhook) },
            TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(1));
        return Sys.ActorOf(HeartbeatSupervisor.Props(new HeartbeatSupervisorOptions(persistenceId,
            new HeartbeatSettings(TimeSpan.FromHours(4), TimeSpan.FromHours(1), TimeSpan.FromSeconds(30), 3, 100),
            new[] { group }, Array.Empty<OrchestratorDefinition>(), new RecordingRunLog(), Scheduled: false,
            Alerts: delivery, ApiServer: control, Repair: new RepairOptions(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), Http))));
    }

    private static async Task<HeartbeatReport> BeatAsync(IActorRef supervisor) =>
        (await supervisor.Ask<HeartbeatCompleted>(RunHeartbeatNow.Instance, Patience)).Report;

    [Fact]
    public async Task A_stopped_api_listener_is_restarted_re_checked_and_reported_to_admin_and_the_incident_resolves()
    {
        await using var api = await RestartableApiServer.StartAsync();
        await using var discord = await DiscordStandIn.StartAsync();
        var supervisor = StartSupervisor("api-restart", api, api, discord.Webhook);

        var healthy = await BeatAsync(supervisor);
        Assert.Equal(HeartbeatStatus.Pass, healthy.Status);
        Assert.Empty(healthy.Actions);

        await api.StopAsync(); // the listener dies
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var down = await BeatAsync(supervisor);
        var elapsed = watch.ElapsedMilliseconds;
        var check = down.Groups.Single().Checks.Single();
        Assert.True(check.Status.IsProblem(), check.Status.ToWire());
        Assert.Equal(("soft", "1/3"), (check.State, check.Attempt));
        var action = Assert.Single(down.Actions);
        Output?.WriteLine($"measured: heartbeat with a stopped API listener, its restart and re-check, asked → completed: {elapsed} ms (checks {down.DurationMs} ms); {action.Recheck}");
        Assert.Equal("restart_api_server", action.Action);
        Assert.StartsWith("restarted: listening again on", action.Outcome);
        Assert.StartsWith("GET /health answered 200", action.Recheck);
        Assert.Equal(1, api.Restarts);
        var alert = Assert.Single(down.Alerts);
        Assert.Equal(("admin", RepairDecisions.ApiRestartDedupKey), (alert.Audience, alert.DedupKey));
        Assert.Equal("queued: discord", alert.Delivery);

        // Through the persisted outbox to the real channel.
        await AwaitAssertAsync(() =>
        {
            var posted = Assert.Single(discord.Requests);
            Assert.Contains("restarted", posted.Body);
            Assert.Contains("api_server_responding", posted.Body);
            return Task.CompletedTask;
        }, Patience);

        var back = await BeatAsync(supervisor);
        Assert.Equal(HeartbeatStatus.Pass, back.Status);
        Assert.Empty(back.Actions);
        Assert.Equal(1, api.Restarts);
        await AwaitAssertAsync(() =>
        {
            Assert.Equal(2, discord.Requests.Count); // the resolved notice
            Assert.Contains("resolved", discord.Requests.Last().Body, StringComparison.OrdinalIgnoreCase);
            return Task.CompletedTask;
        }, Patience);
        var state = await supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, Patience);
        Assert.Empty(state.Incidents);
    }

    [Fact]
    public async Task Without_a_hosted_api_server_the_failure_is_reported_and_nothing_is_restarted()
    {
        await using var api = await RestartableApiServer.StartAsync();
        await using var discord = await DiscordStandIn.StartAsync();
        var supervisor = StartSupervisor("api-elsewhere", api, control: null, discord.Webhook);
        await api.StopAsync();

        var down = await BeatAsync(supervisor);
        Assert.True(down.Groups.Single().Checks.Single().Status.IsProblem());
        Assert.Empty(down.Actions);
        Assert.Empty(down.Alerts); // soft, and no restart happened: nothing to tell yet
        Assert.Equal(0, api.Restarts);
    }

    [Fact]
    public async Task A_restart_that_does_not_bring_the_api_back_is_recorded_as_failed_and_alerts_admin_as_critical()
    {
        await using var api = await RestartableApiServer.StartAsync();
        await using var discord = await DiscordStandIn.StartAsync();
        api.RefuseRestarts = true;
        var supervisor = StartSupervisor("api-broken", api, api, discord.Webhook);
        await api.StopAsync();

        var down = await BeatAsync(supervisor);
        var action = Assert.Single(down.Actions);
        Assert.StartsWith("restart failed:", action.Outcome);
        Assert.StartsWith("no URL", action.Recheck);
        Assert.Equal("critical", Assert.Single(down.Alerts).Severity);
    }

    /// <summary>A real HTTP listener on a fixed loopback port that the test can stop, and the heartbeat restart.</summary>
    private sealed class RestartableApiServer : IApiServerControl, IAsyncDisposable
    {
        private WebApplication? _app;
        private int _port;
        private int _restarts;

        public bool RefuseRestarts { get; set; }

        public int Restarts => Volatile.Read(ref _restarts);

        public Uri? BaseUrl => _app is null ? null : new Uri($"http://127.0.0.1:{_port}/");

        public static async Task<RestartableApiServer> StartAsync()
        {
            var server = new RestartableApiServer();
            await server.ListenAsync(0);
            return server;
        }

        private async Task ListenAsync(int port)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, port));
            var app = builder.Build();
            app.Run(context => context.Request.Path == "/health"
                ? context.Response.WriteAsync("{\"status\":\"ok\"}")
                : Task.FromResult(context.Response.StatusCode = 404));
            await app.StartAsync();
            _port = new Uri(app.Urls.Single()).Port;
            _app = app;
        }

        public async Task StopAsync()
        {
            if (_app is null) return;
            await _app.StopAsync();
            await _app.DisposeAsync();
            _app = null;
        }

        public async Task<ApiRestartResult> RestartAsync(CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _restarts);
            await StopAsync();
            if (RefuseRestarts) return new ApiRestartResult(false, $"port {_port} could not be bound (scripted)");
            await ListenAsync(_port);
            return new ApiRestartResult(true, $"listening again on {BaseUrl}");
        }

        public ValueTask DisposeAsync() => new(StopAsync());
    }
}
