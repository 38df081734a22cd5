namespace ClawKeeper.Actors.Alerts;

/// <summary>Why a notification is sent.</summary>
public enum NotificationKind
{
    Firing,
    Reminder,
    Resolved,
}

/// <summary>One failing (or recovered) check in a notification: what a person needs to act.</summary>
public sealed record NotificationLine(string Group, string Check, string Status, string Observed, string Threshold, string Detail);

/// <summary>
/// One message to one audience: the alerts of one heartbeat are grouped into one notification per
/// audience (five failures = one message per channel, not five). <see cref="Id"/> is stable: it is
/// the dedup key of the delivery (the e-mail Message-Id, the log key of the Discord post).
/// </summary>
public sealed record Notification(
    string Id,
    string Audience,
    NotificationKind Kind,
    string Severity,
    string Title,
    string Summary,
    IReadOnlyList<string> DedupKeys,
    IReadOnlyList<NotificationLine> Lines,
    string? HeartbeatId,
    DateTimeOffset CreatedAt);

/// <summary>Where an audience is told: e-mail recipients and a Discord webhook (a secret: never logged).</summary>
public sealed record AudienceRoute(string Audience, IReadOnlyList<string> EmailTo, Uri? DiscordWebhook);

/// <summary>What a channel made of one delivery attempt.</summary>
public abstract record DeliveryResult
{
    /// <summary>Handed off (SMTP accepted it; Discord answered 2xx).</summary>
    public sealed record Delivered : DeliveryResult;

    /// <summary>The channel said when to try again (Discord 429 retry_after).</summary>
    public sealed record RetryAfter(TimeSpan Delay, string Reason) : DeliveryResult;

    /// <summary>Failed; retried with exponential backoff.</summary>
    public sealed record Failed(string Reason) : DeliveryResult;

    /// <summary>Nothing to send on this channel for this audience (not configured).</summary>
    public sealed record NotConfigured(string Reason) : DeliveryResult;
}

/// <summary>A delivery channel (<c>email</c>, <c>discord</c>). Never throws: every outcome is a <see cref="DeliveryResult"/>.</summary>
public interface IAlertChannel
{
    string Name { get; }

    Task<DeliveryResult> SendAsync(Notification notification, AudienceRoute route, CancellationToken cancellationToken);
}
