using System.Text.Json;
using ClawKeeper.Host.Configuration;
using ClawKeeper.Host.Tests.Support;
using ClawKeeper.Testing;
using Xunit;

namespace ClawKeeper.Host.Tests.Cli;

/// <summary>
/// <c>check --once</c> from cron, the protocol's rule on the real executable: three runs in a row, each failing on
/// another check (an expired API key, a stuck task, a flooded queue), reach super_admin by e-mail and Discord at the
/// third run, not before, with all three problems as evidence.
/// </summary>
public class CheckEscalationSpec
{
    private const string SuperAdmin = "owner@clawkeeper.test";

    [Fact]
    public async Task Rotating_failures_over_three_runs_escalate_to_super_admin_by_email_and_discord_at_the_third_run()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await using var providers = await LoopbackHttpServer.StartAsync();
        await using var smtp = await LoopbackSmtpServer.StartAsync();
        await using var discord = await DiscordWebhookStandIn.StartAsync();
        var directory = Directory.CreateTempSubdirectory("clawkeeper-cron-").FullName;
        var configFile = Path.Combine(directory, "cron.conf");
        // One journal for every run, as a cron job on one machine has (each run is its own process).
        await File.WriteAllTextAsync(configFile, ProviderStandIns.Hocon(providers.BaseAddress) + $$"""

            clawkeeper {
              journal.sqlite-path = {{ConfigurationLoader.Quote(Path.Combine(directory, "journal.db"))}}
              alerts {
                retry { min-backoff = 200ms, max-backoff = 2s }
                smtp { host = "127.0.0.1", port = {{smtp.Port}}, tls = none }
                audiences.super_admin { email = ["{{SuperAdmin}}"], discord-webhook = {{ConfigurationLoader.Quote(discord.Webhook.ToString())}} }
              }
            }
            """);

        async Task<JsonElement> RunAsync(string failing)
        {
            var result = await ClawKeeperProcess.RunAsync(ClawKeeperProcess.PlatformDb(database), "check", "--once", "--json", "--config", configFile);
            Assert.True(result.ExitCode == 1, result.ToString());
            var root = JsonDocument.Parse(result.StandardOutput).RootElement.Clone();
            var problems = root.GetProperty("groups").EnumerateArray().SelectMany(g => g.GetProperty("checks").EnumerateArray())
                .Where(c => c.GetProperty("status").GetString() is "fail" or "error")
                .Select(c => c.GetProperty("check").GetString()).ToList();
            Assert.True(problems.SequenceEqual(new[] { failing }), $"expected only {failing} to fail: {string.Join(", ", problems)}\n{result}");
            return root;
        }

        static bool Escalates(JsonElement report) => report.GetProperty("alerts").EnumerateArray()
            .Any(a => a.GetProperty("dedupKey").GetString() == "heartbeat:consecutive-failures:super_admin");

        // 1: an expired API key.
        await Sql.ExecuteAsync(database, "update api_keys set expires_at = now() - interval '2 days' where id = 'key-t-acme-bakery-primary'");
        var first = await RunAsync("api_keys_valid");
        Assert.Equal(1, first.GetProperty("consecutiveFailures").GetInt32());
        Assert.False(Escalates(first));

        // 2: the key renewed; a task stuck for two hours.
        await Sql.ExecuteAsync(database, """
            update api_keys set expires_at = now() + interval '90 days' where id = 'key-t-acme-bakery-primary';
            insert into tasks (id, tenant_id, orchestrator, status, created_at, assigned_at, started_at, attempts)
            values ('task-stuck-2h', 't-summit-hvac', 'support-lead', 'running', now() - interval '3 hours', now() - interval '2 hours', now() - interval '2 hours', 1);
            """);
        var second = await RunAsync("stuck_tasks");
        Assert.Equal(2, second.GetProperty("consecutiveFailures").GetInt32());
        Assert.False(Escalates(second));
        Assert.Empty(smtp.Received); // nothing to super_admin before the third failed heartbeat
        Assert.Empty(discord.Messages);

        // 3: the stuck task cleared away; the queue flooded.
        await Sql.ExecuteAsync(database, """
            delete from tasks where id = 'task-stuck-2h';
            insert into tasks (id, tenant_id, orchestrator, status, created_at)
            select 'flood-' || n, 't-acme-bakery', 'cfo', 'pending', now() from generate_series(1, 150) n;
            """);
        var third = await RunAsync("queue_depth");
        Assert.Equal(3, third.GetProperty("consecutiveFailures").GetInt32());
        Assert.True(Escalates(third), third.ToString());

        // check --once waits for the hand-off before it exits: both channels have it now.
        var mail = Assert.Single(smtp.Received);
        Assert.Equal(new[] { SuperAdmin }, mail.EnvelopeTo);
        var text = mail.Message.TextBody ?? mail.Message.HtmlBody ?? "";
        Assert.Contains("3 consecutive failed heartbeats", mail.Message.Subject + "\n" + text);
        foreach (var check in new[] { "api_keys_valid", "stuck_tasks", "queue_depth" })
            Assert.Contains(check, text);
        var post = Assert.Single(discord.Messages);
        Assert.Contains("consecutive failed heartbeats", post.Body);
        foreach (var check in new[] { "api_keys_valid", "stuck_tasks", "queue_depth" })
            Assert.Contains(check, post.Body);

        var rows = await Sql.RowsAsync(database, "select task_id, status from agent_runs where agent_id = 'clawkeeper' order by started_at");
        Assert.Equal(new[] { "failed", "failed", "failed" }, rows.Select(r => (string)r[1]!));
        Assert.Equal(new[] { first, second, third }.Select(r => r.GetProperty("id").GetString()), rows.Select(r => (string)r[0]!));
    }
}
