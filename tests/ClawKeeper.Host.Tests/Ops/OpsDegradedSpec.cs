using System.Net;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Host.Ops;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Xunit;

namespace ClawKeeper.Host.Tests.Ops;

/// <summary>What the ops surface says when its sources fail, and the exposition format's corner cases.</summary>
public class OpsDegradedSpec
{
    // Nothing listens on port 1: every query fails fast with "connection refused".
    private const string UnreachableDatabase = "Host=127.0.0.1;Port=1;Database=clawkeeper;Username=ops;Password=secret-password;Timeout=2;Pooling=false";

    [Fact]
    public async Task With_the_platform_database_down_the_page_and_metrics_still_answer_and_say_what_is_missing()
    {
        var report = OpsSamples.Report(DateTimeOffset.UtcNow, failing: true);
        await using var host = await OpsTestHost.StartAsync(UnreachableDatabase, OpsSamples.StateWith(report));

        var metrics = PrometheusSamples.Parse(await host.Http.GetStringAsync("/metrics"));
        Assert.Equal(0, metrics[@"clawkeeper_ops_source_up{source=""platform_db""}"]);
        Assert.Equal(1, metrics[@"clawkeeper_ops_source_up{source=""supervisor""}"]);
        Assert.Equal(1, metrics[@"clawkeeper_heartbeat_check_status{group=""task_queue"",check=""error_rate"",status=""fail""}"]);
        Assert.DoesNotContain(metrics.Keys, k => k.StartsWith("clawkeeper_uptime_ratio", StringComparison.Ordinal));

        using var page = await host.Http.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("reading the platform database failed", html);
        Assert.Contains("<tr data-check=\"error_rate\" data-status=\"fail\">", html);
        Assert.DoesNotContain("secret-password", html);

        using var history = await host.Http.GetAsync("/heartbeat/history");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, history.StatusCode);
        var body = await history.Content.ReadAsStringAsync();
        Assert.Contains("reading agent_runs failed", body);
        Assert.DoesNotContain("secret-password", body);

        // The supervisor still has the latest report.
        using var latest = await host.Http.GetAsync("/heartbeat/latest");
        Assert.Equal(report.ToJson(), await latest.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task With_neither_source_latest_is_503_and_the_page_says_so()
    {
        await using var host = await OpsTestHost.StartAsync(UnreachableDatabase, answers: false, askTimeout: TimeSpan.FromMilliseconds(200));
        using var latest = await host.Http.GetAsync("/heartbeat/latest");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, latest.StatusCode);
        var text = await latest.Content.ReadAsStringAsync();
        Assert.Contains("did not answer", text);
        Assert.Contains("reading agent_runs failed", text);

        var html = await host.Http.GetStringAsync("/");
        Assert.Contains("no heartbeat yet", html);
        Assert.Contains("node not ready", html);
        var metrics = PrometheusSamples.Parse(await host.Http.GetStringAsync("/metrics"));
        Assert.Equal(0, metrics[@"clawkeeper_ops_source_up{source=""supervisor""}"]);
        Assert.DoesNotContain(metrics.Keys, k => k.StartsWith("clawkeeper_heartbeat_", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Label_values_are_escaped_and_special_values_written_as_prometheus_reads_them()
    {
        var node = new NodeMetrics();
        new SnapshotGauge(node.Factory, "x_ratio", "a help text", "tenant_id").Update([(["a\"b\\c\nd"], double.NaN)]);
        new SnapshotGauge(node.Factory, "y_value", "plain").Set(0.1 + 0.2);
        using var buffer = new MemoryStream();
        await node.ExportAsync(buffer, CancellationToken.None);
        var text = System.Text.Encoding.UTF8.GetString(buffer.ToArray());
        Assert.Contains("x_ratio{tenant_id=\"a\\\"b\\\\c\\nd\"} NaN\n", text);
        var parsed = PrometheusSamples.Parse(text);
        Assert.True(double.IsNaN(parsed["x_ratio{tenant_id=\"a\"b\\c\nd\"}"]));
        Assert.Equal(0.1 + 0.2, parsed["y_value"]);
    }

    [Fact]
    public void Readiness_probes_before_any_heartbeat_with_a_stale_one_and_while_joining_say_why()
    {
        var now = DateTimeOffset.UtcNow;
        var fresh = TimeSpan.FromMinutes(10);
        var none = HeartbeatRecentCheck.Evaluate(new SupervisorAnswer(HeartbeatState.Empty, null), now, fresh);
        Assert.Equal(HealthStatus.Unhealthy, none.Status);
        Assert.Equal("no heartbeat has completed yet", none.Description);
        Assert.Equal(HealthStatus.Healthy, HeartbeatSupervisorCheck.Evaluate(new SupervisorAnswer(HeartbeatState.Empty, null)).Status);

        var state = OpsSamples.StateWith(OpsSamples.Report(now - TimeSpan.FromMinutes(9), failing: false));
        Assert.Equal(HealthStatus.Healthy, HeartbeatRecentCheck.Evaluate(new SupervisorAnswer(state, null), now, fresh).Status);
        var stale = HeartbeatRecentCheck.Evaluate(new SupervisorAnswer(state, null), now + TimeSpan.FromMinutes(2), fresh);
        Assert.Equal(HealthStatus.Unhealthy, stale.Status);
        Assert.Contains("11m ago, more than 10m", stale.Description);

        var silent = new SupervisorAnswer(null, "did not answer");
        Assert.Equal("did not answer", HeartbeatSupervisorCheck.Evaluate(silent).Description);
        Assert.Equal(HealthStatus.Unhealthy, HeartbeatRecentCheck.Evaluate(silent, now, fresh).Status);

        var joining = ClusterMemberUpCheck.Evaluate(new ClusterView(true, "akka.tcp://clawkeeper@10.0.0.5:4053", "joining", Array.Empty<MemberView>()));
        Assert.Equal(HealthStatus.Unhealthy, joining.Status);
        Assert.Contains("is joining, not up", joining.Description);
        Assert.Equal(HealthStatus.Healthy, ClusterMemberUpCheck.Evaluate(ClusterView.NotClustered).Status);
    }

    [Fact]
    public void A_health_report_becomes_ready_only_without_an_unhealthy_probe_and_lists_each_in_a_fixed_order()
    {
        var checkedAt = DateTimeOffset.UtcNow;
        HealthReport Report(params (string Name, HealthStatus Status)[] entries) => new(
            entries.ToDictionary(e => e.Name, e => new HealthReportEntry(e.Status, $"{e.Name} says {e.Status}", TimeSpan.FromMilliseconds(12.34), null, null, ["ready"])),
            TimeSpan.FromMilliseconds(20));

        var ok = Readiness.From(Report(("heartbeat_recent", HealthStatus.Healthy), ("journal_reachable", HealthStatus.Degraded), ("akka.cluster.join", HealthStatus.Healthy)), checkedAt);
        Assert.True(ok.Ready);
        Assert.Equal(new[] { "akka.cluster.join", "journal_reachable", "heartbeat_recent" }, ok.Conditions.Select(c => c.Condition));
        Assert.Equal("degraded", ok.Conditions[1].Status);
        Assert.Equal(12.3, ok.Conditions[0].DurationMs);

        var down = Readiness.From(Report(("journal_reachable", HealthStatus.Unhealthy), ("heartbeat_recent", HealthStatus.Healthy)), checkedAt);
        Assert.False(down.Ready);
        Assert.Equal(new[] { "journal_reachable" }, down.Failing);
        Assert.Equal("journal_reachable says Unhealthy", down.Conditions[0].Detail);

        Assert.False(Readiness.From(Report(), checkedAt).Ready);
    }
}
