using System.Security.Cryptography;
using System.Text;
using ClawKeeper.Host.Tests.Support;
using ClawKeeper.Testing;
using Xunit;

namespace ClawKeeper.Host.Tests.Cli;

/// <summary><c>clawkeeper writes status|unblock</c>: a real process, a real database, a real block.</summary>
public class WritesCommandsSpec
{
    private const string Token = "correct-horse-battery-staple";

    private static Dictionary<string, string?> Environment(string database, string? token) => new()
    {
        ["CLAWKEEPER_PLATFORM_DB"] = database,
        ["CLAWKEEPER_SUPER_ADMIN_TOKEN_SHA256"] = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Token))),
        ["CLAWKEEPER_SUPER_ADMIN_TOKEN"] = token,
    };

    private static async Task<string> BlockedAsync(bool corrupt)
    {
        var database = await TestDatabases.CreateSeededAsync();
        if (corrupt)
        {
            await using var connection = await Sql.OpenAsync(database);
            await Sql.ExecuteAsync(connection, "set session_replication_role = replica");
            await Sql.ExecuteAsync(connection, "update journal_lines set credit_cents = credit_cents + 500 where id = (select min(id) from journal_lines where credit_cents > 0)");
        }
        await Sql.ExecuteAsync(database, "select impose_write_block('financial_totals_balance: test imbalance', 'clawkeeper-heartbeat')");
        return database;
    }

    [Fact]
    public async Task Status_shows_the_block_and_unblock_refuses_without_a_valid_credential_and_records_the_attempt()
    {
        var database = await BlockedAsync(corrupt: false);
        var status = await ClawKeeperProcess.RunAsync(Environment(database, null), "writes", "status");
        Assert.True(status.ExitCode == 0, status.ToString());
        Assert.Contains("WRITES BLOCKED: write block #1", status.StandardOutput);

        var missing = await ClawKeeperProcess.RunAsync(Environment(database, null), "writes", "unblock", "--reason", "repaired");
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("a super_admin credential is required", missing.StandardError);
        var wrong = await ClawKeeperProcess.RunAsync(Environment(database, "guess"), "writes", "unblock", "--reason", "repaired");
        Assert.Equal(2, wrong.ExitCode);
        Assert.Contains("not valid", wrong.StandardError);
        Assert.DoesNotContain("guess", wrong.StandardError);

        Assert.Equal(2L, await Sql.ScalarAsync<long>(database, "select count(*) from security_events where kind = 'unauthorized_access' and source = 'cli:writes-unblock'"));
        Assert.Equal(0L, await Sql.ScalarAsync<long>(database, "select count(*) from write_blocks where lifted_at is not null"));

        var noReason = await ClawKeeperProcess.RunAsync(Environment(database, Token), "writes", "unblock");
        Assert.Equal(2, noReason.ExitCode);
        Assert.Contains("--reason", noReason.StandardError);
    }

    [Fact]
    public async Task Unblock_is_refused_while_the_failure_persists_unless_forced_and_the_lift_is_audited()
    {
        var database = await BlockedAsync(corrupt: true);
        var refused = await ClawKeeperProcess.RunAsync(Environment(database, Token), "writes", "unblock", "--reason", "looks fine to me");
        Assert.True(refused.ExitCode == 1, refused.ToString());
        Assert.Contains("the integrity failure is still present", refused.StandardError);
        Assert.Contains("financial_totals_balance", refused.StandardError);
        Assert.Equal(0L, await Sql.ScalarAsync<long>(database, "select count(*) from write_blocks where lifted_at is not null"));

        var forced = await ClawKeeperProcess.RunAsync(Environment(database, Token), "writes", "unblock", "--reason", "posting the correcting entry", "--force", "--operator", "dana");
        Assert.True(forced.ExitCode == 0, forced.ToString());
        Assert.Contains("write block #1 lifted by super_admin:dana", forced.StandardOutput);
        var row = Assert.Single(await Sql.RowsAsync(database, "select lifted_by, lift_reason from write_blocks"));
        Assert.Equal("super_admin:dana", row[0]);
        Assert.Equal("[forced while failing: financial_totals_balance] posting the correcting entry", row[1]);
        Assert.Equal("write_block.lifted", await Sql.ScalarAsync<string>(database,
            "select action from audit_log where tenant_id = 'system' order by seq desc limit 1"));
    }

    [Fact]
    public async Task Unblock_lifts_once_the_platform_is_clean()
    {
        var database = await BlockedAsync(corrupt: false);
        var lifted = await ClawKeeperProcess.RunAsync(Environment(database, Token), "writes", "unblock", "--reason", "ledger recounted and verified");
        Assert.True(lifted.ExitCode == 0, lifted.ToString());
        var status = await ClawKeeperProcess.RunAsync(Environment(database, null), "writes", "status");
        Assert.Contains("Writes are open", status.StandardOutput);
        Assert.Contains("ledger recounted and verified", status.StandardOutput);
    }
}
