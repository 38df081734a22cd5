using Akka.Actor;
using ClawKeeper.Actors.Alerts;
using ClawKeeper.Actors.Alerts.Channels;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Actors.Orchestrators;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Actors.Tests.Alerts.Channels;
using ClawKeeper.Actors.Tests.Support;
using ClawKeeper.Testing;
using Xunit;
using Xunit.Abstractions;

namespace ClawKeeper.Actors.Tests.Alerts;

/// <summary>The heartbeat's alerts through a real SMTP server and a Discord stand-in on loopback.</summary>
public class AlertDeliverySpec : Akka.TestKit.Xunit2.TestKit
{

    // Every failure hard at once: these specs are about delivery, not soft states (CheckStatesSpec, HeartbeatRetrySpec).
    private static readonly HeartbeatSettings Heartbeat = new(TimeSpan.FromHours(4), TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(10), 3, 100, RetryPolicy.Immediate);

    private readonly ITestOutputHelper _output;

    public AlertDeliverySpec(ITestOutputHelper output) : base("""
        akka.persistence.journal.plugin = "akka.persistence.journal.inmem"
        akka.persistence.snapshot-store.plugin = "akka.persistence.snapshot-store.inmem"
        akka.logger-formatter = "Akka.Logger.Serilog.SerilogLogMessageFormatter, Akka.Logger.Serilog"
        """, output)
    {
        _output = output;
    }

    private static AlertDelivery Delivery(int smtpPort, Uri webhook) => LoopbackAlertDelivery.ToSuperAdmin(smtpPort, webhook);

    private IActorRef Start(string persistenceId, Func<CheckStatus> status, AlertDelivery delivery) =>
        Sys.ActorOf(HeartbeatSupervisor.Props(new HeartbeatSupervisorOptions(persistenceId, Heartbeat,
            new[] { TestGroups.Scripted("task_queue", status) }, Array.Empty<OrchestratorDefinition>(), new RecordingRunLog(),
            Scheduled: false, Alerts: delivery)));

    private static async Task<HeartbeatReport> BeatAsync(IActorRef supervisor) =>
        (await supervisor.Ask<HeartbeatCompleted>(RunHeartbeatNow.Instance, TimeSpan.FromSeconds(20))).Report;

    [Fact]
    public async Task Three_failed_heartbeats_send_exactly_one_email_and_one_discord_post_and_recovery_sends_the_resolved_notice()
    {
        await using var smtp = await LoopbackSmtpServer.StartAsync();
        await using var discord = await DiscordStandIn.StartAsync();
        var status = CheckStatus.Fail;
        var supervisor = Start("three", () => status, Delivery(smtp.Port, discord.Webhook));

        for (var i = 0; i < 4; i++) await BeatAsync(supervisor);
        var mail = Assert.Single(await smtp.WaitForAsync(1));
        await AwaitConditionAsync(() => Task.FromResult(discord.Requests.Count >= 1));
        await Task.Delay(500); // nothing else may follow
        Assert.Single(smtp.Received);
        var post = Assert.Single(discord.Requests);
        Assert.Equal(new[] { "root@bookkeeping.test" }, mail.EnvelopeTo);
        Assert.Contains("3 consecutive failed heartbeats", mail.Message.TextBody);
        Assert.Contains("task_queue/task_queue_check", mail.Message.TextBody);
        Assert.Contains("3 consecutive failed heartbeats", post.Body);

        status = CheckStatus.Pass;
        var recovered = await BeatAsync(supervisor);
        Assert.Equal(HeartbeatStatus.Pass, recovered.Status);
        var mails = await smtp.WaitForAsync(2);
        Assert.Contains("RESOLVED", mails[1].Message.Subject, StringComparison.OrdinalIgnoreCase);
        await AwaitConditionAsync(() => Task.FromResult(discord.Requests.Count == 2));

        var state = await supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, TimeSpan.FromSeconds(5));
        await AwaitConditionAsync(async () => (await supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, TimeSpan.FromSeconds(5))).Outbox.IsEmpty);
        Assert.Empty(state.Incidents);
    }

    [Fact]
    public async Task A_channel_that_is_down_does_not_hold_back_the_other_and_gets_the_message_once_when_it_recovers()
    {
        await using var smtp = await LoopbackSmtpServer.StartAsync();
        await using var discord = await DiscordStandIn.StartAsync();
        discord.Reply = new StandInReply(500, "{\"message\":\"upstream trouble\"}");
        var supervisor = Start("discord-down", () => CheckStatus.Fail, Delivery(smtp.Port, discord.Webhook));
        for (var i = 0; i < 3; i++) await BeatAsync(supervisor);

        Assert.Single(await smtp.WaitForAsync(1)); // e-mail went out while Discord fails
        await AwaitConditionAsync(() => Task.FromResult(discord.Requests.Count >= 2));
        discord.Reply = StandInReply.NoContent;
        await AwaitConditionAsync(async () => (await supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, TimeSpan.FromSeconds(5))).Outbox.IsEmpty,
            TimeSpan.FromSeconds(10));
        var delivered = discord.Requests.Count;
        await Task.Delay(1500);
        Assert.Equal(delivered, discord.Requests.Count); // no repeat after success
        Assert.Single(smtp.Received);
    }

    [Fact]
    public async Task Smtp_down_for_a_while_then_up_delivers_the_email_once()
    {
        var port = LoopbackHttpServer.RefusingAddress().Port; // nothing listens there yet
        await using var discord = await DiscordStandIn.StartAsync();
        var supervisor = Start("smtp-down", () => CheckStatus.Fail, Delivery(port, discord.Webhook));
        for (var i = 0; i < 3; i++) await BeatAsync(supervisor);
        await AwaitConditionAsync(() => Task.FromResult(discord.Requests.Count == 1)); // Discord is not held back
        await Task.Delay(1500); // a few failed SMTP attempts (backoff 200 ms .. 1 s)
        var pending = await supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, TimeSpan.FromSeconds(5));
        Assert.Equal(new[] { "email" }, Assert.Single(pending.Outbox.Values).PendingChannels);

        await using var smtp = await LoopbackSmtpServer.StartAsync(port: port); // the server comes up
        Assert.Single(await smtp.WaitForAsync(1, TimeSpan.FromSeconds(10)));
        await AwaitConditionAsync(async () => (await supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, TimeSpan.FromSeconds(5))).Outbox.IsEmpty);
        await Task.Delay(1500);
        Assert.Single(smtp.Received);
        Assert.Single(discord.Requests);
    }

    [Fact]
    public async Task Discord_429_is_retried_after_the_delay_it_asks_for()
    {
        await using var smtp = await LoopbackSmtpServer.StartAsync();
        await using var discord = await DiscordStandIn.StartAsync();
        discord.Reply = StandInReply.RateLimited("{\"message\":\"You are being rate limited.\",\"retry_after\":1.2,\"global\":false}");
        var supervisor = Start("discord-429", () => CheckStatus.Fail, Delivery(smtp.Port, discord.Webhook));
        for (var i = 0; i < 3; i++) await BeatAsync(supervisor);
        await AwaitConditionAsync(() => Task.FromResult(discord.Requests.Count >= 1));
        discord.Reply = StandInReply.NoContent;
        await AwaitConditionAsync(() => Task.FromResult(discord.Requests.Count >= 2), TimeSpan.FromSeconds(10));
        // Arrival times as the stand-in saw them: a late poll of the test cannot make the gap look shorter.
        var arrivals = discord.Requests.Select(r => r.ReceivedAt).ToList();
        Assert.True(arrivals[1] - arrivals[0] >= TimeSpan.FromSeconds(1.1), $"the retry came {(arrivals[1] - arrivals[0]).TotalMilliseconds:0} ms after the 429, before its retry_after of 1.2 s");
        await Task.Delay(300);
        Assert.Equal(2, discord.Requests.Count);
    }

    [Fact]
    public async Task An_alert_persisted_but_not_sent_before_a_crash_is_delivered_after_the_restart_once()
    {
        await using var smtp = await LoopbackSmtpServer.StartAsync();
        await using var discord = await DiscordStandIn.StartAsync();
        var nowhere = LoopbackHttpServer.RefusingAddress();
        var dead = Delivery(nowhere.Port, new Uri(nowhere, "api/webhooks/1/secret")); // both channels unreachable: nothing leaves
        var supervisor = Start("crash", () => CheckStatus.Fail, dead);
        for (var i = 0; i < 3; i++) await BeatAsync(supervisor);
        var before = await supervisor.Ask<HeartbeatState>(GetHeartbeatState.Instance, TimeSpan.FromSeconds(5));
        var queued = Assert.Single(before.Outbox.Values);
        Assert.Equal(2, queued.PendingChannels.Count);

        Watch(supervisor);
        Sys.Stop(supervisor); // the node goes down with the alert persisted and undelivered
        ExpectTerminated(supervisor);

        var restarted = Start("crash", () => CheckStatus.Fail, Delivery(smtp.Port, discord.Webhook));
        var mail = Assert.Single(await smtp.WaitForAsync(1, TimeSpan.FromSeconds(10)));
        Assert.Contains(queued.Notification.Id.Split(':')[0], mail.Message.TextBody);
        await AwaitConditionAsync(() => Task.FromResult(discord.Requests.Count == 1));
        await AwaitConditionAsync(async () => (await restarted.Ask<HeartbeatState>(GetHeartbeatState.Instance, TimeSpan.FromSeconds(5))).Outbox.IsEmpty);

        // Later heartbeats do not resend it.
        await BeatAsync(restarted);
        await Task.Delay(500);
        Assert.Single(smtp.Received);
        Assert.Single(discord.Requests);
    }

    /// <summary>Prints the time from the failing heartbeat's completion to the hand-off of both messages (a measurement, not a timed assertion).</summary>
    [Fact]
    public async Task Measures_the_time_from_the_failing_heartbeat_to_the_hand_off_of_both_messages()
    {
        await using var smtp = await LoopbackSmtpServer.StartAsync();
        await using var discord = await DiscordStandIn.StartAsync();
        var samples = new List<(double Email, double Discord)>();
        for (var run = 0; run < 5; run++)
        {
            var supervisor = Start($"latency-{run}", () => CheckStatus.Fail, Delivery(smtp.Port, discord.Webhook));
            HeartbeatReport third = null!;
            for (var i = 0; i < 3; i++) third = await BeatAsync(supervisor);
            double? email = null, post = null;
            while (email is null || post is null)
            {
                var elapsed = (DateTimeOffset.UtcNow - third.CompletedAt).TotalMilliseconds;
                if (email is null && smtp.Received.Count >= run + 1) email = elapsed;
                if (post is null && discord.Requests.Count >= run + 1) post = elapsed;
                Assert.True(elapsed < 10_000, "both messages were handed off within 10 s");
                await Task.Delay(2);
            }
            samples.Add((email!.Value, post!.Value));
            Sys.Stop(supervisor);
        }
        foreach (var (email, post) in samples)
            _output.WriteLine($"heartbeat completed -> e-mail accepted by SMTP: {email:0} ms, Discord post received: {post:0} ms");
        _output.WriteLine($"median: e-mail {Median(samples.Select(s => s.Email))} ms, Discord {Median(samples.Select(s => s.Discord))} ms (first run includes JIT and connection set-up)");
        Assert.Equal(5, smtp.Received.Count);
        Assert.Equal(5, discord.Requests.Count);
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return Math.Round(sorted[sorted.Count / 2]);
    }
}
