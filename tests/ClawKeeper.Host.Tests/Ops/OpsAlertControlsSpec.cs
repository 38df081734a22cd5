using System.Net;
using System.Text.Json;
using ClawKeeper.Host.Ops;
using ClawKeeper.Testing;
using Xunit;

namespace ClawKeeper.Host.Tests.Ops;

/// <summary>Acknowledge and silence from the ops surface (the CLI writes the same table): who may mute what, and for how long.</summary>
public class OpsAlertControlsSpec
{
    private static async Task<(HttpStatusCode Status, string Body)> PostAsync(OpsTestHost host, string path, string? bearer)
    {
        using var response = await host.PostAsync(path, bearer);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static string Error(string body) => JsonDocument.Parse(body).RootElement.GetProperty("error").GetString()!;

    [Fact]
    public async Task Acknowledge_and_silence_need_a_token_explain_bad_arguments_and_are_persisted_with_the_credentials_holder()
    {
        await using var host = await OpsTestHost.StartAsync(await TestDatabases.CreateSeededAsync());
        var (refused, _) = await PostAsync(host, "/alerts/ack?incident=task_queue/error_rate&reason=mine", bearer: null);
        Assert.Equal(HttpStatusCode.Unauthorized, refused);
        var (bad, badBody) = await PostAsync(host, "/alerts/silence?target=no_such_group&for=3600&reason=x", OpsTestHost.Token);
        Assert.Equal(HttpStatusCode.BadRequest, bad);
        Assert.Contains("groups: system_health", badBody);
        var (named, namedBody) = await PostAsync(host, "/alerts/ack?incident=task_queue/error_rate&reason=x&by=dana", OpsTestHost.Token);
        Assert.Equal(HttpStatusCode.BadRequest, named);
        Assert.StartsWith("by is not accepted", Error(namedBody));

        var (ack, _) = await PostAsync(host, "/alerts/ack?incident=task_queue/error_rate&reason=looking%20into%20it", OpsTestHost.Token);
        Assert.Equal(HttpStatusCode.Created, ack);
        var (silence, _) = await PostAsync(host, "/alerts/silence?target=task_queue&for=3600&reason=maintenance", OpsTestHost.Token);
        Assert.Equal(HttpStatusCode.Created, silence);
        var (owner, _) = await PostAsync(host, "/alerts/ack?incident=data_integrity/audit_log_continuous&reason=repairing", OpsTestHost.SuperAdminToken);
        Assert.Equal(HttpStatusCode.Created, owner);

        var rows = await Sql.RowsAsync(host.Database, "select kind, target, created_by, reason, until is not null from alert_controls order by id");
        Assert.Equal(new object?[] { "ack", "task_queue/error_rate", "ops", "looking into it", false }, rows[0]);
        Assert.Equal(new object?[] { "silence", "task_queue", "ops", "maintenance", true }, rows[1]);
        Assert.Equal(new object?[] { "ack", "data_integrity/audit_log_continuous", "super_admin", "repairing", false }, rows[2]);
        Assert.Equal(3, rows.Count); // the refused ones left nothing
    }

    public static IEnumerable<object[]> BooksTargets() =>
    [
        ["/alerts/ack?incident=data_integrity&reason=x"],
        ["/alerts/ack?incident=data_integrity%2Faudit_log_continuous&reason=x"],
        ["/alerts/ack?incident=check%3Adata_integrity%2Ffinancial_totals_balance%3Asuper_admin&reason=x"],
        ["/alerts/ack?incident=heartbeat%3Aconsecutive-failures%3Asuper_admin&reason=x"],
        ["/alerts/ack?incident=consecutive-failures&reason=x"],
        ["/alerts/silence?target=data_integrity&until=9999-12-31&reason=x"],
        ["/alerts/silence?target=data_integrity&for=600&reason=x"],
        ["/alerts/silence?target=data_integrity%2Faudit_log_continuous&for=600&reason=x"],
    ];

    [Theory]
    [MemberData(nameof(BooksTargets))]
    public async Task The_ops_token_cannot_mute_the_books_or_the_escalation_and_the_attempt_is_recorded(string route)
    {
        await using var host = await OpsTestHost.StartAsync(await TestDatabases.CreateSeededAsync());
        var before = await Sql.ScalarAsync<long>(host.Database, "select count(*) from security_events where kind = 'unauthorized_access'");

        var (status, body) = await PostAsync(host, route, OpsTestHost.Token);
        // The 9999 silence is refused for its window (400) before the credential is weighed; every other one is 403.
        if (route.Contains("9999"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Contains("clawkeeper.alerts.max-silence", Error(body));
        }
        else
        {
            Assert.True(status == HttpStatusCode.Forbidden, body);
            Assert.Contains("only super_admin may mute the books", Error(body));
            Assert.Equal(before + 1, await Sql.ScalarAsync<long>(host.Database, "select count(*) from security_events where kind = 'unauthorized_access'"));
            Assert.Contains(host.Warnings, w => w.Contains("ops: refused POST /alerts/") && w.Contains("(ops)"));
        }
        Assert.DoesNotContain(OpsTestHost.Token, body);
        Assert.Equal(0L, await Sql.ScalarAsync<long>(host.Database, "select count(*) from alert_controls"));

        // The books' owner may (within the bounds).
        var (owner, ownerBody) = await PostAsync(host, route.Replace("until=9999-12-31", "for=3600"), OpsTestHost.SuperAdminToken);
        Assert.True(owner == HttpStatusCode.Created, ownerBody);
        Assert.Equal("super_admin", JsonDocument.Parse(ownerBody).RootElement.GetProperty("by").GetString());
        Assert.Equal(1L, await Sql.ScalarAsync<long>(host.Database, "select count(*) from alert_controls where created_by = 'super_admin'"));
    }

    public static IEnumerable<object[]> BadWindows() =>
    [
        ["for=1e300", "for must be at most 1h ahead"],
        ["for=7200", "for must be at most 1h ahead"],
        ["for=abc", "for must be a number of seconds"],
        ["for=NaN", "for must be a number of seconds"],
        ["for=Infinity", "for must be a number of seconds"],
        ["for=-5", "for must be more than 0 seconds"],
        ["for=0", "for must be more than 0 seconds"],
        ["until=9999-12-31", "until must be at most 1h ahead (clawkeeper.alerts.max-silence)"],
        ["until=2001-01-01T00:00:00Z", "until must be in the future"],
        ["until=tomorrow", "until must be an ISO 8601 time"],
        ["until=2001-01-01&for=60", "give either until=<ISO time> or for=<seconds>, not both"],
        ["", "give until=<ISO time in the future> or for=<seconds>"],
    ];

    [Theory]
    [MemberData(nameof(BadWindows))]
    public async Task A_silence_window_that_is_unbounded_or_malformed_is_400_naming_the_parameter_also_for_super_admin(string window, string expected)
    {
        await using var host = await OpsTestHost.StartAsync(await TestDatabases.CreateSeededAsync(), maxSilence: TimeSpan.FromHours(1));
        foreach (var token in new[] { OpsTestHost.Token, OpsTestHost.SuperAdminToken })
        {
            var (status, body) = await PostAsync(host, $"/alerts/silence?target=task_queue&reason=x&{window}", token);
            Assert.True(status == HttpStatusCode.BadRequest, body);
            Assert.Contains(expected, Error(body));
        }
        Assert.Equal(0L, await Sql.ScalarAsync<long>(host.Database, "select count(*) from alert_controls"));

        // Right at the bound is accepted.
        var (ok, okBody) = await PostAsync(host, "/alerts/silence?target=task_queue&reason=x&for=3600", OpsTestHost.Token);
        Assert.True(ok == HttpStatusCode.Created, okBody);
    }

    [Theory]
    [InlineData("data_integrity", true)]
    [InlineData("data_integrity/audit_log_continuous", true)]
    [InlineData("check:data_integrity/audit_log_continuous:super_admin", true)]
    [InlineData("heartbeat:consecutive-failures:super_admin", true)]
    [InlineData("consecutive-failures", true)]
    [InlineData("task_queue", false)]
    [InlineData("task_queue/error_rate", false)]
    [InlineData("check:task_queue/error_rate:admin", false)]
    [InlineData("data_integrity_like", false)]
    public void Which_targets_belong_to_the_books_owner(string target, bool superAdmin) =>
        Assert.Equal(superAdmin, AlertControlRules.NeedsSuperAdmin(target));

    [Fact]
    public async Task The_cli_silence_has_the_same_bound()
    {
        var environment = new Dictionary<string, string?>
        {
            ["CLAWKEEPER_PLATFORM_DB"] = "Host=127.0.0.1;Port=1;Database=none;Username=none",
            ["CLAWKEEPER_SUPER_ADMIN_TOKEN"] = OpsTestHost.SuperAdminToken,
            ["CLAWKEEPER_SUPER_ADMIN_TOKEN_SHA256"] = OpsTestHost.SuperAdminTokenSha256,
        };
        var result = await Support.ClawKeeperProcess.RunAsync(environment, "alerts", "silence", "--group", "data_integrity", "--for", "8.00:00:00", "--reason", "forever");
        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("--for must end at most 7.00:00:00 ahead (clawkeeper.alerts.max-silence)", result.StandardError);
    }
}
