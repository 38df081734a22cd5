using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.DataIntegrity;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;

namespace ClawKeeper.Actors.Tests.Checks.DataIntegrity;

/// <summary>Each way an audit chain can break, applied to the seeded platform, is found with the right evidence.</summary>
public class AuditLogContinuousCheckSpec
{
    private const string Tenant = "t-harbor-dental";

    private static async Task<(string Database, NpgsqlDataSource Platform, long Last)> SeededAsync()
    {
        var database = await TestDatabases.CreateSeededAsync();
        var last = await Sql.ScalarAsync<long>(database, "select max(seq) from audit_log where tenant_id = $1", Tenant);
        return (database, NpgsqlDataSource.Create(database), last);
    }

    private static Task<CheckResult> Full(NpgsqlDataSource platform) =>
        Integrity.RunAsync(new AuditLogContinuousCheck(platform, Integrity.Settings), Integrity.Full);

    [Fact]
    public async Task A_clean_platform_passes_and_the_next_round_reads_only_new_entries()
    {
        var (database, platform, _) = await SeededAsync();
        await using var _p = platform;
        var full = await Full(platform);
        Assert.Equal(CheckStatus.Pass, full.Status);
        var progress = Assert.IsType<AuditProgress>(full.Progress);
        Assert.Equal(4, progress.Positions.Count);

        await Sql.ExecuteAsync(database, """
            begin; select set_config('app.tenant_id', 't-harbor-dental', true);
            insert into audit_log (tenant_id, actor, action, entity_type, entity_id) values ('t-harbor-dental', 'alice', 'invoice.sent', 'task', 'task-t-harbor-dental-001');
            insert into audit_log (tenant_id, actor, action) values ('t-harbor-dental', 'alice', 'invoice.paid');
            commit;
            """);
        var watermarks = IntegrityWatermarks.None.Advance(new[] { progress }, true, DateTimeOffset.UtcNow);
        var incremental = await Integrity.RunAsync(new AuditLogContinuousCheck(platform, Integrity.Settings), Integrity.Incremental(watermarks));
        Assert.Equal(CheckStatus.Pass, incremental.Status);
        Assert.StartsWith("2 entries verified (incremental)", incremental.Observed);
    }

    [Fact]
    public async Task A_deleted_entry_is_a_gap_reported_with_its_neighbours()
    {
        var (database, platform, _) = await SeededAsync();
        await using var _p = platform;
        await Integrity.TamperAsync(database, "delete from audit_log where tenant_id = $1 and seq in (5, 6)", Tenant);

        var result = await Full(platform);
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Null(result.Progress);
        Assert.Contains($"tenant {Tenant}: seq 5..6 missing (gap in the chain) (after seq 4 at ", result.Detail);
        Assert.Matches(@"after seq 4 at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ by [^,]+, before seq 7 at \d{4}-", result.Detail);
    }

    [Fact]
    public async Task A_modified_entry_no_longer_recomputes()
    {
        var (database, platform, _) = await SeededAsync();
        await using var _p = platform;
        await Integrity.TamperAsync(database, "update audit_log set actor = 'mallory' where tenant_id = $1 and seq = 3", Tenant);

        var result = await Full(platform);
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains($"tenant {Tenant}: seq 3 modified (its hash does not recompute from its content)", result.Detail);
    }

    [Fact]
    public async Task A_truncated_tail_is_found_against_the_chain_head_and_against_the_verified_position()
    {
        var (database, platform, last) = await SeededAsync();
        await using var _p = platform;
        var watermarks = await Integrity.VerifiedWatermarksAsync(platform);

        await Integrity.TamperAsync(database, "delete from audit_log where tenant_id = $1 and seq > $2", Tenant, last - 2);
        var result = await Full(platform);
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains($"tenant {Tenant}: seq {last - 1}..{last} missing at the end of the chain (truncated tail; the chain head says {last})", result.Detail);

        // A careful attacker also rewinds the chain head: the verified position still remembers.
        await Integrity.TamperAsync(database, """
            update audit_chain_heads h set last_seq = a.seq, last_hash = a.hash
            from audit_log a where a.tenant_id = h.tenant_id and h.tenant_id = $1 and a.seq = $2
            """, Tenant, last - 2);
        Assert.Equal(CheckStatus.Pass, (await Full(platform)).Status); // a fresh full verification cannot know what was there
        var anchored = await Integrity.RunAsync(new AuditLogContinuousCheck(platform, Integrity.Settings), Integrity.FullAgainst(watermarks));
        Assert.Equal(CheckStatus.Fail, anchored.Status); // the heartbeat's full verification compares against the verified positions
        Assert.Contains($"verified up to seq {last} before, now ends at {last - 2}", anchored.Detail);
        Assert.Null(anchored.Progress); // the positions are not replaced by the truncated chain's
        var incremental = await Integrity.RunAsync(new AuditLogContinuousCheck(platform, Integrity.Settings), Integrity.Incremental(watermarks));
        Assert.Equal(CheckStatus.Fail, incremental.Status);
        Assert.Contains($"verified up to seq {last} before, now ends at {last - 2}", incremental.Detail);
    }

    [Fact]
    public async Task A_forged_entry_is_found_inserted_in_the_middle_or_appended_past_the_head()
    {
        var (database, platform, last) = await SeededAsync();
        await using var _p = platform;

        // Replace entry 8 by a forgery whose own hash is consistent: the link from entry 9 breaks.
        await Integrity.TamperAsync(database, """
            update audit_log a set action = 'payment.approved', actor = 'mallory',
                   hash = audit_entry_hash(a.tenant_id, a.seq, a.occurred_at, 'mallory', 'payment.approved', a.entity_type, a.entity_id, a.payload, a.prev_hash)
            where a.tenant_id = $1 and a.seq = 8
            """, Tenant);
        var middle = await Full(platform);
        Assert.Equal(CheckStatus.Fail, middle.Status);
        Assert.Contains($"tenant {Tenant}: seq 9 breaks the chain", middle.Detail);

        // Append a well-formed entry without the audit trigger (the head does not move).
        var database2 = await TestDatabases.CreateSeededAsync();
        await using var platform2 = NpgsqlDataSource.Create(database2);
        await Integrity.TamperAsync(database2, """
            insert into audit_log (tenant_id, seq, occurred_at, actor, action, payload, prev_hash, hash)
            select a.tenant_id, a.seq + 1, '2026-11-28T00:00:00Z'::timestamptz, 'mallory', 'refund.issued', '{}'::jsonb, a.hash,
                   audit_entry_hash(a.tenant_id, a.seq + 1, '2026-11-28T00:00:00Z'::timestamptz, 'mallory', 'refund.issued', null, null, '{}'::jsonb, a.hash)
            from audit_log a where a.tenant_id = $1 and a.seq = $2
            """, Tenant, last);
        var appended = await Full(platform2);
        Assert.Equal(CheckStatus.Fail, appended.Status);
        Assert.Contains($"tenant {Tenant}: seq {last + 1} beyond the chain head", appended.Detail);
    }

    [Fact]
    public async Task A_rewrite_behind_the_watermark_is_found_by_the_next_incremental_round_and_by_the_full_verification()
    {
        var (database, platform, _) = await SeededAsync();
        await using var _p = platform;
        var watermarks = await Integrity.VerifiedWatermarksAsync(platform);
        await Integrity.TamperAsync(database, "update audit_log set payload = '{\"amount\": 1}' where tenant_id = $1 and seq = 2", Tenant);

        // Behind the verified position, but written since the last verified round: re-verified from there.
        var incremental = await Integrity.RunAsync(new AuditLogContinuousCheck(platform, Integrity.Settings), Integrity.Incremental(watermarks));
        Assert.Equal(CheckStatus.Fail, incremental.Status);
        Assert.Contains($"tenant {Tenant}: seq 2 modified", incremental.Detail);
        Assert.Matches($@"changed since the last verified round: tenant {Tenant} seq 2 written by transaction \d+", incremental.Detail);
        var full = await Full(platform);
        Assert.Equal(CheckStatus.Fail, full.Status);
        Assert.Contains($"tenant {Tenant}: seq 2 modified", full.Detail);
    }

    [Fact]
    public async Task The_verified_entry_itself_is_re_checked_every_round()
    {
        var (database, platform, last) = await SeededAsync();
        await using var _p = platform;
        var watermarks = await Integrity.VerifiedWatermarksAsync(platform);
        await Integrity.TamperAsync(database, """
            update audit_log a set actor = 'mallory',
                   hash = audit_entry_hash(a.tenant_id, a.seq, a.occurred_at, 'mallory', a.action, a.entity_type, a.entity_id, a.payload, a.prev_hash)
            where a.tenant_id = $1 and a.seq = $2
            """, Tenant, last);
        await Integrity.TamperAsync(database,
            "update audit_chain_heads h set last_hash = a.hash from audit_log a where a.tenant_id = h.tenant_id and h.tenant_id = $1 and a.seq = $2", Tenant, last);
        var incremental = await Integrity.RunAsync(new AuditLogContinuousCheck(platform, Integrity.Settings), Integrity.Incremental(watermarks));
        Assert.Equal(CheckStatus.Fail, incremental.Status);
        Assert.Contains($"tenant {Tenant}: seq {last} rewritten after it was verified", incremental.Detail);
    }

    [Fact]
    public async Task A_chain_rewritten_consistently_after_it_was_verified_fails_a_full_verification_against_the_anchors()
    {
        var (database, platform, last) = await SeededAsync();
        await using var _p = platform;
        var watermarks = await Integrity.VerifiedWatermarksAsync(platform);
        // Entry 3 forged and every later entry re-hashed, links and chain head included: consistent in itself.
        await Integrity.TamperAsync(database, """
            do $$
            declare r record; prev text;
            begin
                select hash into prev from audit_log where tenant_id = 't-harbor-dental' and seq = 2;
                for r in select seq from audit_log where tenant_id = 't-harbor-dental' and seq >= 3 order by seq loop
                    update audit_log a
                    set actor = case when a.seq = 3 then 'mallory' else a.actor end, prev_hash = prev,
                        hash = audit_entry_hash(a.tenant_id, a.seq, a.occurred_at, case when a.seq = 3 then 'mallory' else a.actor end,
                                                a.action, a.entity_type, a.entity_id, a.payload, prev)
                    where a.tenant_id = 't-harbor-dental' and a.seq = r.seq
                    returning a.hash into prev;
                end loop;
                update audit_chain_heads set last_hash = prev where tenant_id = 't-harbor-dental';
            end $$;
            """);

        Assert.Equal(CheckStatus.Pass, (await Full(platform)).Status); // without the anchors nothing tells
        var anchored = await Integrity.RunAsync(new AuditLogContinuousCheck(platform, Integrity.Settings), Integrity.FullAgainst(watermarks));
        Assert.Equal(CheckStatus.Fail, anchored.Status);
        Assert.Contains("(full verification)", anchored.Observed);
        Assert.Contains($"tenant {Tenant}: seq {last} rewritten after it was verified", anchored.Detail);
        Assert.Null(anchored.Progress); // positions are replaced only by a round that verified them
        var incremental = await Integrity.RunAsync(new AuditLogContinuousCheck(platform, Integrity.Settings), Integrity.Incremental(watermarks));
        Assert.Equal(CheckStatus.Fail, incremental.Status);
        Assert.Contains($"tenant {Tenant}: seq {last} rewritten after it was verified", incremental.Detail);
    }

    [Fact]
    public async Task Positions_verified_on_another_database_are_not_held_against_this_one()
    {
        var (_, platformA, _) = await SeededAsync();
        await using var _a = platformA;
        var watermarks = await Integrity.VerifiedWatermarksAsync(platformA);
        Assert.NotNull(watermarks.PlatformFingerprint);

        var databaseB = await TestDatabases.CreateMigratedAsync();
        await Sql.ExecuteAsync(databaseB, """
            insert into tenants (id, name, status) values ('t-harbor-dental', 'Harbor Dental', 'active');
            begin; select set_config('app.tenant_id', 't-harbor-dental', true);
            insert into audit_log (tenant_id, actor, action) values ('t-harbor-dental', 'erin', 'tenant.created');
            commit;
            """);
        await using var platformB = NpgsqlDataSource.Create(databaseB);
        var result = await Integrity.RunAsync(new AuditLogContinuousCheck(platformB, Integrity.Settings), Integrity.Incremental(watermarks));
        // Not silently: the round says the positions belong to another database (warn), verifies this one from the beginning,
        // and its positions replace them.
        Assert.True(result.Status == CheckStatus.Warn, result.Detail);
        Assert.Contains("(full verification)", result.Observed);
        Assert.Contains($"the verified positions were recorded on another database ({watermarks.PlatformFingerprint})", result.Detail);
        var next = watermarks.Advance(new[] { result.Progress! }, false, DateTimeOffset.UtcNow);
        Assert.NotEqual(watermarks.PlatformFingerprint, next.PlatformFingerprint);
        Assert.Equal(new[] { "t-harbor-dental" }, next.Audit.Keys); // A's positions were dropped, not merged
    }
}
