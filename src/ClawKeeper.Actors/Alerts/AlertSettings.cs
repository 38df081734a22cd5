using ClawKeeper.Actors.Alerts.Channels;
using ClawKeeper.Actors.Settings;

namespace ClawKeeper.Actors.Alerts;

/// <summary><c>clawkeeper.alerts</c>: channels, routing by audience, reminders and retries.</summary>
public sealed record AlertSettings(
    SmtpSettings? Smtp,
    IReadOnlyDictionary<string, AudienceRoute> Audiences,
    TimeSpan ReminderInterval,
    Uri? StatusPageUrl,
    TimeSpan MinBackoff,
    TimeSpan MaxBackoff)
{
    public static readonly IReadOnlyList<string> KnownAudiences = new[] { "super_admin", "admin" };

    public static AlertSettings Read(SettingsReader r, string prefix)
    {
        var smtp = SmtpSettings.Read(r, $"{prefix}.smtp");
        var audiences = new Dictionary<string, AudienceRoute>(StringComparer.Ordinal);
        foreach (var audience in KnownAudiences)
        {
            var key = $"{prefix}.audiences.{audience}";
            var email = r.StringList($"{key}.email").Select(e => e.Trim()).Where(e => e.Length > 0).ToList();
            foreach (var address in email.Where(a => !SmtpSettings.IsMailbox(a)))
                r.AddError($"{key}.email", $"'{address}' is not an e-mail address");
            if (email.Count > 0 && smtp is null)
                r.AddError($"{key}.email", $"recipients are set but no SMTP server is configured ({prefix}.smtp.host)");
            var webhookText = r.String($"{key}.discord-webhook").Trim();
            Uri? webhook = null;
            if (webhookText.Length > 0)
            {
                if (Uri.TryCreate(webhookText, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttps || uri.Scheme == Uri.UriSchemeHttp))
                    webhook = uri;
                else
                    r.AddError($"{key}.discord-webhook", "must be an absolute http(s) URL (value not shown: it holds a secret)");
            }
            audiences[audience] = new AudienceRoute(audience, email, webhook);
        }
        return new AlertSettings(
            smtp,
            audiences,
            r.Duration($"{prefix}.reminder-interval", TimeSpan.FromHours(4), min: TimeSpan.FromMinutes(1)),
            r.AbsoluteHttpUrl($"{prefix}.status-page-url"),
            r.Duration($"{prefix}.retry.min-backoff", TimeSpan.FromSeconds(1), min: TimeSpan.FromMilliseconds(10)),
            r.Duration($"{prefix}.retry.max-backoff", TimeSpan.FromMinutes(5), min: TimeSpan.FromMilliseconds(10)));
    }

    /// <summary>Which channels each audience can be reached on (routing for the pure decisions).</summary>
    public AlertPolicy Policy => new(ReminderInterval, Audiences.ToDictionary(
        a => a.Key,
        a => (IReadOnlyList<string>)new[]
        {
            a.Value.EmailTo.Count > 0 && Smtp is not null ? "email" : null,
            a.Value.DiscordWebhook is not null ? "discord" : null,
        }.OfType<string>().ToList()));

    public AlertDelivery Delivery(HttpClient http) => new(
        Policy,
        new IAlertChannel[] { new SmtpAlertChannel(Smtp), new DiscordAlertChannel(http, StatusPageUrl) },
        Audiences,
        MinBackoff,
        MaxBackoff);
}
