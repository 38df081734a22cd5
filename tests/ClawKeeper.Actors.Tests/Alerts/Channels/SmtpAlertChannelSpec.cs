using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using ClawKeeper.Actors.Alerts;
using ClawKeeper.Actors.Alerts.Channels;
using ClawKeeper.Testing;
using MimeKit;
using Xunit;

namespace ClawKeeper.Actors.Tests.Alerts.Channels;

/// <summary>The e-mail channel against a real SMTP server on loopback (the SmtpServer package), parsed back with MimeKit.</summary>
public class SmtpAlertChannelSpec
{
    private const string Password = "pa55-W0rd!secret";

    private static readonly AudienceRoute SuperAdmins = new("super_admin",
        new[] { "ops@example.test", "Founder <founder@example.test>" }, null);

    private static SmtpSettings Settings(int port, string? username = null, string? password = null, TimeSpan? timeout = null) =>
        new("127.0.0.1", port, SmtpTlsMode.None, username, password, "ClawKeeper <clawkeeper@example.test>", timeout ?? TimeSpan.FromSeconds(10));

    [Fact]
    public async Task A_notification_arrives_once_with_subject_recipients_body_and_message_id()
    {
        await using var smtp = await LoopbackSmtpServer.StartAsync();
        var channel = new SmtpAlertChannel(Settings(smtp.Port));
        var notification = SampleNotifications.Critical();

        var result = await channel.SendAsync(notification, SuperAdmins, CancellationToken.None);

        Assert.IsType<DeliveryResult.Delivered>(result);
        Assert.Equal("email", channel.Name);
        var mail = Assert.Single(await smtp.WaitForAsync(1));
        Assert.Equal("clawkeeper@example.test", mail.EnvelopeFrom);
        Assert.Equal(new[] { "ops@example.test", "founder@example.test" }, mail.EnvelopeTo);

        var message = mail.Message;
        Assert.Equal("[ClawKeeper] CRITICAL: 3 checks failing (heartbeat-2026-11-28T04:00:00Z)", message.Subject);
        Assert.Equal(new[] { "ops@example.test", "founder@example.test" }, message.To.Mailboxes.Select(m => m.Address));
        Assert.Equal("clawkeeper@example.test", message.From.Mailboxes.Single().Address);
        Assert.Equal("<heartbeat:consecutive-failures:super_admin#1@clawkeeper>", message.Headers[HeaderId.MessageId]);
        Assert.Equal(SampleNotifications.At, message.Date);
        Assert.Equal("auto-generated", message.Headers["Auto-Submitted"]);

        var body = message.TextBody;
        Assert.NotNull(body);
        foreach (var line in SampleNotifications.ThreeFailures)
        {
            Assert.Contains($"{line.Group}/{line.Check} {line.Status}", body);
            Assert.Contains($"observed {line.Observed} vs threshold {line.Threshold}", body);
            Assert.Contains(line.Detail.Split('\n')[0], body);
        }
        Assert.Contains("oldest pending 2026-11-28T01:12:00Z", body); // the second line of a multi-line detail
        Assert.Contains("Heartbeat:  heartbeat-2026-11-28T04:00:00Z", body);
        Assert.Contains("heartbeat:consecutive-failures:super_admin", body);
        Assert.Contains("system_health.api_server_responding:admin", body);
        Assert.Contains("Three consecutive heartbeats failed", body);
        Assert.Contains("Audience:   super_admin", body);
    }

    [Fact]
    public async Task A_redelivery_carries_the_same_message_id_so_the_receiver_can_drop_it()
    {
        await using var smtp = await LoopbackSmtpServer.StartAsync();
        var channel = new SmtpAlertChannel(Settings(smtp.Port));
        var notification = SampleNotifications.Critical(id: "n-42");

        Assert.IsType<DeliveryResult.Delivered>(await channel.SendAsync(notification, SuperAdmins, CancellationToken.None));
        Assert.IsType<DeliveryResult.Delivered>(await channel.SendAsync(notification, SuperAdmins, CancellationToken.None));
        Assert.IsType<DeliveryResult.Delivered>(await channel.SendAsync(SampleNotifications.Critical(id: "n-43"), SuperAdmins, CancellationToken.None));

        var mails = await smtp.WaitForAsync(3);
        Assert.Equal(new[] { "n-42@clawkeeper", "n-42@clawkeeper", "n-43@clawkeeper" }, mails.Select(m => m.Message.MessageId));
    }

    [Fact]
    public async Task Authenticates_with_username_and_password_when_the_server_requires_it()
    {
        await using var smtp = await LoopbackSmtpServer.StartAsync("alerts", Password);

        var anonymous = await new SmtpAlertChannel(Settings(smtp.Port)).SendAsync(SampleNotifications.Critical(), SuperAdmins, CancellationToken.None);
        var refused = Assert.IsType<DeliveryResult.Failed>(anonymous);
        Assert.Contains("send failed", refused.Reason);

        var result = await new SmtpAlertChannel(Settings(smtp.Port, "alerts", Password)).SendAsync(SampleNotifications.Critical(), SuperAdmins, CancellationToken.None);

        Assert.IsType<DeliveryResult.Delivered>(result);
        var mail = Assert.Single(await smtp.WaitForAsync(1));
        Assert.Equal("alerts", mail.AuthenticatedUser);
        Assert.True(smtp.AuthenticationAttempts >= 1);
    }

    [Fact]
    public async Task A_wrong_password_fails_without_the_password_in_the_reason()
    {
        await using var smtp = await LoopbackSmtpServer.StartAsync("alerts", "the-right-one");
        var channel = new SmtpAlertChannel(Settings(smtp.Port, "alerts", Password));

        var result = await channel.SendAsync(SampleNotifications.Critical(), SuperAdmins, CancellationToken.None);

        var failed = Assert.IsType<DeliveryResult.Failed>(result);
        Assert.Contains($"smtp 127.0.0.1:{smtp.Port}: authenticate failed", failed.Reason);
        AssertNoSecret(failed.Reason);
        Assert.Empty(smtp.Received);
    }

    [Fact]
    public async Task A_server_that_is_down_is_a_failure_without_the_password()
    {
        var port = LoopbackHttpServer.RefusingAddress().Port;
        var channel = new SmtpAlertChannel(Settings(port, "alerts", Password));

        var result = await channel.SendAsync(SampleNotifications.Critical(), SuperAdmins, CancellationToken.None);

        var failed = Assert.IsType<DeliveryResult.Failed>(result);
        Assert.StartsWith($"smtp 127.0.0.1:{port}: connect failed", failed.Reason);
        AssertNoSecret(failed.Reason);
    }

    [Fact]
    public async Task A_server_that_never_answers_fails_after_the_timeout()
    {
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var port = ((IPEndPoint)silent.LocalEndpoint).Port;
        var accepted = silent.AcceptTcpClientAsync(); // accepts, never greets
        var channel = new SmtpAlertChannel(Settings(port, "alerts", Password, TimeSpan.FromMilliseconds(600)));

        var clock = Stopwatch.StartNew();
        var result = await channel.SendAsync(SampleNotifications.Critical(), SuperAdmins, CancellationToken.None);
        clock.Stop();

        var failed = Assert.IsType<DeliveryResult.Failed>(result);
        Assert.Contains("connect", failed.Reason);
        Assert.True(failed.Reason.Contains("timed out after 600 ms") || failed.Reason.Contains("Timeout", StringComparison.OrdinalIgnoreCase), failed.Reason);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(400), TimeSpan.FromSeconds(5));
        AssertNoSecret(failed.Reason);
        (await accepted).Dispose();
    }

    [Fact]
    public async Task Without_recipients_or_without_a_server_the_channel_is_not_configured()
    {
        await using var smtp = await LoopbackSmtpServer.StartAsync();
        var nobody = new AudienceRoute("admin", new[] { " ", "" }, null);

        var noRecipients = await new SmtpAlertChannel(Settings(smtp.Port)).SendAsync(SampleNotifications.Critical(), nobody, CancellationToken.None);
        var noServer = await new SmtpAlertChannel(null).SendAsync(SampleNotifications.Critical(), SuperAdmins, CancellationToken.None);

        Assert.Contains("admin", Assert.IsType<DeliveryResult.NotConfigured>(noRecipients).Reason);
        Assert.IsType<DeliveryResult.NotConfigured>(noServer);
        Assert.Empty(smtp.Received);
    }

    [Fact]
    public async Task An_invalid_recipient_is_a_failure_that_names_it_and_sends_nothing()
    {
        await using var smtp = await LoopbackSmtpServer.StartAsync();
        var route = new AudienceRoute("admin", new[] { "ops@example.test", "not an address" }, null);

        var result = await new SmtpAlertChannel(Settings(smtp.Port)).SendAsync(SampleNotifications.Critical(), route, CancellationToken.None);

        Assert.Contains("not an address", Assert.IsType<DeliveryResult.Failed>(result).Reason);
        Assert.Empty(smtp.Received);
    }

    [Fact]
    public void Subjects_say_what_happened()
    {
        Assert.Equal("[ClawKeeper] RESOLVED: 3 checks failing (heartbeat-2026-11-28T04:00:00Z)",
            SmtpAlertChannel.SubjectFor(SampleNotifications.Critical(kind: NotificationKind.Resolved)));
        Assert.Equal("[ClawKeeper] REMINDER: 3 checks failing (heartbeat-2026-11-28T04:00:00Z)",
            SmtpAlertChannel.SubjectFor(SampleNotifications.Critical(kind: NotificationKind.Reminder)));
        Assert.Equal("[ClawKeeper] WARNING: 1 check failing (heartbeat-2026-11-28T04:00:00Z)",
            SmtpAlertChannel.SubjectFor(SampleNotifications.Critical(severity: "warning", title: "", lines: SampleNotifications.ThreeFailures.Take(1).ToList())));
        Assert.Equal("[ClawKeeper] CRITICAL: no line breaks in a header (heartbeat-2026-11-28T04:00:00Z)",
            SmtpAlertChannel.SubjectFor(SampleNotifications.Critical(title: "no line breaks\r\nin a header")));
    }

    [Fact]
    public void Message_ids_are_stable_and_escape_what_a_msg_id_cannot_hold()
    {
        Assert.Equal("abc-1@clawkeeper", SmtpAlertChannel.MessageIdFor(SampleNotifications.Critical(id: "abc-1")));
        Assert.Equal("a=20b=3Cc=3E=40d@clawkeeper", SmtpAlertChannel.MessageIdFor(SampleNotifications.Critical(id: "a b<c>@d")));
        Assert.NotEqual(SmtpAlertChannel.MessageIdFor(SampleNotifications.Critical(id: "a b")), SmtpAlertChannel.MessageIdFor(SampleNotifications.Critical(id: "a=20b")));
    }

    private static void AssertNoSecret(string reason)
    {
        Assert.DoesNotContain(Password, reason);
        Assert.DoesNotContain(Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(Password)), reason);
    }
}
