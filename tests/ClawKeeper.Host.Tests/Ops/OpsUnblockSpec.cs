using System.Collections;
using System.Net;
using System.Text.Json;
using Akka.Actor;
using Akka.Hosting;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Host.Configuration;
using ClawKeeper.Host.Ops;
using ClawKeeper.Host.Tests.Support;
using ClawKeeper.Testing;
using Xunit;

namespace ClawKeeper.Host.Tests.Ops;

/// <summary>
/// <c>POST /writes/unblock</c> on a real platform database with the real heartbeat supervisor: the
/// super_admin credential, the re-run integrity checks, force, the audit, and the supervisor's state.
/// </summary>
public class OpsUnblockSpec
{
    private const string Corrupt = "update journal_lines set credit_cents = credit_cents + 500 where id = (select min(id) from journal_lines where credit_cents > 0)";

    private static async Task TamperAsync(string database, string sql, params object?[] parameters)
    {
        // Behind the triggers' back, the way a bug or an attacker would.
        await using var connection = await Sql.OpenAsync(database);
        await Sql.ExecuteAsync(connection, "set session_replication_role = replica");
        await Sql.ExecuteAsync(connection, sql, parameters);
    }

    private const string GapTenant = "t-summit-hvac";

    /// <summary>Deletes audit entry 7 of <see cref="GapTenant"/> (a gap in its chain); returns the row to put back.</summary>
    private static async Task<string> OpenAuditGapAsync(string database)
    {
        var row = await Sql.ScalarAsync<string>(database, "select row_to_json(a)::text from audit_log a where tenant_id = $1 and seq = 7", GapTenant);
        await TamperAsync(database, "delete from audit_log where tenant_id = $1 and seq = 7", GapTenant);
        return row;
    }

    /// <summary>Puts the deleted entry back exactly (audit_log is not a table the write block guards).</summary>
    private static Task CloseAuditGapAsync(string database, string row) =>
        TamperAsync(database, "insert into audit_log select * from json_populate_record(null::audit_log, $1::json)", row);

    /// <summary>The ops surface with the real heartbeat on <paramref name="database"/>: the shipped settings, providers on the stand-in.</summary>
    private static Task<OpsTestHost> StartWithRealSupervisorAsync(string database, LoopbackHttpServer providers)
    {
        var config = ConfigurationLoader.Load(Array.Empty<string>(), new FileInfo(ClawKeeperProcess.ProvidersConfig(providers.BaseAddress)), new Hashtable(),
            new Dictionary<string, string>
            {
                ["clawkeeper.platform-db.connection-string"] = database,
                ["clawkeeper.security.super-admin-token-sha256"] = OpsTestHost.SuperAdminTokenSha256,
            });
        var settings = ClawKeeperSettings.FromConfig(config);
        return OpsTestHost.StartAsync(database, writes: new OpsWriteSettings(settings.Security, settings.DataIntegrity), realSupervisor: settings);
    }

    private static async Task<HeartbeatReport> BeatAsync(OpsTestHost host) =>
        (await ActorRegistry.For(host.System).Get<HeartbeatSupervisorKey>()
            .Ask<HeartbeatCompleted>(RunHeartbeatNow.Instance, TimeSpan.FromSeconds(90))).Report;

    private static async Task<HeartbeatState> StateAsync(OpsTestHost host) =>
        await ActorRegistry.For(host.System).Get<HeartbeatSupervisorKey>().Ask<HeartbeatState>(GetHeartbeatState.Instance, TimeSpan.FromSeconds(10));

    private static string Unblock(string reason, bool force = false, string? by = "dana") =>
        JsonSerializer.Serialize(new { reason, force, @operator = by });

    [Fact]
    public async Task Unblock_needs_the_super_admin_credential_refuses_while_tampered_lifts_after_repair_and_the_supervisor_follows()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await using var providers = await LoopbackHttpServer.StartAsync();
        await using var host = await StartWithRealSupervisorAsync(database, providers);

        // The heartbeat finds the gap in the audit chain and blocks writes.
        var removed = await OpenAuditGapAsync(database);
        var failing = await BeatAsync(host);
        Assert.Equal(HeartbeatStatus.Fail, failing.Status);
        Assert.True(failing.WriteBlock.Active, failing.ToJson());
        var blockId = Assert.IsType<long>(failing.WriteBlock.BlockId);
        Assert.Equal(blockId, (await StateAsync(host)).WriteBlock.BlockId);

        // Without the super_admin credential: 401, nothing changed, the attempt logged and recorded (never the token).
        foreach (var bearer in new[] { null, OpsTestHost.Token, "guess-0123456789" })
        {
            using var refused = await host.PostAsync("/writes/unblock", bearer, Unblock("trust me"));
            var text = await refused.Content.ReadAsStringAsync();
            Assert.True(refused.StatusCode == HttpStatusCode.Unauthorized, text);
            Assert.Contains("the ops token does not suffice", text);
            Assert.Equal("Bearer", refused.Headers.WwwAuthenticate.Single().Scheme);
            if (bearer is not null) Assert.DoesNotContain(bearer, text);
        }
        Assert.Equal(1L, await Sql.ScalarAsync<long>(database, "select count(*) from write_blocks where lifted_at is null"));
        Assert.Equal(3L, await Sql.ScalarAsync<long>(database, "select count(*) from security_events where kind = 'unauthorized_access' and source = 'ops:writes-unblock'"));
        Assert.True(await OpsTestHost.EventuallyAsync(() => host.Warnings.Count(w => w.Contains("ops: refused POST /writes/unblock")) >= 3), string.Join(" | ", host.Warnings));
        Assert.DoesNotContain(host.Warnings, w => w.Contains(OpsTestHost.Token) || w.Contains("guess-0123456789"));
        Assert.True((await StateAsync(host)).WriteBlock.Active);

        // A reason is required.
        using (var noReason = await host.PostAsync("/writes/unblock", OpsTestHost.SuperAdminToken, "{\"force\": false}"))
            Assert.Equal(HttpStatusCode.BadRequest, noReason.StatusCode);

        // While the gap is there: 409 with the failing check's evidence; the block stays.
        using (var refused = await host.PostAsync("/writes/unblock", OpsTestHost.SuperAdminToken, Unblock("looks fine to me")))
        {
            var text = await refused.Content.ReadAsStringAsync();
            Assert.True(refused.StatusCode == HttpStatusCode.Conflict, text);
            using var body = JsonDocument.Parse(text);
            Assert.Equal("still_failing", body.RootElement.GetProperty("result").GetString());
            Assert.Equal(blockId, body.RootElement.GetProperty("writeBlock").GetProperty("id").GetInt64());
            var check = Assert.Single(body.RootElement.GetProperty("failing").EnumerateArray());
            Assert.Equal("audit_log_continuous", check.GetProperty("check").GetString());
            Assert.Equal("fail", check.GetProperty("status").GetString());
            Assert.Contains($"tenant {GapTenant}: seq 7 missing", check.GetProperty("detail").GetString());
        }
        Assert.Equal(1L, await Sql.ScalarAsync<long>(database, "select count(*) from write_blocks where lifted_at is null"));

        // Repaired: the lift goes through, is audited, and the supervisor records it without waiting for a round.
        await CloseAuditGapAsync(database, removed);
        using (var lifted = await host.PostAsync("/writes/unblock", OpsTestHost.SuperAdminToken, Unblock("correcting entry posted")))
        {
            var text = await lifted.Content.ReadAsStringAsync();
            Assert.True(lifted.StatusCode == HttpStatusCode.OK, text);
            using var body = JsonDocument.Parse(text);
            Assert.Equal("lifted", body.RootElement.GetProperty("result").GetString());
            Assert.Equal(blockId, body.RootElement.GetProperty("writeBlock").GetProperty("id").GetInt64());
            Assert.Equal("super_admin:dana", body.RootElement.GetProperty("writeBlock").GetProperty("liftedBy").GetString());
            Assert.False(body.RootElement.GetProperty("forced").GetBoolean());
        }
        var row = Assert.Single(await Sql.RowsAsync(database, "select lifted_by, lift_reason from write_blocks where lifted_at is not null"));
        Assert.Equal(new object?[] { "super_admin:dana", "correcting entry posted" }, row);
        var audit = Assert.Single(await Sql.RowsAsync(database, "select actor, entity_id from audit_log where tenant_id = 'system' and action = 'write_block.lifted'"));
        Assert.Equal(new object?[] { "super_admin:dana", blockId.ToString() }, audit);
        Assert.True(await OpsTestHost.EventuallyAsync(() => !StateAsync(host).GetAwaiter().GetResult().WriteBlock.Active, TimeSpan.FromSeconds(15)),
            "the supervisor's persisted block follows the lift");

        // The next heartbeat finds the books intact and does not block again; what it reports instead
        // are the three refused attempts above (unauthorized_access_attempts).
        var clean = await BeatAsync(host);
        var failed = clean.Groups.SelectMany(g => g.Checks).Where(c => c.Status is CheckStatus.Fail or CheckStatus.Error).Select(c => c.Check).ToArray();
        Assert.True(failed.SequenceEqual(new[] { "unauthorized_access_attempts" }), clean.ToJson());
        Assert.False(clean.WriteBlock.Active);
        Assert.Equal(0L, await Sql.ScalarAsync<long>(database, "select count(*) from write_blocks where lifted_at is null"));
        Assert.Equal(1L, await Sql.ScalarAsync<long>(database, "select count(*) from write_blocks"));

        // Nothing open any more.
        using (var none = await host.PostAsync("/writes/unblock", OpsTestHost.SuperAdminToken, Unblock("again")))
            Assert.Equal(HttpStatusCode.Conflict, none.StatusCode);
    }

    [Fact]
    public async Task Force_lifts_while_tampered_names_the_failing_check_and_the_next_heartbeat_blocks_again()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await using var providers = await LoopbackHttpServer.StartAsync();
        await using var host = await StartWithRealSupervisorAsync(database, providers);

        await TamperAsync(database, Corrupt);
        var blocked = await BeatAsync(host);
        var blockId = Assert.IsType<long>(blocked.WriteBlock.BlockId);

        using (var forced = await host.PostAsync("/writes/unblock", OpsTestHost.SuperAdminToken, Unblock("posting the correcting entry", force: true)))
        {
            var text = await forced.Content.ReadAsStringAsync();
            Assert.True(forced.StatusCode == HttpStatusCode.OK, text);
            using var body = JsonDocument.Parse(text);
            Assert.True(body.RootElement.GetProperty("forced").GetBoolean());
            Assert.Equal(new[] { "financial_totals_balance" }, body.RootElement.GetProperty("stillFailing").EnumerateArray().Select(e => e.GetString()));
        }
        Assert.Equal("[forced while failing: financial_totals_balance] posting the correcting entry",
            await Sql.ScalarAsync<string>(database, "select lift_reason from write_blocks where id = $1", blockId));
        Assert.Equal("write_block.lifted", await Sql.ScalarAsync<string>(database, "select action from audit_log where tenant_id = 'system' order by seq desc limit 1"));
        Assert.True(await OpsTestHost.EventuallyAsync(() => !StateAsync(host).GetAwaiter().GetResult().WriteBlock.Active, TimeSpan.FromSeconds(15)));

        // The failure is still there: the next heartbeat blocks again, with a new block.
        var again = await BeatAsync(host);
        Assert.True(again.WriteBlock.Active, again.ToJson());
        Assert.NotEqual(blockId, again.WriteBlock.BlockId);
        Assert.Equal(1L, await Sql.ScalarAsync<long>(database, "select count(*) from write_blocks where lifted_at is null"));
    }

    [Fact]
    public async Task With_a_stand_in_supervisor_the_lift_tells_it_once_and_without_a_configured_credential_every_attempt_is_refused()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await Sql.ExecuteAsync(database, "select impose_write_block('financial_totals_balance: test imbalance', 'clawkeeper-heartbeat')");
        var integrity = new DataIntegritySettings(TimeSpan.FromSeconds(60), TimeSpan.FromHours(24), 5, "clawkeeper_app", true);

        await using (var disabled = await OpsTestHost.StartAsync(database, writes: new OpsWriteSettings(new SecuritySettings(""), integrity)))
        {
            using var refused = await disabled.PostAsync("/writes/unblock", OpsTestHost.SuperAdminToken, Unblock("clean"));
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.Contains("super_admin operations are disabled", await refused.Content.ReadAsStringAsync());
            Assert.Equal(1L, await Sql.ScalarAsync<long>(database, "select count(*) from write_blocks where lifted_at is null"));
        }

        await using var host = await OpsTestHost.StartAsync(database, writes: new OpsWriteSettings(new SecuritySettings(OpsTestHost.SuperAdminTokenSha256), integrity));
        using var lifted = await host.PostAsync("/writes/unblock", OpsTestHost.SuperAdminToken, Unblock("clean platform", by: null));
        var text = await lifted.Content.ReadAsStringAsync();
        Assert.True(lifted.StatusCode == HttpStatusCode.OK, text);
        Assert.Contains("super_admin:ops@127.0.0.1", text);
        Assert.True(await OpsTestHost.EventuallyAsync(() => Volatile.Read(ref host.Control.Reconciles) == 1));
        await Task.Delay(200);
        Assert.Equal(1, Volatile.Read(ref host.Control.Reconciles));
    }
}
