using System.Net;
using System.Text.Json;
using Akka.Cluster;
using ClawKeeper.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit;

namespace ClawKeeper.Host.Tests.Ops;

/// <summary>The ops surface on a real (one-node) cluster member: members, readiness, and a graceful leave.</summary>
public class OpsClusterSpec
{
    [Fact]
    public async Task Members_and_readiness_follow_the_cluster_and_leave_needs_the_token()
    {
        var state = OpsSamples.StateWith(OpsSamples.Report(DateTimeOffset.UtcNow, failing: false));
        await using var host = await OpsTestHost.StartAsync(await TestDatabases.CreateSeededAsync(), state, clustered: true);
        var cluster = Cluster.Get(host.System);
        var self = cluster.SelfAddress.ToString();

        Assert.True(await OpsTestHost.EventuallyAsync(() => cluster.SelfMember.Status == MemberStatus.Up, TimeSpan.FromSeconds(20)), "the node joins itself");
        using (var members = await host.Http.GetAsync("/cluster/members"))
        {
            Assert.Equal(HttpStatusCode.OK, members.StatusCode);
            using var body = JsonDocument.Parse(await members.Content.ReadAsStringAsync());
            var member = Assert.Single(body.RootElement.EnumerateArray());
            Assert.Equal(self, member.GetProperty("address").GetString());
            Assert.Equal("up", member.GetProperty("status").GetString());
            Assert.Equal(new[] { "clawkeeper" }, member.GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
            Assert.True(member.GetProperty("self").GetBoolean());
            Assert.True(member.GetProperty("reachable").GetBoolean());
        }
        using (var ready = await host.Http.GetAsync("/health/ready"))
        {
            var text = await ready.Content.ReadAsStringAsync();
            Assert.True(ready.StatusCode == HttpStatusCode.OK, text);
            Assert.Contains($"{self} is up", text);
        }

        using (var refused = await host.PostAsync("/cluster/leave", "not-the-token"))
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        await Task.Delay(500);
        Assert.Equal(MemberStatus.Up, cluster.SelfMember.Status);

        // A graceful leave ends the node: the host stops with it. Akka.Hosting marks the process's
        // exit code as failed after a cluster leave; that is for a real node, not for the test run.
        var lifetime = host.Host.Services.GetRequiredService<IHostApplicationLifetime>();
        var stopping = new TaskCompletionSource();
        lifetime.ApplicationStopping.Register(() => stopping.TrySetResult());
        try
        {
            using var accepted = await host.PostAsync("/cluster/leave", OpsTestHost.Token);
            Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
            Assert.Contains(self, await accepted.Content.ReadAsStringAsync());
            await host.System.WhenTerminated.WaitAsync(TimeSpan.FromSeconds(30));
            await stopping.Task.WaitAsync(TimeSpan.FromSeconds(10));
        }
        finally
        {
            Environment.ExitCode = 0;
        }
    }
}
