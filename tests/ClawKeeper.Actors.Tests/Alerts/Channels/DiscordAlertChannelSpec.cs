using System.Text.Json;
using System.Text.Json.Nodes;
using ClawKeeper.Actors.Alerts;
using ClawKeeper.Actors.Alerts.Channels;
using ClawKeeper.Testing;
using Xunit;

namespace ClawKeeper.Actors.Tests.Alerts.Channels;

/// <summary>The Discord channel against a Kestrel stand-in for the webhook on 127.0.0.1.</summary>
public class DiscordAlertChannelSpec
{
    private static readonly HttpClient Http = new();
    private static readonly Uri StatusPage = new("https://status.clawkeeper.example/incidents");

    private static AudienceRoute Route(Uri? webhook) => new("super_admin", Array.Empty<string>(), webhook);

    private static DiscordAlertChannel Channel(TimeSpan? timeout = null) => new(Http, StatusPage, timeout);

    [Fact]
    public async Task Posts_content_and_one_embed_and_a_204_is_delivered()
    {
        await using var discord = await DiscordStandIn.StartAsync();

        var result = await Channel().SendAsync(SampleNotifications.Critical(), Route(discord.Webhook), CancellationToken.None);

        Assert.IsType<DeliveryResult.Delivered>(result);
        var request = Assert.Single(discord.Requests);
        Assert.Equal("POST", request.Method);
        Assert.Equal($"/api/webhooks/{DiscordStandIn.WebhookId}/{DiscordStandIn.Token}", request.Path);
        Assert.StartsWith("application/json", request.ContentType);

        using var json = JsonDocument.Parse(request.Body);
        var root = json.RootElement;
        Assert.Equal("**CRITICAL** ClawKeeper: 3 checks failing", root.GetProperty("content").GetString());
        Assert.Equal(0, root.GetProperty("allowed_mentions").GetProperty("parse").GetArrayLength());
        var embed = Assert.Single(root.GetProperty("embeds").EnumerateArray());
        Assert.Equal("CRITICAL: 3 checks failing", embed.GetProperty("title").GetString());
        Assert.Equal(0xE74C3C, embed.GetProperty("color").GetInt32());
        Assert.Equal("Three consecutive heartbeats failed; the platform needs a person.", embed.GetProperty("description").GetString());
        Assert.Equal(SampleNotifications.HeartbeatId, embed.GetProperty("footer").GetProperty("text").GetString());
        Assert.Equal("2026-11-28T04:00:07.000Z", embed.GetProperty("timestamp").GetString());
        Assert.Equal(StatusPage.AbsoluteUri, embed.GetProperty("url").GetString());

        var fields = embed.GetProperty("fields").EnumerateArray().ToList();
        Assert.Equal(3, fields.Count);
        Assert.Equal("system_health/api_server_responding fail", fields[0].GetProperty("name").GetString());
        Assert.Equal("observed HTTP 500 in 12 ms vs threshold 2xx in < 100 ms\nGET http://api.internal/health answered 500", fields[0].GetProperty("value").GetString());
        Assert.Equal("task_queue/queue_depth fail", fields[1].GetProperty("name").GetString());
        Assert.Equal("data_integrity/audit_log_continuous error", fields[2].GetProperty("name").GetString());
        Assert.Contains("hash chain broken at 4712", fields[2].GetProperty("value").GetString());
    }

    [Fact]
    public void Colours_follow_severity_and_kind_and_the_link_is_left_out_without_a_status_page()
    {
        int Colour(JsonObject payload) => payload["embeds"]![0]!["color"]!.GetValue<int>();

        Assert.Equal(DiscordAlertChannel.ColorResolved, Colour(DiscordAlertChannel.BuildPayload(SampleNotifications.Critical(kind: NotificationKind.Resolved))));
        Assert.Equal(0x2ECC71, DiscordAlertChannel.ColorResolved);
        Assert.Equal(DiscordAlertChannel.ColorWarning, Colour(DiscordAlertChannel.BuildPayload(SampleNotifications.Critical(severity: "warning"))));
        Assert.Equal(DiscordAlertChannel.ColorCritical, Colour(DiscordAlertChannel.BuildPayload(SampleNotifications.Critical(kind: NotificationKind.Reminder))));

        var resolved = DiscordAlertChannel.BuildPayload(SampleNotifications.Critical(kind: NotificationKind.Resolved));
        Assert.Equal("**RESOLVED** ClawKeeper: 3 checks failing", resolved["content"]!.GetValue<string>());
        Assert.False(resolved["embeds"]![0]!.AsObject().ContainsKey("url"));
    }

    [Fact]
    public async Task A_429_is_retry_after_the_delay_discord_asks_for()
    {
        await using var discord = await DiscordStandIn.StartAsync();
        var channel = Channel();

        discord.Reply = StandInReply.RateLimited("""{"message": "You are being rate limited.", "retry_after": 1.5, "global": false}""");
        var fromBody = Assert.IsType<DeliveryResult.RetryAfter>(await channel.SendAsync(SampleNotifications.Critical(), Route(discord.Webhook), CancellationToken.None));

        discord.Reply = StandInReply.RateLimited("", new Dictionary<string, string> { ["Retry-After"] = "3" });
        var fromHeader = Assert.IsType<DeliveryResult.RetryAfter>(await channel.SendAsync(SampleNotifications.Critical(), Route(discord.Webhook), CancellationToken.None));

        discord.Reply = StandInReply.RateLimited("rate limited");
        var fallback = Assert.IsType<DeliveryResult.RetryAfter>(await channel.SendAsync(SampleNotifications.Critical(), Route(discord.Webhook), CancellationToken.None));

        Assert.Equal(TimeSpan.FromSeconds(1.5), fromBody.Delay);
        Assert.Equal(TimeSpan.FromSeconds(3), fromHeader.Delay);
        Assert.Equal(TimeSpan.FromSeconds(1), fallback.Delay);
        Assert.Contains("1.5 s", fromBody.Reason);
        Assert.All(new[] { fromBody.Reason, fromHeader.Reason, fallback.Reason }, AssertNoWebhookSecret);
        Assert.Equal(3, discord.Requests.Count);
    }

    [Fact]
    public async Task A_500_is_a_failure_that_never_repeats_the_webhook_path()
    {
        await using var discord = await DiscordStandIn.StartAsync();
        discord.Reply = new StandInReply(500); // the stand-in echoes the request path in its error body

        var result = await Channel().SendAsync(SampleNotifications.Critical(), Route(discord.Webhook), CancellationToken.None);

        var failed = Assert.IsType<DeliveryResult.Failed>(result);
        Assert.StartsWith("HTTP 500", failed.Reason);
        Assert.Contains($"discord webhook (127.0.0.1:{discord.Webhook.Port})", failed.Reason);
        Assert.Contains("upstream failed", failed.Reason);
        AssertNoWebhookSecret(failed.Reason);
    }

    [Fact]
    public async Task Other_non_2xx_answers_are_failures()
    {
        await using var discord = await DiscordStandIn.StartAsync();
        discord.Reply = new StandInReply(404, """{"message": "Unknown Webhook", "code": 10015}""");

        var failed = Assert.IsType<DeliveryResult.Failed>(await Channel().SendAsync(SampleNotifications.Critical(), Route(discord.Webhook), CancellationToken.None));

        Assert.StartsWith("HTTP 404", failed.Reason);
        Assert.Contains("Unknown Webhook", failed.Reason);
        AssertNoWebhookSecret(failed.Reason);

        discord.Reply = new StandInReply(200, """{"id": "1"}""");
        Assert.IsType<DeliveryResult.Delivered>(await Channel().SendAsync(SampleNotifications.Critical(), Route(discord.Webhook), CancellationToken.None));
    }

    [Fact]
    public async Task A_refused_connection_is_a_failure_that_never_repeats_the_webhook_path()
    {
        var webhook = new Uri(LoopbackHttpServer.RefusingAddress(), $"api/webhooks/{DiscordStandIn.WebhookId}/{DiscordStandIn.Token}");

        var result = await Channel().SendAsync(SampleNotifications.Critical(), Route(webhook), CancellationToken.None);

        var failed = Assert.IsType<DeliveryResult.Failed>(result);
        Assert.Contains($"discord webhook (127.0.0.1:{webhook.Port}) unreachable", failed.Reason);
        AssertNoWebhookSecret(failed.Reason);
    }

    [Fact]
    public async Task A_webhook_that_does_not_answer_in_time_is_a_failure()
    {
        await using var discord = await DiscordStandIn.StartAsync();
        discord.Reply = new StandInReply(204, Delay: TimeSpan.FromSeconds(10));

        var result = await Channel(TimeSpan.FromMilliseconds(500)).SendAsync(SampleNotifications.Critical(), Route(discord.Webhook), CancellationToken.None);

        var failed = Assert.IsType<DeliveryResult.Failed>(result);
        Assert.Contains("no answer within 0.5 s", failed.Reason);
        AssertNoWebhookSecret(failed.Reason);
    }

    [Fact]
    public async Task Without_a_webhook_the_channel_is_not_configured()
    {
        var result = await Channel().SendAsync(SampleNotifications.Critical(), Route(null), CancellationToken.None);

        Assert.Contains("super_admin", Assert.IsType<DeliveryResult.NotConfigured>(result).Reason);
        Assert.Equal("discord", Channel().Name);
    }

    [Fact]
    public void Redact_names_the_host_and_never_the_path()
    {
        Assert.Equal("discord webhook (discord.com)", DiscordAlertChannel.Redact(new Uri("https://discord.com/api/webhooks/123/sEcReT")));
        Assert.Equal("discord webhook (127.0.0.1:8443)", DiscordAlertChannel.Redact(new Uri("https://user:pw@127.0.0.1:8443/api/webhooks/123/sEcReT?wait=true")));
    }

    [Fact]
    public async Task Fields_and_texts_are_cut_to_discords_limits()
    {
        var lines = Enumerable.Range(1, 30)
            .Select(i => new NotificationLine("system_health", $"check_{i:00}_" + new string('c', 300), "fail",
                new string('o', 300), new string('t', 300), $"detail {i} " + new string('d', 2000)))
            .ToList();
        var notification = SampleNotifications.Critical(lines: lines, title: new string('T', 400), summary: new string('S', 5000));

        await using var discord = await DiscordStandIn.StartAsync();
        Assert.IsType<DeliveryResult.Delivered>(await Channel().SendAsync(notification, Route(discord.Webhook), CancellationToken.None));

        using var json = JsonDocument.Parse(Assert.Single(discord.Requests).Body);
        var embed = json.RootElement.GetProperty("embeds")[0];
        var title = embed.GetProperty("title").GetString()!;
        var description = embed.GetProperty("description").GetString()!;
        var footer = embed.GetProperty("footer").GetProperty("text").GetString()!;
        var fields = embed.GetProperty("fields").EnumerateArray()
            .Select(f => (Name: f.GetProperty("name").GetString()!, Value: f.GetProperty("value").GetString()!)).ToList();

        Assert.Equal(256, title.Length);
        Assert.EndsWith("…", title);
        Assert.InRange(description.Length, 1, 4096);
        Assert.Equal(25, fields.Count);
        Assert.All(fields, f => Assert.InRange(f.Name.Length, 1, 256));
        Assert.All(fields, f => Assert.InRange(f.Value.Length, 1, 1024));
        Assert.StartsWith("… and 6 more", fields[24].Name);
        Assert.Contains("check_25_", fields[24].Value);
        Assert.StartsWith("system_health/check_01_ccc", fields[0].Name);
        Assert.StartsWith("observed ooo", fields[0].Value);
        var total = title.Length + description.Length + footer.Length + fields.Sum(f => f.Name.Length + f.Value.Length);
        Assert.InRange(total, 5000, 6000);
        Assert.InRange(json.RootElement.GetProperty("content").GetString()!.Length, 1, 2000);
    }

    [Fact]
    public void A_long_detail_is_cut_to_1024_characters_when_the_embed_has_room()
    {
        var lines = new[] { new NotificationLine("task_queue", "stuck_tasks", "fail", "12 stuck", "0", new string('d', 3000)) };

        var payload = DiscordAlertChannel.BuildPayload(SampleNotifications.Critical(lines: lines, title: "1 check failing"));

        var value = payload["embeds"]![0]!["fields"]![0]!["value"]!.GetValue<string>();
        Assert.Equal(1024, value.Length);
        Assert.StartsWith("observed 12 stuck vs threshold 0\nddd", value);
        Assert.EndsWith("…", value);
    }

    private static void AssertNoWebhookSecret(string reason)
    {
        Assert.DoesNotContain(DiscordStandIn.Token, reason);
        Assert.DoesNotContain(DiscordStandIn.WebhookId, reason);
        Assert.DoesNotContain("/api/webhooks", reason);
    }
}
