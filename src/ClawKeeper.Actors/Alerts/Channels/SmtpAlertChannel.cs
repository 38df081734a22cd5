using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;

namespace ClawKeeper.Actors.Alerts.Channels;

/// <summary>
/// The <c>email</c> channel: one message per notification to every <see cref="AudienceRoute.EmailTo"/> recipient,
/// sent with MailKit through the configured SMTP server. The Message-Id is derived from
/// <see cref="Notification.Id"/> (<c>&lt;{id}@clawkeeper&gt;</c>), so an at-least-once redelivery carries the same
/// id and a receiver can drop the duplicate. Never throws and never puts the SMTP password in a result.
/// </summary>
public sealed class SmtpAlertChannel : IAlertChannel
{
    public const string ChannelName = "email";

    /// <summary>The domain part of every Message-Id.</summary>
    public const string MessageIdDomain = "clawkeeper";

    private static readonly TimeSpan QuitTimeout = TimeSpan.FromSeconds(2);
    private const int MaxReasonLength = 600;

    private readonly SmtpSettings? _settings;

    /// <param name="settings">The SMTP server; null = e-mail is not configured (every send is <see cref="DeliveryResult.NotConfigured"/>).</param>
    public SmtpAlertChannel(SmtpSettings? settings) => _settings = settings;

    public string Name => ChannelName;

    public async Task<DeliveryResult> SendAsync(Notification notification, AudienceRoute route, CancellationToken cancellationToken)
    {
        try
        {
            ArgumentNullException.ThrowIfNull(notification);
            ArgumentNullException.ThrowIfNull(route);
            if (_settings is null)
                return new DeliveryResult.NotConfigured("e-mail: no SMTP server configured");
            var recipients = route.EmailTo.Where(a => !string.IsNullOrWhiteSpace(a)).Select(a => a.Trim())
                .Distinct(StringComparer.OrdinalIgnoreCase).ToList();
            if (recipients.Count == 0)
                return new DeliveryResult.NotConfigured($"e-mail: no recipients for audience '{route.Audience}'");

            var invalid = recipients.Where(a => !SmtpSettings.IsMailbox(a)).ToList();
            if (invalid.Count > 0)
                return new DeliveryResult.Failed($"e-mail: invalid recipient address(es) for audience '{route.Audience}': {string.Join(", ", invalid)}");
            if (!SmtpSettings.IsMailbox(_settings.From))
                return new DeliveryResult.Failed($"e-mail: invalid sender address '{_settings.From}'");

            var message = BuildMessage(notification, route, _settings.From, recipients);
            return await DeliverAsync(_settings, message, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // The contract: never throw. Anything unexpected is a failed attempt (retried by the outbox).
            return new DeliveryResult.Failed(Scrub($"e-mail: {Describe(e)}", _settings));
        }
    }

    /// <summary>The Message-Id (without angle brackets) of a notification: <c>{id}@clawkeeper</c>.</summary>
    public static string MessageIdFor(Notification notification) => $"{MessageIdLeft(notification.Id)}@{MessageIdDomain}";

    /// <summary><c>[ClawKeeper] CRITICAL: 3 checks failing (heartbeat-…)</c></summary>
    public static string SubjectFor(Notification notification)
    {
        var subject = $"[ClawKeeper] {NotificationText.Label(notification)}: {NotificationText.Title(notification)}";
        var heartbeat = NotificationText.OneLine(notification.HeartbeatId);
        if (heartbeat.Length > 0) subject += $" ({heartbeat})";
        return NotificationText.Truncate(subject, 250);
    }

    /// <summary>The plain-text body: summary, audience, heartbeat, one block per line, the dedup keys.</summary>
    public static string BodyFor(Notification notification, AudienceRoute route)
    {
        var b = new StringBuilder();
        b.Append(NotificationText.Label(notification)).Append(": ").AppendLine(NotificationText.Title(notification));
        if (!string.IsNullOrWhiteSpace(notification.Summary))
        {
            b.AppendLine();
            b.AppendLine(notification.Summary.Trim());
        }
        b.AppendLine();
        b.Append("Audience:   ").AppendLine(route.Audience);
        b.Append("Severity:   ").AppendLine(NotificationText.OneLine(notification.Severity));
        b.Append("Kind:       ").AppendLine(notification.Kind.ToString().ToLowerInvariant());
        b.Append("Heartbeat:  ").AppendLine(string.IsNullOrWhiteSpace(notification.HeartbeatId) ? "(none)" : NotificationText.OneLine(notification.HeartbeatId));
        b.Append("Raised at:  ").AppendLine(notification.CreatedAt.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
        b.AppendLine();
        var resolved = notification.Kind == NotificationKind.Resolved;
        // A resolved notice without check lines (the escalation, a breaker) is said by its summary alone.
        if (!resolved || notification.Lines.Count > 0)
            b.Append(resolved ? "Recovered checks, as they are now" : "Checks").Append(" (").Append(notification.Lines.Count.ToString(CultureInfo.InvariantCulture)).AppendLine("):");
        if (notification.Lines.Count == 0 && !resolved) b.AppendLine("  (none)");
        foreach (var line in notification.Lines)
        {
            b.Append("  - ").AppendLine(NotificationText.LineName(line));
            var measured = NotificationText.ObservedVsThreshold(line);
            if (measured.Length > 0) b.Append("      ").AppendLine(measured);
            if (!string.IsNullOrWhiteSpace(line.Detail))
            {
                var first = true;
                foreach (var detailLine in line.Detail.Trim().ReplaceLineEndings("\n").Split('\n'))
                {
                    b.Append(first ? "      detail: " : "              ").AppendLine(detailLine.TrimEnd());
                    first = false;
                }
            }
        }
        b.AppendLine();
        b.AppendLine("Dedup keys:");
        if (notification.DedupKeys.Count == 0) b.AppendLine("  (none)");
        foreach (var key in notification.DedupKeys) b.Append("  - ").AppendLine(NotificationText.OneLine(key));
        b.AppendLine();
        b.Append("Notification: ").AppendLine(NotificationText.OneLine(notification.Id));
        b.AppendLine("-- ");
        b.AppendLine("Sent by the ClawKeeper heartbeat. A redelivery of this notification carries the same Message-Id.");
        return b.ToString();
    }

    /// <summary>The MIME message for a notification (public for the outbox and the specs).</summary>
    public static MimeMessage BuildMessage(Notification notification, AudienceRoute route, string from, IEnumerable<string> recipients)
    {
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse(from));
        foreach (var to in recipients) message.To.Add(MailboxAddress.Parse(to));
        message.Subject = SubjectFor(notification);
        message.MessageId = MessageIdFor(notification);
        message.Date = notification.CreatedAt;
        message.Headers.Add("Auto-Submitted", "auto-generated");
        message.Headers.Add("X-ClawKeeper-Notification", NotificationText.OneLine(notification.Id));
        message.Headers.Add("X-ClawKeeper-Audience", NotificationText.OneLine(route.Audience));
        message.Headers.Add("X-ClawKeeper-Kind", notification.Kind.ToString().ToLowerInvariant());
        if (!string.IsNullOrWhiteSpace(notification.HeartbeatId))
            message.Headers.Add("X-ClawKeeper-Heartbeat", NotificationText.OneLine(notification.HeartbeatId));
        var body = new TextPart("plain");
        body.SetText(Encoding.UTF8, BodyFor(notification, route));
        message.Body = body;
        return message;
    }

    private static async Task<DeliveryResult> DeliverAsync(SmtpSettings settings, MimeMessage message, CancellationToken cancellationToken)
    {
        var where = $"smtp {settings.Host}:{settings.Port.ToString(CultureInfo.InvariantCulture)}";
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(settings.Timeout);
        using var client = new SmtpClient();
        client.Timeout = (int)Math.Clamp(settings.Timeout.TotalMilliseconds, 1, int.MaxValue);
        var stage = "connect";
        try
        {
            await client.ConnectAsync(settings.Host, settings.Port, Options(settings.Tls), deadline.Token).ConfigureAwait(false);
            if (settings.Username is not null)
            {
                stage = "authenticate";
                await client.AuthenticateAsync(new NetworkCredential(settings.Username, settings.Password ?? ""), deadline.Token).ConfigureAwait(false);
            }
            stage = "send";
            await client.SendAsync(message, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new DeliveryResult.Failed($"{where}: {stage} timed out after {Describe(settings.Timeout)}");
        }
        catch (OperationCanceledException)
        {
            return new DeliveryResult.Failed($"{where}: {stage} cancelled");
        }
        catch (Exception e)
        {
            return new DeliveryResult.Failed(Scrub($"{where}: {stage} failed: {Describe(e)}", settings));
        }

        // The server accepted the message: a failing QUIT must not turn it into a retry (a duplicate).
        try
        {
            using var quit = new CancellationTokenSource(QuitTimeout);
            await client.DisconnectAsync(true, quit.Token).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // ignored: handed off already
        }
        return new DeliveryResult.Delivered();
    }

    private static SecureSocketOptions Options(SmtpTlsMode mode) => mode switch
    {
        SmtpTlsMode.None => SecureSocketOptions.None,
        SmtpTlsMode.SslOnConnect => SecureSocketOptions.SslOnConnect,
        _ => SecureSocketOptions.StartTls,
    };

    private static string Describe(Exception e)
    {
        var text = e switch
        {
            SmtpCommandException c => $"SMTP {(int)c.StatusCode} {c.Message}",
            SmtpProtocolException p => $"protocol error: {p.Message}",
            AuthenticationException a => $"authentication rejected: {a.Message}",
            SocketException s => $"{s.SocketErrorCode}: {s.Message}",
            SslHandshakeException h => $"TLS handshake failed: {h.InnerException?.Message ?? h.Message}",
            ServiceNotConnectedException or ServiceNotAuthenticatedException => e.Message,
            _ when e.InnerException is { } inner => $"{e.GetType().Name}: {e.Message} ({inner.GetType().Name}: {inner.Message})",
            _ => $"{e.GetType().Name}: {e.Message}",
        };
        return NotificationText.OneLine(text);
    }

    private static string Describe(TimeSpan span) =>
        span.TotalMilliseconds < 1000
            ? $"{span.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture)} ms"
            : $"{span.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s";

    /// <summary>Removes the password (plain and as it travels in AUTH PLAIN/LOGIN) from a reason, and bounds its length.</summary>
    private static string Scrub(string reason, SmtpSettings? settings)
    {
        if (settings?.Password is { Length: > 0 } password)
        {
            var user = settings.Username ?? "";
            foreach (var secret in new[]
                     {
                         password,
                         Convert.ToBase64String(Encoding.UTF8.GetBytes(password)),
                         Convert.ToBase64String(Encoding.UTF8.GetBytes($"\0{user}\0{password}")),
                         Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}\0{user}\0{password}")),
                     })
                reason = reason.Replace(secret, "***", StringComparison.Ordinal);
        }
        return NotificationText.Truncate(reason, MaxReasonLength);
    }

    /// <summary>
    /// The id-left of the Message-Id: the notification id as is when it is plain printable ASCII; otherwise every
    /// character that may not appear in a msg-id (space, &lt; &gt; @ " \ ( ) , ; [ ], non-ASCII, and '=' itself) is
    /// written as =XX (UTF-8 hex), which keeps distinct ids distinct and the same id stable.
    /// </summary>
    private static string MessageIdLeft(string id)
    {
        if (string.IsNullOrEmpty(id)) return "notification";
        var b = new StringBuilder(id.Length);
        Span<byte> bytes = stackalloc byte[4];
        foreach (var rune in id.EnumerateRunes())
        {
            if (rune.IsAscii && rune.Value > 32 && rune.Value < 127 && "<>@\"\\(),;[]=".IndexOf((char)rune.Value) < 0)
            {
                b.Append((char)rune.Value);
                continue;
            }
            var count = rune.EncodeToUtf8(bytes);
            for (var i = 0; i < count; i++) b.Append('=').Append(bytes[i].ToString("X2", CultureInfo.InvariantCulture));
        }
        return b.ToString();
    }
}
