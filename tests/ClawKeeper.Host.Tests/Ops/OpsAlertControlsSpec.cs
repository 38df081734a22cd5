using System.Net;
using ClawKeeper.Testing;
using Xunit;

namespace ClawKeeper.Host.Tests.Ops;

/// <summary>Acknowledge and silence from the ops surface (the CLI writes the same table).</summary>
public class OpsAlertControlsSpec
{
    [Fact]
    public async Task Acknowledge_and_silence_need_the_token_explain_bad_arguments_and_are_persisted()
    {
        await using var host = await OpsTestHost.StartAsync(await TestDatabases.CreateSeededAsync());
        using (var refused = await host.PostAsync("/alerts/ack?incident=data_integrity/audit_log_continuous&reason=mine", bearer: null))
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        using (var bad = await host.PostAsync("/alerts/silence?target=no_such_group&for=3600&reason=x", OpsTestHost.Token))
        {
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
            Assert.Contains("groups: system_health", await bad.Content.ReadAsStringAsync());
        }
        using (var ack = await host.PostAsync("/alerts/ack?incident=data_integrity/audit_log_continuous&reason=looking%20into%20it&by=dana", OpsTestHost.Token))
            Assert.Equal(HttpStatusCode.Created, ack.StatusCode);
        using (var silence = await host.PostAsync("/alerts/silence?target=task_queue&for=3600&reason=maintenance", OpsTestHost.Token))
            Assert.Equal(HttpStatusCode.Created, silence.StatusCode);

        var rows = await Sql.RowsAsync(host.Database, "select kind, target, created_by, reason, until is not null from alert_controls order by id");
        Assert.Equal(new object?[] { "ack", "data_integrity/audit_log_continuous", "ops:dana", "looking into it", false }, rows[0]);
        Assert.Equal(new object?[] { "silence", "task_queue", rows[1][2], "maintenance", true }, rows[1]);
        Assert.Equal(2, rows.Count); // the refused one left nothing
    }
}
