using System.Collections.Immutable;
using System.Text.RegularExpressions;
using Akka.Actor;
using ClawKeeper.Actors.Alerts;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Host.Api;
using ClawKeeper.Host.Ops;
using Xunit;
using YamlDotNet.RepresentationModel;

namespace ClawKeeper.Host.Tests.Ops;

/// <summary>
/// <c>/metrics</c> as prometheus-net writes it through <see cref="OpsMetrics.WriteAsync"/>, parsed by the strict
/// <see cref="PrometheusExposition"/>: histograms of API requests and heartbeat checks, node-local versus
/// platform-wide series, and the example alert rules that only name series /metrics exports.
/// </summary>
public sealed class OpsMetricsSpec : IAsyncLifetime
{
    private readonly ActorSystem _system = ActorSystem.Create("ops-metrics-spec", "akka.loglevel = WARNING");

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _system.Terminate();

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "ClawKeeper.Actors.sln"))) directory = directory.Parent;
        return directory?.FullName ?? throw new DirectoryNotFoundException("repository root not found");
    }

    /// <summary>A node whose API served some requests and whose heartbeat ran a full and a retry round; platform-wide figures from <paramref name="state"/>.</summary>
    private async Task<(OpsMetrics Metrics, HeartbeatReport Latest)> NodeAsync(bool exportsPlatform, HeartbeatState? state = null)
    {
        var node = new NodeMetrics();
        var api = new ApiRequestMetrics(node);
        api.Record("/api/tasks", 201, TimeSpan.FromMilliseconds(30));
        api.Record("/api/tasks", 201, TimeSpan.FromMilliseconds(70));
        api.Record("/api/tasks", 400, TimeSpan.FromMilliseconds(2));
        api.Record("/api/tasks/{id}", 503, TimeSpan.FromSeconds(3));

        var listener = _system.ActorOf(Props.Create(() => new HeartbeatRoundMetrics(node)));
        var full = OpsSamples.Report(DateTimeOffset.UtcNow.AddMinutes(-2), failing: true, durationMs: 1500);
        var retry = OpsSamples.Report(DateTimeOffset.UtcNow.AddMinutes(-1), failing: false, durationMs: 300) with { Rechecked = ["task_queue/error_rate"] };
        // The listener subscribes in PreStart: ask it something first so the subscription is in place.
        await listener.Ask<ActorIdentity>(new Identify(1), TimeSpan.FromSeconds(5));
        _system.EventStream.Publish(new HeartbeatCompleted(full));
        _system.EventStream.Publish(new HeartbeatCompleted(retry));
        await listener.Ask<ActorIdentity>(new Identify(2), TimeSpan.FromSeconds(5));

        var heartbeatState = state ?? OpsSamples.StateWith(retry);
        var view = new HeartbeatView(new SupervisorAnswer(heartbeatState, null), heartbeatState.Latest ?? retry, "supervisor", null);
        var metrics = new OpsMetrics(node, _ => Task.FromResult(exportsPlatform), _ => Task.FromResult(view),
            (v, _) => Task.FromResult(new MetricsInput(v, DateTimeOffset.UtcNow,
                [new UptimeRow("24h", null, 4, 3), new UptimeRow("24h", "task_queue", 4, 3)], [new ApiResponseRow("24h", 42, 4)],
                new TaskRates(8, 1, 0), [new TenantTotal("t-acme-bakery", 12.5m, 4000, 3), new TenantTotal("t-north", 0.25m, 100, 1)], null, null)));
        return (metrics, retry);
    }

    [Fact]
    public async Task Histograms_have_buckets_sum_and_count_by_route_status_class_group_and_check()
    {
        var (metrics, _) = await NodeAsync(exportsPlatform: true);
        var families = PrometheusExposition.Parse(await metrics.RenderAsync(CancellationToken.None));
        var samples = PrometheusExposition.Samples(families);

        var api = families["clawkeeper_api_request_duration_seconds"];
        Assert.Equal("histogram", api.Type);
        Assert.Equal(2, samples["clawkeeper_api_request_duration_seconds_count{route=\"/api/tasks\",status_class=\"2xx\"}"]);
        Assert.Equal(0.1, samples["clawkeeper_api_request_duration_seconds_sum{route=\"/api/tasks\",status_class=\"2xx\"}"], 9);
        Assert.Equal(1, samples["clawkeeper_api_request_duration_seconds_bucket{route=\"/api/tasks\",status_class=\"2xx\",le=\"0.05\"}"]);
        Assert.Equal(2, samples["clawkeeper_api_request_duration_seconds_bucket{route=\"/api/tasks\",status_class=\"2xx\",le=\"0.1\"}"]);
        Assert.Equal(1, samples["clawkeeper_api_request_duration_seconds_count{route=\"/api/tasks\",status_class=\"4xx\"}"]);
        Assert.Equal(0, samples["clawkeeper_api_request_duration_seconds_bucket{route=\"/api/tasks/{id}\",status_class=\"5xx\",le=\"2.5\"}"]);
        Assert.Equal(1, samples["clawkeeper_api_request_duration_seconds_bucket{route=\"/api/tasks/{id}\",status_class=\"5xx\",le=\"+Inf\"}"]);
        Assert.Equal(2, samples["clawkeeper_api_requests_total{route=\"/api/tasks\",status=\"201\"}"]);

        // The full round observed every check; the retry only the check it re-ran.
        Assert.Equal("histogram", families["clawkeeper_heartbeat_check_duration_seconds"].Type);
        Assert.Equal(2, samples["clawkeeper_heartbeat_check_duration_seconds_count{group=\"task_queue\",check=\"error_rate\"}"]);
        Assert.Equal(1, samples["clawkeeper_heartbeat_check_duration_seconds_count{group=\"system_health\",check=\"api_server_responding\"}"]);
        Assert.Equal(0.042, samples["clawkeeper_heartbeat_check_duration_seconds_sum{group=\"system_health\",check=\"api_server_responding\"}"], 9);
        Assert.Equal(1, samples["clawkeeper_heartbeat_duration_seconds_count{kind=\"full\"}"]);
        Assert.Equal(1.5, samples["clawkeeper_heartbeat_duration_seconds_sum{kind=\"full\"}"], 9);
        Assert.Equal(1, samples["clawkeeper_heartbeat_duration_seconds_count{kind=\"retry\"}"]);
        Assert.Equal(1, samples["clawkeeper_heartbeats_completed_total{status=\"fail\"}"]);

        // Cost and tokens are counters per tenant, no day label; process and runtime metrics are there.
        Assert.Equal("counter", families["clawkeeper_tenant_cost_total"].Type);
        Assert.Equal(12.5, samples["clawkeeper_tenant_cost_total{tenant_id=\"t-acme-bakery\"}"]);
        Assert.Equal(4000, samples["clawkeeper_tenant_tokens_total{tenant_id=\"t-acme-bakery\"}"]);
        Assert.DoesNotContain(samples.Keys, k => k.Contains("day=", StringComparison.Ordinal));
        Assert.Contains("process_cpu_seconds_total", families.Keys);
        Assert.Contains(families.Keys, k => k.StartsWith("dotnet_", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Only_the_node_hosting_the_singleton_exports_platform_wide_series_so_sums_across_nodes_are_right()
    {
        var (exporter, latest) = await NodeAsync(exportsPlatform: true);
        var (other, _) = await NodeAsync(exportsPlatform: false);
        var one = PrometheusExposition.Samples(PrometheusExposition.Parse(await exporter.RenderAsync(CancellationToken.None)));
        var two = PrometheusExposition.Samples(PrometheusExposition.Parse(await other.RenderAsync(CancellationToken.None)));

        Assert.Equal(1, one["clawkeeper_metrics_platform_exporter"]);
        Assert.Equal(0, two["clawkeeper_metrics_platform_exporter"]);
        Assert.Equal(latest.CompletedAt.ToUnixTimeMilliseconds() / 1000.0, one["clawkeeper_heartbeat_last_completed_timestamp_seconds"], 3);
        var platformWide = new[]
        {
            "clawkeeper_heartbeat_last_completed_timestamp_seconds", "clawkeeper_tenant_cost_total", "clawkeeper_uptime_ratio",
            "clawkeeper_tasks_finished", "clawkeeper_write_block_active", "clawkeeper_escalation_open", "clawkeeper_heartbeat_check_status",
        };
        foreach (var name in platformWide)
        {
            Assert.Contains(one.Keys, k => k.StartsWith(name, StringComparison.Ordinal));
            Assert.DoesNotContain(two.Keys, k => k.StartsWith(name, StringComparison.Ordinal));
        }

        // The API and the heartbeat rounds this node ran are node-local: both export their own.
        Assert.Contains(two.Keys, k => k.StartsWith("clawkeeper_api_request_duration_seconds_bucket", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_node_that_loses_the_singleton_stops_exporting_the_platform_series()
    {
        var exports = true;
        var node = new NodeMetrics();
        var report = OpsSamples.Report(DateTimeOffset.UtcNow, failing: false);
        var view = new HeartbeatView(new SupervisorAnswer(OpsSamples.StateWith(report), null), report, "supervisor", null);
        var metrics = new OpsMetrics(node, _ => Task.FromResult(exports), _ => Task.FromResult(view),
            (v, _) => Task.FromResult(new MetricsInput(v, DateTimeOffset.UtcNow, [], [], new TaskRates(1, 0, 0), [new TenantTotal("t-a", 1m, 1, 1)], null, null)));
        Assert.Contains("clawkeeper_tenant_cost_total{tenant_id=\"t-a\"}", await metrics.RenderAsync(CancellationToken.None));
        exports = false;
        var after = PrometheusExposition.Samples(PrometheusExposition.Parse(await metrics.RenderAsync(CancellationToken.None)));
        Assert.DoesNotContain(after.Keys, k => k.StartsWith("clawkeeper_tenant_cost_total", StringComparison.Ordinal));
        Assert.DoesNotContain(after.Keys, k => k.StartsWith("clawkeeper_heartbeat_last_completed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_escalation_and_the_write_block_are_exported_from_the_supervisors_state()
    {
        var report = OpsSamples.Report(DateTimeOffset.UtcNow, failing: true, writeBlock: true, consecutiveFailures: 3);
        var escalation = new Incident(HeartbeatDecisions.ConsecutiveFailuresDedupKey, "super_admin", ["email", "discord"], "critical",
            "3 consecutive heartbeats failed", Array.Empty<NotificationLine>(), report.StartedAt, report.CompletedAt, false, false, null);
        var state = OpsSamples.StateWith(report);
        state = state with { Incidents = state.Incidents.Add(escalation.DedupKey, escalation) };
        var (metrics, _) = await NodeAsync(exportsPlatform: true, state);
        var samples = PrometheusExposition.Samples(PrometheusExposition.Parse(await metrics.RenderAsync(CancellationToken.None)));
        Assert.Equal(1, samples["clawkeeper_escalation_open"]);
        Assert.Equal(1, samples["clawkeeper_write_block_active"]);
        Assert.Equal(3, samples["clawkeeper_heartbeat_consecutive_failures"]);

        var (calm, _) = await NodeAsync(exportsPlatform: true);
        var quiet = PrometheusExposition.Samples(PrometheusExposition.Parse(await calm.RenderAsync(CancellationToken.None)));
        Assert.Equal(0, quiet["clawkeeper_escalation_open"]);
        Assert.Equal(0, quiet["clawkeeper_write_block_active"]);
    }

    [Fact]
    public async Task The_example_alert_rules_parse_and_name_only_series_that_metrics_exports()
    {
        var path = Path.Combine(RepositoryRoot(), "deploy", "prometheus", "clawkeeper-rules.yml");
        var yaml = new YamlStream();
        using (var reader = new StreamReader(path)) yaml.Load(reader);
        var root = Assert.IsType<YamlMappingNode>(Assert.Single(yaml.Documents).RootNode);
        Assert.Equal(["groups"], root.Children.Keys.Select(k => ((YamlScalarNode)k).Value!));
        var groups = Assert.IsType<YamlSequenceNode>(root.Children[new YamlScalarNode("groups")]);

        var (metrics, _) = await NodeAsync(exportsPlatform: true);
        var families = PrometheusExposition.Parse(await metrics.RenderAsync(CancellationToken.None));
        var exported = families.Values.SelectMany(f => f.Type == "histogram"
            ? new[] { f.Name + "_bucket", f.Name + "_sum", f.Name + "_count" }
            : new[] { f.Name }).ToHashSet(StringComparer.Ordinal);

        var alerts = new List<string>();
        var exprs = new List<string>();
        foreach (var group in groups.Children.Cast<YamlMappingNode>())
        {
            Assert.False(string.IsNullOrWhiteSpace(Scalar(group, "name")));
            foreach (var rule in Assert.IsType<YamlSequenceNode>(group.Children[new YamlScalarNode("rules")]).Children.Cast<YamlMappingNode>())
            {
                var keys = rule.Children.Keys.Select(k => ((YamlScalarNode)k).Value!).ToHashSet();
                Assert.Subset(new HashSet<string> { "alert", "expr", "for", "labels", "annotations" }, keys);
                var alert = Scalar(rule, "alert")!;
                Assert.Matches("^[A-Za-z_][A-Za-z0-9_]*$", alert);
                if (Scalar(rule, "for") is { } wait) Assert.Matches("^[0-9]+[smhd]$", wait);
                var labels = Assert.IsType<YamlMappingNode>(rule.Children[new YamlScalarNode("labels")]);
                Assert.Contains(Scalar(labels, "severity"), new[] { "critical", "warning" });
                Assert.IsType<YamlMappingNode>(rule.Children[new YamlScalarNode("annotations")]);
                var expr = Scalar(rule, "expr")!;
                var named = Regex.Matches(expr, @"\bclawkeeper_[a-z0-9_]+").Select(m => m.Value).ToList();
                Assert.True(named.Count > 0, $"{alert}: its expression names no ClawKeeper series");
                foreach (var series in named)
                    Assert.True(exported.Contains(series), $"{alert} uses {series}, which /metrics does not export");
                alerts.Add(alert);
                exprs.Add(expr);
            }
        }

        Assert.Equal(alerts.Count, alerts.Distinct().Count());
        // The three the issue asks for: the external dead-man (stale timestamp, and none at all), escalation, write block.
        Assert.Contains(exprs, e => e.Contains("time() - max(clawkeeper_heartbeat_last_completed_timestamp_seconds)", StringComparison.Ordinal));
        Assert.Contains(exprs, e => e.Contains("absent(clawkeeper_heartbeat_last_completed_timestamp_seconds)", StringComparison.Ordinal));
        Assert.Contains(exprs, e => e.Contains("clawkeeper_escalation_open", StringComparison.Ordinal));
        Assert.Contains(exprs, e => e.Contains("clawkeeper_write_block_active", StringComparison.Ordinal));
    }

    private static string? Scalar(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var value) ? ((YamlScalarNode)value).Value : null;
}
