using ClawKeeper.Actors.Alerts;
using ClawKeeper.Actors.Alerts.Channels;
using ClawKeeper.Actors.Settings;

namespace ClawKeeper.Actors.Tests.Support;

/// <summary>Alert delivery for specs: super_admin by e-mail (an SMTP server on 127.0.0.1) and Discord (a webhook stand-in).</summary>
public static class LoopbackAlertDelivery
{
    private static readonly HttpClient Http = new();

    public static AlertDelivery ToSuperAdmin(int smtpPort, Uri webhook) => new(
        new AlertPolicy(TimeSpan.FromHours(4), new Dictionary<string, IReadOnlyList<string>> { ["super_admin"] = new[] { "email", "discord" } }),
        new IAlertChannel[]
        {
            new SmtpAlertChannel(new SmtpSettings("127.0.0.1", smtpPort, SmtpTlsMode.None, null, null, "clawkeeper@localhost", TimeSpan.FromSeconds(5))),
            new DiscordAlertChannel(Http),
        },
        new Dictionary<string, AudienceRoute> { ["super_admin"] = new("super_admin", new[] { "root@bookkeeping.test" }, webhook) },
        TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(1));
}
