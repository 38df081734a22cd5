using System.Security.Cryptography;
using System.Text;
using ClawKeeper.Testing;
using Npgsql;

namespace ClawKeeper.Platform.Tests.Schema;

/// <summary>Shares one migrated database; each test writes its own tenants.</summary>
public sealed class AuditChainSpec(MigratedDatabaseFixture platform) : IClassFixture<MigratedDatabaseFixture>
{
    private const string Genesis = "0000000000000000000000000000000000000000000000000000000000000000";

    [Fact]
    public async Task Inserts_get_seq_1_to_n_per_tenant_linked_by_prev_hash_whatever_the_caller_passes()
    {
        var database = platform.ConnectionString;
        await InsertTenantsAsync(database, "t-chain-a", "t-chain-b");

        for (var i = 0; i < 5; i++)
        {
            // Forged seq/prev_hash/hash must be overwritten by the database.
            await Sql.ExecuteAsync(database, """
                INSERT INTO audit_log (tenant_id, seq, actor, action, entity_type, entity_id, payload, prev_hash, hash)
                VALUES ($1, 1000, 'tester', 'thing.done', 'thing', $2, $3::jsonb, repeat('f', 64), repeat('e', 64))
                """, i % 2 == 0 ? "t-chain-a" : "t-chain-b", $"thing-{i}", $$"""{"n": {{i}}, "note": "naïve ✓"}""");
        }

        var chainA = await ChainAsync(database, "t-chain-a");
        var chainB = await ChainAsync(database, "t-chain-b");
        Assert.Equal([1L, 2L, 3L], chainA.Select(entry => entry.Seq));
        Assert.Equal([1L, 2L], chainB.Select(entry => entry.Seq));
        foreach (var chain in new[] { chainA, chainB })
        {
            Assert.Equal(Genesis, chain[0].PrevHash);
            for (var i = 1; i < chain.Count; i++)
            {
                Assert.Equal(chain[i - 1].Hash, chain[i].PrevHash);
            }

            Assert.All(chain, entry => Assert.Matches("^[0-9a-f]{64}$", entry.Hash));
            Assert.Equal(chain.Count, chain.Select(entry => entry.Hash).Distinct().Count());
        }

        Assert.Equal(0L, await CountEntriesWhoseHashDoesNotRecomputeAsync(database, "t-chain-a", "t-chain-b"));
        var head = Assert.Single(await Sql.RowsAsync(database,
            "SELECT last_seq, last_hash FROM audit_chain_heads WHERE tenant_id = 't-chain-a'"));
        Assert.Equal([3L, chainA[^1].Hash], head);
    }

    [Fact]
    public async Task The_hash_is_sha256_of_the_documented_length_prefixed_canonical_encoding()
    {
        var database = platform.ConnectionString;
        var occurredAt = new DateTime(2026, 11, 28, 4, 0, 0, DateTimeKind.Utc).AddTicks(1234560); // .123456 s

        var sqlHash = await Sql.ScalarAsync<string>(database,
            "SELECT audit_entry_hash('t-1', 42, $1, 'agent:cfo', 'entry.posted', NULL, 'je;1', '{\"b\": 1, \"a\": \"é\"}'::jsonb, $2)",
            occurredAt, Genesis);

        static string Field(string? value) => value is null ? "N;" : $"S{Encoding.UTF8.GetByteCount(value)}:{value};";
        var epochMicros = (occurredAt - DateTime.UnixEpoch).Ticks / 10;
        var canonical = "clawkeeper-audit-v1" + Field("t-1") + Field("42") + Field(epochMicros.ToString(System.Globalization.CultureInfo.InvariantCulture))
                        + Field("agent:cfo") + Field("entry.posted") + Field(null) + Field("je;1")
                        + Field("""{"a": "é", "b": 1}""") + Field(Genesis);
        var expected = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));

        Assert.Equal(expected, sqlHash);
    }

    [Fact]
    public async Task The_encoding_tells_null_from_empty_and_does_not_let_fields_run_into_each_other()
    {
        var database = platform.ConnectionString;

        var hashes = await Sql.RowsAsync(database, $$"""
            SELECT audit_entry_hash('t', 1, '2026-01-01Z', 'a', 'b', NULL, 'x', '{}', '{{Genesis}}')
            UNION ALL SELECT audit_entry_hash('t', 1, '2026-01-01Z', 'a', 'b', '', 'x', '{}', '{{Genesis}}')
            UNION ALL SELECT audit_entry_hash('t', 1, '2026-01-01Z', 'ab', '', NULL, 'x', '{}', '{{Genesis}}')
            UNION ALL SELECT audit_entry_hash('t', 1, '2026-01-01Z', 'a', 'b;', NULL, 'x', '{}', '{{Genesis}}')
            UNION ALL SELECT audit_entry_hash('t', 1, '2026-01-01 00:00:00.000001Z', 'a', 'b', NULL, 'x', '{}', '{{Genesis}}')
            UNION ALL SELECT audit_entry_hash('t', 1, '2026-01-01Z', 'a', 'b', NULL, 'x', '{}', '{{Genesis}}')
            """);

        var values = hashes.Select(row => (string)row[0]!).ToList();
        Assert.Equal(5, values.Take(5).Distinct().Count());
        Assert.Equal(values[0], values[5]); // deterministic
    }

    [Fact]
    public async Task Concurrent_writers_with_rollbacks_leave_a_gapless_intact_chain()
    {
        const int writers = 8;
        const int insertsPerWriter = 50;
        var database = platform.ConnectionString;
        await InsertTenantsAsync(database, "t-busy");
        var committedPerWriter = new int[writers];

        await Task.WhenAll(Enumerable.Range(0, writers).Select(writer => Task.Run(async () =>
        {
            await using var connection = await Sql.OpenAsync(database);
            for (var i = 0; i < insertsPerWriter; i++)
            {
                await using var transaction = await connection.BeginTransactionAsync();
                await Sql.ExecuteAsync(connection,
                    "INSERT INTO audit_log (tenant_id, actor, action, entity_id) VALUES ('t-busy', $1, 'write', $2)",
                    $"writer-{writer}", $"{writer}-{i}");
                if ((writer + i) % 7 == 0)
                {
                    await transaction.RollbackAsync();
                }
                else
                {
                    await transaction.CommitAsync();
                    committedPerWriter[writer]++;
                }
            }
        })));

        var committed = committedPerWriter.Sum();
        Assert.InRange(committed, 300, writers * insertsPerWriter - 1); // some rolled back
        var chain = await ChainAsync(database, "t-busy");
        Assert.Equal(Enumerable.Range(1, committed).Select(n => (long)n), chain.Select(entry => entry.Seq));
        for (var i = 1; i < chain.Count; i++)
        {
            Assert.Equal(chain[i - 1].Hash, chain[i].PrevHash);
        }

        Assert.Equal(0L, await CountEntriesWhoseHashDoesNotRecomputeAsync(database, "t-busy"));
    }

    [Fact]
    public async Task The_application_role_appends_to_its_own_tenants_chain()
    {
        var database = platform.ConnectionString;
        await InsertTenantsAsync(database, "t-app");
        await Sql.ExecuteAsync(database, "INSERT INTO audit_log (tenant_id, actor, action) VALUES ('t-app', 'admin', 'first')");

        await using (var connection = await Sql.OpenAsync(database))
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await Sql.ExecuteAsync(connection, "SET LOCAL ROLE clawkeeper_app");
            await Sql.ExecuteAsync(connection, "SELECT set_config('app.tenant_id', 't-app', true)");
            await Sql.ExecuteAsync(connection, "INSERT INTO audit_log (tenant_id, actor, action) VALUES ('t-app', 'app', 'second')");
            await Sql.ExecuteAsync(connection, "INSERT INTO audit_log (tenant_id, actor, action) VALUES ('t-app', 'app', 'third')");
            await transaction.CommitAsync();
        }

        var chain = await ChainAsync(database, "t-app");
        Assert.Equal(["first", "second", "third"], chain.Select(entry => entry.Action));
        Assert.Equal([1L, 2L, 3L], chain.Select(entry => entry.Seq));
        Assert.Equal(0L, await CountEntriesWhoseHashDoesNotRecomputeAsync(database, "t-app"));
    }

    [Theory]
    [InlineData("UPDATE audit_log SET action = 'rewritten' WHERE tenant_id = 't-ro-update'", "t-ro-update", "UPDATE")]
    [InlineData("DELETE FROM audit_log WHERE tenant_id = 't-ro-delete'", "t-ro-delete", "DELETE")]
    [InlineData("TRUNCATE audit_log", "t-ro-truncate", "TRUNCATE")]
    public async Task Audit_entries_cannot_be_changed_or_removed(string change, string tenantId, string operation)
    {
        var database = platform.ConnectionString;
        await InsertTenantsAsync(database, tenantId);
        await Sql.ExecuteAsync(database, "INSERT INTO audit_log (tenant_id, actor, action) VALUES ($1, 'admin', 'original')", tenantId);

        var refused = await Assert.ThrowsAsync<PostgresException>(() => Sql.ExecuteAsync(database, change));

        Assert.Contains("audit_log is append-only", refused.MessageText);
        Assert.Contains(operation, refused.MessageText);
        Assert.Equal(["original"], (await Sql.RowsAsync(database, "SELECT action FROM audit_log WHERE tenant_id = $1", tenantId)).Select(row => row[0]));
    }

    [Fact]
    public async Task Tampering_past_the_triggers_is_detected_by_recomputing_the_hashes()
    {
        var database = platform.ConnectionString;
        await InsertTenantsAsync(database, "t-tamper");
        for (var i = 0; i < 4; i++)
        {
            await Sql.ExecuteAsync(database, "INSERT INTO audit_log (tenant_id, actor, action, payload) VALUES ('t-tamper', 'admin', 'pay', $1::jsonb)",
                $$"""{"amount_cents": {{100 * (i + 1)}}}""");
        }

        await using (var connection = await Sql.OpenAsync(database))
        {
            await Sql.ExecuteAsync(connection, "SET session_replication_role = replica");
            await Sql.ExecuteAsync(connection,
                "UPDATE audit_log SET payload = '{\"amount_cents\": 1}' WHERE tenant_id = 't-tamper' AND seq = 3");
        }

        var broken = await Sql.RowsAsync(database, """
            SELECT seq FROM audit_log
            WHERE tenant_id = 't-tamper'
              AND hash <> audit_entry_hash(tenant_id, seq, occurred_at, actor, action, entity_type, entity_id, payload, prev_hash)
            """);
        Assert.Equal([3L], broken.Select(row => (long)row[0]!));
    }

    private sealed record ChainEntry(long Seq, string PrevHash, string Hash, string Action);

    private static async Task<IReadOnlyList<ChainEntry>> ChainAsync(string database, string tenantId) =>
        (await Sql.RowsAsync(database, "SELECT seq, prev_hash, hash, action FROM audit_log WHERE tenant_id = $1 ORDER BY seq", tenantId))
        .Select(row => new ChainEntry((long)row[0]!, (string)row[1]!, (string)row[2]!, (string)row[3]!))
        .ToList();

    private static Task<long> CountEntriesWhoseHashDoesNotRecomputeAsync(string database, params string[] tenantIds) =>
        Sql.ScalarAsync<long>(database, """
            SELECT count(*) FROM audit_log
            WHERE tenant_id = ANY($1)
              AND hash IS DISTINCT FROM audit_entry_hash(tenant_id, seq, occurred_at, actor, action, entity_type, entity_id, payload, prev_hash)
            """, (object)tenantIds);

    private static async Task InsertTenantsAsync(string database, params string[] tenantIds)
    {
        foreach (var tenantId in tenantIds)
        {
            await Sql.ExecuteAsync(database, "INSERT INTO tenants (id, name) VALUES ($1, $1)", tenantId);
        }
    }
}
