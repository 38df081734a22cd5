using System.Collections.Immutable;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.DataIntegrity;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;

namespace ClawKeeper.Actors.Tests.Checks.DataIntegrity;

/// <summary>
/// The streamed full verification (binary COPY in parallel block ranges, hashes recomputed in .NET, links
/// verified as multisets) finds exactly what the SQL verification finds, with the same evidence, on a chain
/// long enough to be split across streams and stored out of seq order.
/// </summary>
public class AuditChainVerifierSpec
{
    private const string Tenant = "t-harbor-dental";
    private const int Appended = 3000;

    /// <summary>A seeded platform whose tenant has 3000 more entries (Unicode, NULLs, nested JSON) appended through the audit trigger, some rows then moved on disk.</summary>
    private static async Task<(string Database, NpgsqlDataSource Platform, long Last)> LongChainAsync()
    {
        var database = await TestDatabases.CreateSeededAsync();
        for (var batch = 0; batch < Appended / 1000; batch++) // one transaction per 1000: the chain head is updated once per entry
            await Sql.ExecuteAsync(database, $$"""
            insert into audit_log (tenant_id, actor, action, entity_type, entity_id, payload)
            select '{{Tenant}}',
                   case when g % 7 = 0 then 'Zoë ✓ 日本 agent' else 'agent:cfo' end,
                   'invoice.sent',
                   case when g % 3 = 0 then null else 'task' end,
                   case when g % 5 = 0 then null when g % 5 = 1 then '' else 'task-' || g end,
                   jsonb_build_object('n', g, 'note', 'ünïcödé "quoted" \ back', 'nested', jsonb_build_object('b', 1.50, 'a', array[2, 3]), 'empty', '{}'::jsonb)
            from generate_series({{batch * 1000 + 1}}, {{batch * 1000 + 1000}}) g
            """);
        // Move every 9th entry to another place on disk (a no-op update writes a new tuple): the heap no longer returns seq order.
        await Integrity.TamperAsync(database, "update audit_log set actor = actor where tenant_id = $1 and seq % 9 = 0", Tenant);
        var last = await Sql.ScalarAsync<long>(database, "select max(seq) from audit_log where tenant_id = $1", Tenant);
        return (database, NpgsqlDataSource.Create(database), last);
    }

    private static async Task<AuditChainVerification> VerifyAsync(NpgsqlDataSource platform, int streams = 3)
    {
        await using var connection = await platform.OpenConnectionAsync();
        var result = await new AuditChainVerifier(platform, streams, minBlocksPerStream: 1).VerifyAsync(connection, CancellationToken.None);
        return Assert.IsType<AuditChainVerification>(result);
    }

    /// <summary>The check's SQL verification of everything (a verified position of seq 0 keeps it on the SQL path).</summary>
    private static Task<CheckResult> SqlFullAsync(NpgsqlDataSource platform) =>
        Integrity.RunAsync(new AuditLogContinuousCheck(platform, Integrity.Settings), Integrity.Incremental(
            IntegrityWatermarks.None with { Audit = ImmutableDictionary<string, AuditPosition>.Empty.Add(Tenant, new AuditPosition(0, AuditEntryHasher.Genesis)) }));

    [Fact]
    public async Task A_long_chain_read_in_parallel_streams_out_of_seq_order_passes_and_every_row_is_read_once()
    {
        var (database, platform, _) = await LongChainAsync();
        await using var _p = platform;

        var result = await VerifyAsync(platform);
        Assert.Equal(3, result.Streams);
        Assert.Empty(result.Anomalies);
        Assert.Equal(await Sql.ScalarAsync<long>(database, "select count(*) from audit_log"), result.Rows);

        var check = await Integrity.RunAsync(new AuditLogContinuousCheck(platform, Integrity.Settings), Integrity.Full);
        Assert.Equal(CheckStatus.Pass, check.Status);
        Assert.Contains("(full verification)", check.Observed);
    }

    [Fact]
    public async Task The_hash_computed_in_dotnet_is_the_databases_for_every_kind_of_field()
    {
        var database = await TestDatabases.CreateSeededAsync();
        var rows = await Sql.RowsAsync(database, """
            select tenant_id, seq, (extract(epoch from occurred_at) * 1000000)::bigint, actor, action, entity_type, entity_id, payload::text, prev_hash, hash
            from audit_log order by tenant_id, seq
            """);
        Assert.NotEmpty(rows);
        var hasher = new AuditEntryHasher();
        foreach (var r in rows)
            Assert.Equal((string)r[9]!, hasher.Hash((string)r[0]!, (long)r[1]!, (long)r[2]!, (string)r[3]!, (string)r[4]!, r[5] as string, r[6] as string, (string)r[7]!, (string)r[8]!));
    }

    [Fact]
    public async Task Gaps_modified_entries_forged_links_and_swapped_entries_are_found_with_the_same_evidence_as_the_SQL_verification()
    {
        var (database, platform, last) = await LongChainAsync();
        await using var _p = platform;
        await Integrity.TamperAsync(database, "delete from audit_log where tenant_id = $1 and seq in (100, 101)", Tenant);
        await Integrity.TamperAsync(database, "update audit_log set payload = '{\"amount\": 1}' where tenant_id = $1 and seq = 700", Tenant);
        // A forgery whose own hash recomputes: only the link from the next entry breaks.
        await Integrity.TamperAsync(database, """
            update audit_log a set actor = 'mallory',
                   hash = audit_entry_hash(a.tenant_id, a.seq, a.occurred_at, 'mallory', a.action, a.entity_type, a.entity_id, a.payload, a.prev_hash)
            where a.tenant_id = $1 and a.seq = 1500
            """, Tenant);
        // Two entries swap places, each re-hashed for its new seq: every hash recomputes, the links do not hold.
        await Integrity.TamperAsync(database, "update audit_log set seq = 1000000 where tenant_id = $1 and seq = 2001", Tenant);
        await Integrity.TamperAsync(database, "update audit_log set seq = 2001 where tenant_id = $1 and seq = 2002", Tenant);
        await Integrity.TamperAsync(database, "update audit_log set seq = 2002 where tenant_id = $1 and seq = 1000000", Tenant);
        await Integrity.TamperAsync(database, """
            update audit_log a set hash = audit_entry_hash(a.tenant_id, a.seq, a.occurred_at, a.actor, a.action, a.entity_type, a.entity_id, a.payload, a.prev_hash)
            where a.tenant_id = $1 and a.seq in (2001, 2002)
            """, Tenant);

        var streamed = await Integrity.RunAsync(new AuditLogContinuousCheck(platform, Integrity.Settings), Integrity.Full);
        var sql = await SqlFullAsync(platform);
        Assert.Equal(CheckStatus.Fail, streamed.Status);
        Assert.Equal(sql.Status, streamed.Status);
        Assert.Equal(sql.Detail, streamed.Detail);
        Assert.Contains($"tenant {Tenant}: seq 100..101 missing (gap in the chain) (after seq 99 at ", streamed.Detail);
        Assert.Contains($"tenant {Tenant}: seq 700 modified (its hash does not recompute from its content)", streamed.Detail);
        Assert.Contains($"tenant {Tenant}: seq 1501 breaks the chain", streamed.Detail);

        var direct = await VerifyAsync(platform);
        Assert.Contains(direct.Anomalies, a => a.TenantId == Tenant && a.FromSeq == 2001 && a.Kind.StartsWith("breaks the chain", StringComparison.Ordinal));
        Assert.Contains(direct.Anomalies, a => a.TenantId == Tenant && a.FromSeq == 2002 && a.Kind.StartsWith("breaks the chain", StringComparison.Ordinal));
        Assert.Contains(direct.Anomalies, a => a.TenantId == Tenant && a.FromSeq == 2003 && a.Kind.StartsWith("breaks the chain", StringComparison.Ordinal));
        Assert.Equal(6, direct.Anomalies.Count); // the gap, 700, 1501, and 2001..2003 around the swap
        Assert.All(direct.Anomalies, a => Assert.Equal(Tenant, a.TenantId)); // the other tenants' chains are not suspected
        Assert.True(last > 2002);
    }

    [Fact]
    public async Task A_chain_renumbered_without_a_gap_but_with_a_stale_link_is_found()
    {
        // Entry 50 deleted and every later entry moved down by one (seq 1..n-1 without gap again, heads
        // rewound): hashes no longer recompute and the links no longer hold from seq 50 on.
        var (database, platform, last) = await LongChainAsync();
        await using var _p = platform;
        await Integrity.TamperAsync(database, "delete from audit_log where tenant_id = $1 and seq = 50", Tenant);
        await Integrity.TamperAsync(database, "update audit_log set seq = seq + 1000000 where tenant_id = $1 and seq > 50", Tenant);
        await Integrity.TamperAsync(database, "update audit_log set seq = seq - 1000001 where tenant_id = $1 and seq > 1000000", Tenant);
        await Integrity.TamperAsync(database, """
            update audit_chain_heads h set last_seq = a.seq, last_hash = a.hash from audit_log a
            where a.tenant_id = h.tenant_id and h.tenant_id = $1 and a.seq = $2 - 1
            """, Tenant, last);

        var direct = await VerifyAsync(platform);
        Assert.NotEmpty(direct.Anomalies);
        Assert.Equal(50, direct.Anomalies.Min(a => a.FromSeq));
        var streamed = await Integrity.RunAsync(new AuditLogContinuousCheck(platform, Integrity.Settings), Integrity.Full);
        Assert.Equal(CheckStatus.Fail, streamed.Status);
        Assert.Equal((await SqlFullAsync(platform)).Detail, streamed.Detail);
    }
}
