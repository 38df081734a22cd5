using System.Collections.Immutable;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Actors.Repairs;
using Xunit;

namespace ClawKeeper.Actors.Tests.Repairs;

public class RepairDecisionsSpec
{
    private static GroupReport Health(CheckStatus api, CheckStatus orchestrators) =>
        new("system_health", CheckStatusExtensions.Worst(new[] { api, orchestrators }), new[]
        {
            new CheckResult("api_server_responding", api, "refused", "2xx", "http://127.0.0.1:5080/health: connection refused", 2),
            new CheckResult("orchestrators_reachable", orchestrators, "8/9 answered", "all 9", "no answer from: cfo", 500),
        });

    [Fact]
    public void A_slow_but_answering_api_fails_its_check_but_is_not_restarted()
    {
        var slow = new GroupReport("system_health", CheckStatus.Fail, new[]
        {
            new CheckResult("api_server_responding", CheckStatus.Fail, "HTTP 200 in 539 ms", "GET /health answers 2xx in < 100 ms",
                "http://127.0.0.1:5080/health answered but too slowly (539 ms)", 540),
        });
        Assert.False(RepairDecisions.Plan(new[] { slow }, apiServerControlled: true).RestartApiServer);
        var failing = slow with { Checks = new[] { slow.Checks[0] with { Observed = "HTTP 503 in 4 ms", Detail = "http://127.0.0.1:5080/health answered 503 Service Unavailable" } } };
        Assert.True(RepairDecisions.Plan(new[] { failing }, apiServerControlled: true).RestartApiServer);
    }

    private static readonly ActionReport Restart = new("restart_api_server", "error: refused", "restarted: listening again") { Recheck = "GET /health answered 200 in 3 ms" };

    [Fact]
    public void Repairs_follow_the_failing_checks_and_the_api_restart_needs_a_hosted_server()
    {
        Assert.Equal(RepairPlan.None, RepairDecisions.Plan(new[] { Health(CheckStatus.Pass, CheckStatus.Pass) }, apiServerControlled: true));
        var both = RepairDecisions.Plan(new[] { Health(CheckStatus.Error, CheckStatus.Fail) }, apiServerControlled: true);
        Assert.True(both.RestartOrchestrators);
        Assert.True(both.RestartApiServer);
        Assert.Contains("connection refused", both.ApiObserved);
        var elsewhere = RepairDecisions.Plan(new[] { Health(CheckStatus.Fail, CheckStatus.Pass) }, apiServerControlled: false);
        Assert.False(elsewhere.Any); // not hosted here: only the failure is reported
        Assert.False(RepairDecisions.Plan(new[] { Health(CheckStatus.Skipped, CheckStatus.Warn) }, apiServerControlled: true).Any);
        Assert.Equal(RepairPlan.None, RepairDecisions.Plan(Array.Empty<GroupReport>(), apiServerControlled: true)); // a retry round without system_health
    }

    [Fact]
    public void The_admin_hears_of_an_api_restart_once_per_incident_and_not_while_the_check_flaps()
    {
        var alert = RepairDecisions.ApiRestartAlert(Restart, recovered: true, ImmutableHashSet<string>.Empty, flapping: false)!;
        Assert.Equal(("admin", RepairDecisions.ApiRestartDedupKey, "warning"), (alert.Audience, alert.DedupKey, alert.Severity));
        Assert.Contains("GET /health answered 200", alert.Summary);
        // The first sentence is the e-mail subject / Discord title: it names the restart and how it ended.
        Assert.StartsWith("the heartbeat restarted the API server, /health answers again;", alert.Summary);
        var failed = RepairDecisions.ApiRestartAlert(Restart, recovered: false, ImmutableHashSet<string>.Empty, false)!;
        Assert.Equal("critical", failed.Severity);
        Assert.StartsWith("the heartbeat could not bring the API server back, /health does not answer;", failed.Summary);
        Assert.Null(RepairDecisions.ApiRestartAlert(Restart, true, ImmutableHashSet.Create(RepairDecisions.ApiRestartDedupKey), false));
        Assert.Null(RepairDecisions.ApiRestartAlert(Restart, true, ImmutableHashSet<string>.Empty, flapping: true));
    }

    [Fact]
    public void The_admin_incident_resolves_when_the_api_check_passes_again()
    {
        var open = ImmutableHashSet.Create(RepairDecisions.ApiRestartDedupKey, HeartbeatDecisions.CheckDedupKey("system_health", "orchestrators_reachable"));
        var report = new HeartbeatReport("heartbeat-x", DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch, HeartbeatStatus.Fail, 0, new WriteBlockReport(false),
            new[] { Health(CheckStatus.Pass, CheckStatus.Fail) }, Array.Empty<ActionReport>(), Array.Empty<AlertReport>());
        Assert.Equal(new[] { HeartbeatDecisions.CheckDedupKey("system_health", "orchestrators_reachable") }, HeartbeatDecisions.OpenAlertsAfter(open, report));
    }
}
