using System.Net;
using System.Text.Json;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
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
            // Akka Management's ClusterMembers.
            using var body = JsonDocument.Parse(await members.Content.ReadAsStringAsync());
            var root = body.RootElement;
            Assert.Equal(self, root.GetProperty("selfNode").GetString());
            var member = Assert.Single(root.GetProperty("members").EnumerateArray());
            Assert.Equal(self, member.GetProperty("node").GetString());
            Assert.Equal(cluster.SelfUniqueAddress.Uid.ToString(System.Globalization.CultureInfo.InvariantCulture), member.GetProperty("nodeUid").GetString());
            Assert.Equal("Up", member.GetProperty("status").GetString());
            Assert.Equal(new[] { "clawkeeper" }, member.GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
            Assert.Equal(0, root.GetProperty("unreachable").GetArrayLength());
            Assert.Equal(self, root.GetProperty("leader").GetString());
            Assert.Equal(self, root.GetProperty("oldest").GetString());
            Assert.Equal(self, root.GetProperty("oldestPerRole").GetProperty("clawkeeper").GetString());
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

/// <summary><c>POST /cluster/down</c> on a real cluster of two ActorSystems, one of which dies without leaving.</summary>
public class OpsClusterDownSpec
{
    private static async Task<string> TextAsync(HttpResponseMessage response) => await response.Content.ReadAsStringAsync();

    [Fact]
    public async Task Down_validates_the_address_needs_the_token_refuses_a_reachable_member_and_downs_an_unreachable_one()
    {
        var state = OpsSamples.StateWith(OpsSamples.Report(DateTimeOffset.UtcNow, failing: false));
        // The split-brain resolver must not act first (two nodes, one gone: it would down a side after stable-after).
        await using var host = await OpsTestHost.StartAsync(await TestDatabases.CreateSeededAsync(), state, clustered: true,
            extraHocon: "akka.cluster.split-brain-resolver.stable-after = 120s");
        var cluster = Cluster.Get(host.System);
        Assert.True(await OpsTestHost.EventuallyAsync(() => cluster.SelfMember.Status == MemberStatus.Up, TimeSpan.FromSeconds(20)), "the node joins itself");

        // A second member that will die without leaving (no coordinated shutdown, no leave).
        var second = ActorSystem.Create(host.System.Name, ConfigurationFactory.ParseString($$"""
            akka.loglevel = WARNING
            akka.actor.provider = cluster
            akka.remote.dot-netty.tcp.hostname = 127.0.0.1
            akka.remote.dot-netty.tcp.port = 0
            akka.cluster.roles = [clawkeeper]
            akka.cluster.seed-nodes = ["{{cluster.SelfAddress}}"]
            akka.coordinated-shutdown.run-by-actor-system-terminate = off
            akka.cluster.run-coordinated-shutdown-when-down = off
            """));
        try
        {
            var secondAddress = Cluster.Get(second).SelfAddress;
            Assert.True(await OpsTestHost.EventuallyAsync(() => cluster.State.Members.Count(m => m.Status == MemberStatus.Up) == 2, TimeSpan.FromSeconds(30)),
                "the second member is up: " + string.Join(", ", cluster.State.Members));
            var down = $"/cluster/down?address={Uri.EscapeDataString(secondAddress.ToString())}";

            using (var missing = await host.PostAsync("/cluster/down", OpsTestHost.Token))
            {
                Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
                Assert.Contains(secondAddress.ToString(), await TextAsync(missing)); // the members are listed
            }
            using (var malformed = await host.PostAsync("/cluster/down?address=not-an-address", OpsTestHost.Token))
            {
                Assert.Equal(HttpStatusCode.BadRequest, malformed.StatusCode);
                Assert.Contains("is not a member address such as", await TextAsync(malformed));
            }
            using (var unknown = await host.PostAsync($"/cluster/down?address={Uri.EscapeDataString($"akka.tcp://{host.System.Name}@127.0.0.1:1")}", OpsTestHost.Token))
            {
                Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
                Assert.Contains("is not a member of this cluster", await TextAsync(unknown));
            }
            using (var self = await host.PostAsync($"/cluster/down?address={Uri.EscapeDataString(cluster.SelfAddress.ToString())}", OpsTestHost.Token))
            {
                Assert.Equal(HttpStatusCode.BadRequest, self.StatusCode);
                Assert.Contains("/cluster/leave", await TextAsync(self));
            }
            using (var refused = await host.PostAsync(down, "not-the-token"))
                Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            using (var reachable = await host.PostAsync(down, OpsTestHost.Token))
            {
                Assert.Equal(HttpStatusCode.Conflict, reachable.StatusCode);
                Assert.Contains("is reachable", await TextAsync(reachable));
            }
            await Task.Delay(500);
            Assert.Equal(2, cluster.State.Members.Count(m => m.Status == MemberStatus.Up));
            Assert.Contains(host.Warnings, w => w.Contains("ops: refused POST /cluster/down"));

            // The second member dies without a word: unreachable, then downed through the ops surface.
            await second.Terminate();
            Assert.True(await OpsTestHost.EventuallyAsync(() => cluster.State.Unreachable.Any(m => m.Address.Equals(secondAddress)), TimeSpan.FromSeconds(40)),
                "the dead member becomes unreachable");
            using (var accepted = await host.PostAsync(down, OpsTestHost.Token))
            {
                var text = await TextAsync(accepted);
                Assert.True(accepted.StatusCode == HttpStatusCode.Accepted, text);
                Assert.Contains(secondAddress.ToString(), text);
            }
            Assert.True(await OpsTestHost.EventuallyAsync(() => cluster.State.Members.All(m => !m.Address.Equals(secondAddress)), TimeSpan.FromSeconds(40)),
                "the downed member is removed: " + string.Join(", ", cluster.State.Members));
            Assert.Equal(MemberStatus.Up, cluster.SelfMember.Status);
            using var members = await host.Http.GetAsync("/cluster/members");
            Assert.DoesNotContain(secondAddress.ToString(), await TextAsync(members));
        }
        finally
        {
            await second.Terminate();
        }
    }
}

/// <summary>Akka Management's Cluster HTTP routes on a real cluster of this host and other ActorSystems.</summary>
public class OpsClusterHttpSpec
{
    private static ActorSystem Member(string systemName, Address seed) =>
        ActorSystem.Create(systemName, ConfigurationFactory.ParseString($$"""
            akka.loglevel = WARNING
            akka.actor.provider = cluster
            akka.remote.dot-netty.tcp.hostname = 127.0.0.1
            akka.remote.dot-netty.tcp.port = 0
            akka.cluster.roles = [clawkeeper]
            akka.cluster.seed-nodes = ["{{seed}}"]
            akka.coordinated-shutdown.run-by-actor-system-terminate = off
            akka.cluster.run-coordinated-shutdown-when-down = off
            """));

    private static async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(OpsTestHost host, HttpMethod method, string path, string? bearer = null, string? operation = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (operation is not null) request.Content = new FormUrlEncodedContent([new KeyValuePair<string, string>("operation", operation)]);
        if (bearer is not null) request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + bearer);
        using var response = await host.Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    [Fact]
    public async Task Members_member_leave_and_down_answer_as_Akka_Management_does()
    {
        var state = OpsSamples.StateWith(OpsSamples.Report(DateTimeOffset.UtcNow, failing: false));
        await using var host = await OpsTestHost.StartAsync(await TestDatabases.CreateSeededAsync(), state, clustered: true,
            extraHocon: "akka.cluster.split-brain-resolver.stable-after = 120s");
        var cluster = Cluster.Get(host.System);
        Assert.True(await OpsTestHost.EventuallyAsync(() => cluster.SelfMember.Status == MemberStatus.Up, TimeSpan.FromSeconds(20)), "the node joins itself");

        // 1. A second member: listed, found by full address and by host:port, made to leave with PUT operation=Leave.
        var second = Member(host.System.Name, cluster.SelfAddress);
        var third = default(ActorSystem);
        try
        {
            var secondAddress = Cluster.Get(second).SelfAddress;
            Assert.True(await OpsTestHost.EventuallyAsync(() => cluster.State.Members.Count(m => m.Status == MemberStatus.Up) == 2, TimeSpan.FromSeconds(30)),
                "the second member is up: " + string.Join(", ", cluster.State.Members));

            var (listed, members) = await SendAsync(host, HttpMethod.Get, "/cluster/members");
            Assert.Equal(HttpStatusCode.OK, listed);
            Assert.Equal(new[] { cluster.SelfAddress.ToString(), secondAddress.ToString() }.OrderBy(a => a, StringComparer.Ordinal),
                members.GetProperty("members").EnumerateArray().Select(m => m.GetProperty("node").GetString()).OrderBy(a => a, StringComparer.Ordinal));
            Assert.All(members.GetProperty("members").EnumerateArray(), m => Assert.Equal("Up", m.GetProperty("status").GetString()));
            Assert.Equal(cluster.SelfAddress.ToString(), members.GetProperty("oldest").GetString()); // this node joined first

            foreach (var name in new[] { Uri.EscapeDataString(secondAddress.ToString()), $"{secondAddress.Host}:{secondAddress.Port}", secondAddress.ToString() })
            {
                var (found, member) = await SendAsync(host, HttpMethod.Get, "/cluster/members/" + name);
                Assert.True(found == HttpStatusCode.OK, $"{name}: {found} {member}");
                Assert.Equal(secondAddress.ToString(), member.GetProperty("node").GetString());
                Assert.Equal(Cluster.Get(second).SelfUniqueAddress.Uid.ToString(System.Globalization.CultureInfo.InvariantCulture), member.GetProperty("nodeUid").GetString());
            }
            var (missing, notFound) = await SendAsync(host, HttpMethod.Get, "/cluster/members/127.0.0.1:1");
            Assert.Equal(HttpStatusCode.NotFound, missing);
            Assert.Equal("Member [127.0.0.1:1] not found", notFound.GetProperty("message").GetString());

            var target = $"/cluster/members/{secondAddress.Host}:{secondAddress.Port}";
            Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(host, HttpMethod.Put, target, bearer: null, operation: "Leave")).Status);
            Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(host, HttpMethod.Put, target, bearer: "not-the-token", operation: "Down")).Status);
            var (unsupported, why) = await SendAsync(host, HttpMethod.Put, target, OpsTestHost.Token, operation: "Join");
            Assert.Equal(HttpStatusCode.BadRequest, unsupported);
            Assert.Equal("Operation not supported", why.GetProperty("message").GetString());
            await Task.Delay(300);
            Assert.Equal(2, cluster.State.Members.Count(m => m.Status == MemberStatus.Up));

            var (leaving, left) = await SendAsync(host, HttpMethod.Put, target, OpsTestHost.Token, operation: "Leave");
            Assert.Equal(HttpStatusCode.OK, leaving);
            Assert.Equal($"Leaving {secondAddress}", left.GetProperty("message").GetString());
            Assert.True(await OpsTestHost.EventuallyAsync(() => cluster.State.Members.All(m => !m.Address.Equals(secondAddress)), TimeSpan.FromSeconds(40)),
                "the member that left is removed: " + string.Join(", ", cluster.State.Members));

            // 2. A third member dies without a word: listed as unreachable, then downed with PUT operation=Down.
            third = Member(host.System.Name, cluster.SelfAddress);
            var thirdAddress = Cluster.Get(third).SelfAddress;
            Assert.True(await OpsTestHost.EventuallyAsync(() => cluster.State.Members.Count(m => m.Status == MemberStatus.Up) == 2, TimeSpan.FromSeconds(30)),
                "the third member is up: " + string.Join(", ", cluster.State.Members));
            await third.Terminate();
            Assert.True(await OpsTestHost.EventuallyAsync(() => cluster.State.Unreachable.Any(m => m.Address.Equals(thirdAddress)), TimeSpan.FromSeconds(40)),
                "the dead member becomes unreachable");
            var (_, withUnreachable) = await SendAsync(host, HttpMethod.Get, "/cluster/members");
            Assert.Equal(thirdAddress.ToString(), Assert.Single(withUnreachable.GetProperty("unreachable").EnumerateArray()).GetProperty("node").GetString());

            var (downing, downed) = await SendAsync(host, HttpMethod.Put, "/cluster/members/" + Uri.EscapeDataString(thirdAddress.ToString()), OpsTestHost.Token, operation: "down");
            Assert.Equal(HttpStatusCode.OK, downing);
            Assert.Equal($"Downing {thirdAddress}", downed.GetProperty("message").GetString());
            Assert.True(await OpsTestHost.EventuallyAsync(() => cluster.State.Members.All(m => !m.Address.Equals(thirdAddress)), TimeSpan.FromSeconds(40)),
                "the downed member is removed: " + string.Join(", ", cluster.State.Members));
            Assert.Equal(MemberStatus.Up, cluster.SelfMember.Status);
            Assert.Contains(host.Warnings, w => w.Contains($"ops: down of {thirdAddress}"));
        }
        finally
        {
            await second.Terminate();
            if (third is not null) await third.Terminate();
        }
    }
}
