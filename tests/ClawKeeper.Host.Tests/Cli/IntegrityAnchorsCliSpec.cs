using System.Security.Cryptography;
using System.Text;
using ClawKeeper.Host.Tests.Support;
using ClawKeeper.Testing;
using Xunit;

namespace ClawKeeper.Host.Tests.Cli;

/// <summary>
/// The verified positions survive in the journal and hold in every process that verifies: a chain rewritten
/// consistently after <c>check --once</c> verified it fails <c>check --once --full</c>, and <c>writes unblock</c>
/// (another process, reading the same journal) refuses to lift the block without <c>--force</c>.
/// </summary>
public class IntegrityAnchorsCliSpec
{
    private const string Token = "correct-horse-battery-staple";
    private const string Tenant = "t-harbor-dental";

    private static Dictionary<string, string?> Environment(string database, string journal) => new()
    {
        ["CLAWKEEPER_PLATFORM_DB"] = database,
        ["CLAWKEEPER_JOURNAL_DB"] = journal,
        ["CLAWKEEPER_SUPER_ADMIN_TOKEN_SHA256"] = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Token))),
        ["CLAWKEEPER_SUPER_ADMIN_TOKEN"] = Token,
    };

    [Fact]
    public async Task A_covered_truncation_after_verification_fails_check_full_and_keeps_the_block_without_force()
    {
        var database = await TestDatabases.CreateSeededAsync();
        var journal = await TestDatabases.CreateEmptyAsync();
        var environment = Environment(database, journal);

        var verified = await ClawKeeperProcess.RunAsync(environment, "check", "--once", "--json");
        // The first round verifies everything and records the positions (other groups fail here: no providers, no API).
        using (var report = System.Text.Json.JsonDocument.Parse(verified.StandardOutput))
        {
            var integrity = report.RootElement.GetProperty("groups").EnumerateArray().Single(g => g.GetProperty("group").GetString() == "data_integrity");
            Assert.True(integrity.GetProperty("status").GetString() == "pass", verified.ToString());
        }
        Assert.Contains("(full verification)", verified.StandardOutput);

        // The last two entries deleted and the chain head rewound: consistent in itself.
        var last = await Sql.ScalarAsync<long>(database, "select max(seq) from audit_log where tenant_id = $1", Tenant);
        await using (var connection = await Sql.OpenAsync(database))
        {
            await Sql.ExecuteAsync(connection, "set session_replication_role = replica");
            await Sql.ExecuteAsync(connection, "delete from audit_log where tenant_id = $1 and seq > $2", Tenant, last - 2);
            await Sql.ExecuteAsync(connection, """
                update audit_chain_heads h set last_seq = a.seq, last_hash = a.hash
                from audit_log a where a.tenant_id = h.tenant_id and h.tenant_id = $1 and a.seq = $2
                """, Tenant, last - 2);
        }

        var full = await ClawKeeperProcess.RunAsync(environment, "check", "--once", "--full");
        Assert.True(full.ExitCode == 1, full.ToString());
        Assert.Contains($"tenant {Tenant}: seq {last - 1}..{last} missing: verified up to seq {last} before, now ends at {last - 2}", full.StandardOutput);
        Assert.Contains("WRITES BLOCKED", full.StandardOutput);

        var refused = await ClawKeeperProcess.RunAsync(environment, "writes", "unblock", "--reason", "a full check looked fine");
        Assert.True(refused.ExitCode == 1, refused.ToString());
        Assert.Contains("the integrity failure is still present", refused.StandardError);
        Assert.Contains($"verified up to seq {last} before, now ends at {last - 2}", refused.StandardError);
        Assert.Equal(0L, await Sql.ScalarAsync<long>(database, "select count(*) from write_blocks where lifted_at is not null"));

        var forced = await ClawKeeperProcess.RunAsync(environment, "writes", "unblock", "--reason", "entries restored from backup next", "--force", "--operator", "dana");
        Assert.True(forced.ExitCode == 0, forced.ToString());
        Assert.Equal("[forced while failing: audit_log_continuous] entries restored from backup next",
            await Sql.ScalarAsync<string>(database, "select lift_reason from write_blocks where lifted_at is not null"));
    }
}
