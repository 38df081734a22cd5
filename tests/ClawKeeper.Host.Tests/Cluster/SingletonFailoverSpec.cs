using System.Net;
using ClawKeeper.Testing;
using Xunit;

namespace ClawKeeper.Host.Tests.ClusterSpecs;

/// <summary>
/// Three real node processes on one shared PostgreSQL journal: the heartbeat singleton moves to a
/// survivor after a hard kill and after a graceful leave, with its state intact. Correctness, not
/// timing: the timeouts are generous (the benchmark measures the failover time).
/// </summary>
[Collection(ClusterProcesses.Name)]
public class SingletonFailoverSpec
{
    [Fact]
    public async Task A_hard_killed_singleton_resumes_on_a_survivor_with_failures_write_block_watermarks_and_undelivered_alerts()
    {
        await using var scenario = await FailoverScenario.StartAsync();
        var cluster = scenario.Cluster;
        var victim = await scenario.PrepareHolderAsync();
        var victimRounds = victim.Heartbeats.Select(h => h.Id).ToHashSet();
        Assert.Contains(victim.Lines, l => l.Text.Contains("Alert for super_admin via email"));

        var killedAt = cluster.Clock.Elapsed;
        victim.Kill();
        Assert.True(await victim.WaitForExitAsync(TimeSpan.FromSeconds(30)), "the killed node is gone");
        victimRounds.UnionWith(victim.Heartbeats.Select(h => h.Id));

        var moved = await cluster.WaitForRecoveryElsewhereAsync(victim, killedAt, FailoverScenario.Generous);
        Assert.True(moved is not null, "no survivor recovered the supervisor\n" + cluster.Tails());
        var (survivor, recovery) = moved!.Value;
        var recovered = FailoverScenario.ParseRecovery(recovery.Text);
        Assert.True(recovered.ConsecutiveFailures >= 2, recovery.Text);
        Assert.True(recovered.WriteBlockActive, recovery.Text);

        // The undelivered alerts of the dead node's heartbeats reach an SMTP server that starts only now.
        await using var smtp = await LoopbackSmtpServer.StartAsync(port: scenario.SmtpPort);
        var firstOnSurvivor = await survivor.WaitForLineAsync(l => ClawKeeperNodeProcess.SummaryLine().IsMatch(l), FailoverScenario.Generous, recovery.Index);
        Assert.True(firstOnSurvivor is not null, "the survivor completed no heartbeat\n" + cluster.Tails());
        var first = ClawKeeperNodeProcess.SummaryLine().Match(firstOnSurvivor!.Text);
        Assert.Equal(recovered.ConsecutiveFailures + 1, int.Parse(first.Groups["n"].Value));

        var deadline = DateTime.UtcNow + FailoverScenario.Generous;
        while (DateTime.UtcNow < deadline && !smtp.Received.Any(m => victimRounds.Any(id => m.Message.Subject?.Contains(id) == true)))
            await Task.Delay(100);
        Assert.True(smtp.Received.Any(m => victimRounds.Any(id => m.Message.Subject?.Contains(id) == true)),
            $"no e-mail of the killed node's heartbeats ({string.Join(", ", victimRounds)}) arrived; got: "
            + string.Join(" | ", smtp.Received.Select(m => m.Message.Subject)) + "\n" + cluster.Tails());

        // One more round on the survivor, then the whole history.
        Assert.NotNull(await survivor.WaitForLineAsync(l => ClawKeeperNodeProcess.SummaryLine().IsMatch(l), FailoverScenario.Generous, firstOnSurvivor.Index + 1));
        var rows = await WaitForRowAsync(scenario, first.Groups["id"].Value);
        var afterKill = rows.SkipWhile(r => r.Id != first.Groups["id"].Value).ToList();
        // The verified positions came along: no full re-verification was forced by the move.
        Assert.All(afterKill, r => Assert.Contains("(incremental)", r.AuditObserved));
        Assert.Contains(rows, r => victimRounds.Contains(r.Id));
        Assert.Equal(recovered.ConsecutiveFailures + 1, afterKill[0].ConsecutiveFailures);
        Assert.Null(cluster.Running.Where(n => n != survivor).SelectMany(n => n.Recoveries).FirstOrDefault(l => l.At >= killedAt));
    }

    [Fact]
    public async Task A_graceful_leave_and_a_SIGTERM_hand_the_singleton_over_with_its_state()
    {
        await using var scenario = await FailoverScenario.StartAsync();
        var cluster = scenario.Cluster;

        // 1. POST /cluster/leave on the singleton's node.
        var leaving = await scenario.PrepareHolderAsync();
        var leftAt = cluster.Clock.Elapsed;
        Assert.Equal(HttpStatusCode.Accepted, await leaving.LeaveAsync(FailoverScenario.OpsToken));
        var moved = await cluster.WaitForRecoveryElsewhereAsync(leaving, leftAt, FailoverScenario.Generous);
        Assert.True(moved is not null, "no node took the singleton over after the leave\n" + cluster.Tails());
        Assert.True(await leaving.WaitForExitAsync(FailoverScenario.Generous), "the node that left did not shut down\n" + cluster.Tails());
        var (heir, recovery) = moved!.Value;
        var handedOver = FailoverScenario.ParseRecovery(recovery.Text);
        Assert.True(handedOver.ConsecutiveFailures >= 2 && handedOver.WriteBlockActive, recovery.Text);
        var next = await heir.WaitForLineAsync(l => ClawKeeperNodeProcess.SummaryLine().IsMatch(l), FailoverScenario.Generous, recovery.Index);
        Assert.True(next is not null, "the heir completed no heartbeat\n" + cluster.Tails());
        Assert.Equal(handedOver.ConsecutiveFailures + 1, int.Parse(ClawKeeperNodeProcess.SummaryLine().Match(next!.Text).Groups["n"].Value));

        // 2. SIGTERM on the new holder: the generic host stops, coordinated shutdown leaves the cluster.
        var terminatedAt = cluster.Clock.Elapsed;
        heir.Terminate();
        var movedAgain = await cluster.WaitForRecoveryElsewhereAsync(heir, terminatedAt, FailoverScenario.Generous);
        Assert.True(movedAgain is not null, "no node took the singleton over after SIGTERM\n" + cluster.Tails());
        Assert.True(await heir.WaitForExitAsync(FailoverScenario.Generous), "the SIGTERMed node did not exit\n" + cluster.Tails());
        var (last, lastRecovery) = movedAgain!.Value;
        Assert.NotEqual(leaving, last);
        var again = FailoverScenario.ParseRecovery(lastRecovery.Text);
        Assert.True(again.ConsecutiveFailures > handedOver.ConsecutiveFailures && again.WriteBlockActive, lastRecovery.Text);
        var lastReport = await last.WaitForLineAsync(l => ClawKeeperNodeProcess.SummaryLine().IsMatch(l), FailoverScenario.Generous, lastRecovery.Index);
        Assert.True(lastReport is not null, "the last node completed no heartbeat\n" + cluster.Tails());

        var id = ClawKeeperNodeProcess.SummaryLine().Match(lastReport!.Text).Groups["id"].Value;
        var rows = await WaitForRowAsync(scenario, id);
        Assert.Contains("(incremental)", rows.Single(r => r.Id == id).AuditObserved);
    }

    /// <summary>Waits for the row of <paramref name="id"/>, then asserts the invariants over the whole history.</summary>
    private static async Task<IReadOnlyList<HeartbeatRow>> WaitForRowAsync(FailoverScenario scenario, string id)
    {
        var deadline = DateTime.UtcNow + FailoverScenario.Generous;
        while (DateTime.UtcNow < deadline && (await scenario.HeartbeatRowsAsync()).All(r => r.Id != id))
            await Task.Delay(200);
        return await scenario.AssertContinuousHistoryAsync();
    }
}

/// <summary>Specs that start several node processes run one at a time (2 cores).</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ClusterProcesses
{
    public const string Name = "cluster processes";
}
