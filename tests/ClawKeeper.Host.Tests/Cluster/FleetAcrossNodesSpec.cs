using ClawKeeper.Host.Tests.Support;
using ClawKeeper.Testing;
using Xunit;

namespace ClawKeeper.Host.Tests.ClusterSpecs;

/// <summary>
/// Real node processes working ONE task queue at the same time, and across a hard kill: no task is run to
/// completion twice and none is lost. Two fleets work the queue concurrently: the singleton's node of a
/// 3-node cluster and a standalone node (its own one-node cluster and journal); then the cluster's
/// singleton node is killed mid-work, its claims are swept back, and the survivor's fleet finishes them.
/// </summary>
[Collection(ClusterProcesses.Name)]
public class FleetAcrossNodesSpec
{
    private const int Tasks = 600;

    [Fact]
    public async Task Fleets_on_several_nodes_and_across_a_hard_kill_complete_every_task_exactly_once()
    {
        var platformDb = await TestDatabases.CreateSeededAsync();
        var tenant = await Sql.ScalarAsync<string>(platformDb, "select id from tenants where id <> 'system' order by id limit 1");

        var config = Path.Combine(Directory.CreateTempSubdirectory("clawkeeper-fleet-config-").FullName, "fleet.conf");
        await File.WriteAllTextAsync(config, """
            clawkeeper {
              heartbeat { interval = 60s, initial-delay = 20s, retry.interval = 10s }
              fleet {
                claim-tasks = on
                poll-interval = 200ms
                task-timeout = 10s
                release-grace = 1s
                # The killed node never releases its claims: the survivor sweeps them back.
                orphan-after = 12s
                orphan-sweep-interval = 1s
                executor.simulated { duration-min = 1s, duration-max = 4s, failure-ratio = 0 }
              }
            }
            """);
        ClusterNodeOptions Options(string journal) => new()
        {
            AssemblyPath = ClawKeeperProcess.AssemblyPath,
            PlatformDb = platformDb,
            JournalDb = journal,
            ConfigFile = config,
            OpsTokenSha256 = FailoverScenario.OpsTokenSha256,
        };

        await using var cluster = new ClawKeeperCluster(Options(await TestDatabases.CreateEmptyAsync()));
        await using var standalone = new ClawKeeperCluster(Options(await TestDatabases.CreateEmptyAsync()) with { Seeds = 1 });
        await cluster.StartAsync(3, FailoverScenario.Generous);
        await standalone.StartAsync(1, FailoverScenario.Generous);
        // The queue fills once both fleets are up, so that both work it at the same time.
        await Sql.ExecuteAsync(platformDb, """
            insert into tasks (id, tenant_id, orchestrator, kind, created_at)
            select 'xnode-' || lpad(i::text, 4, '0'), $1,
                   (array['cfo', 'reconciliation-lead', 'support-lead', 'compliance-lead'])[1 + i % 4], 'reconcile',
                   now() - interval '10 minutes' + i * interval '1 millisecond'
            from generate_series(1, $2) as i
            """, tenant, Tasks);
        var victim = cluster.SingletonHolder()!;
        var other = standalone.Nodes[0];

        // Both fleets have completed work from the one queue before the kill.
        await WaitAsync(async () =>
            await CompletedByAsync(platformDb, victim.RemotingPort) >= 10 && await CompletedByAsync(platformDb, other.RemotingPort) >= 10,
            "both fleets completing tasks", cluster, standalone);
        var killedAt = cluster.Clock.Elapsed;
        var heldAtKill = await Sql.ScalarAsync<long>(platformDb,
            "select count(*) from tasks where id like 'xnode-%' and status in ('assigned', 'running') and claimed_by like $1", $"127.0.0.1:{victim.RemotingPort}/%");
        victim.Kill();

        var moved = await cluster.WaitForRecoveryElsewhereAsync(victim, killedAt, FailoverScenario.Generous);
        Assert.True(moved is not null, "no survivor took the singleton (and its fleet) over\n" + cluster.Tails());
        await WaitAsync(async () => await Sql.ScalarAsync<long>(platformDb, "select count(*) from tasks where id like 'xnode-%' and status = 'completed'") == Tasks,
            $"all {Tasks} tasks completed", cluster, standalone, TimeSpan.FromMinutes(4));

        // Exactly one completed run per task; nothing failed, nothing lost.
        var runs = await Sql.RowsAsync(platformDb, """
            select count(*), count(distinct task_id), min(n), max(n) from (
              select task_id, count(*) filter (where status = 'completed') as n from agent_runs where task_id like 'xnode-%' group by task_id) per_task
            """);
        Assert.Equal(new object?[] { (long)Tasks, (long)Tasks, 1L, 1L }, runs[0]);
        Assert.Equal(0L, await Sql.ScalarAsync<long>(platformDb, "select count(*) from tasks where id like 'xnode-%' and status <> 'completed'"));
        // Three fleets did the work: the killed node, the standalone node, and the survivor that took the singleton over.
        Assert.True(await CompletedByAsync(platformDb, moved!.Value.Node.RemotingPort) > 0, "the survivor's fleet completed tasks");
        Assert.True(await CompletedByAsync(platformDb, victim.RemotingPort) >= 10);
        Assert.True(await CompletedByAsync(platformDb, other.RemotingPort) >= 10);
        // What the killed node held was run again elsewhere (a second attempt), and completed once.
        if (heldAtKill > 0)
            Assert.True(await Sql.ScalarAsync<long>(platformDb, "select count(*) from tasks where id like 'xnode-%' and attempts > 1") > 0,
                $"{heldAtKill} tasks were held by the killed node; none shows a second attempt");
    }

    private static Task<long> CompletedByAsync(string platformDb, int remotingPort) =>
        Sql.ScalarAsync<long>(platformDb, "select count(*) from tasks where id like 'xnode-%' and status = 'completed' and claimed_by like $1",
            $"127.0.0.1:{remotingPort}/%");

    private static async Task WaitAsync(Func<Task<bool>> condition, string what, ClawKeeperCluster cluster, ClawKeeperCluster standalone, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? FailoverScenario.Generous);
        while (DateTime.UtcNow < deadline)
        {
            if (await condition()) return;
            await Task.Delay(250);
        }
        Assert.Fail($"waited in vain for {what}\n{cluster.Tails()}\n{standalone.Tails()}");
    }
}
