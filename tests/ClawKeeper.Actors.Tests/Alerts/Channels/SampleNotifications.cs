using ClawKeeper.Actors.Alerts;

namespace ClawKeeper.Actors.Tests.Alerts.Channels;

/// <summary>Notifications as the alert decisions would hand them to a channel.</summary>
public static class SampleNotifications
{
    public const string HeartbeatId = "heartbeat-2026-11-28T04:00:00Z";

    public static readonly DateTimeOffset At = new(2026, 11, 28, 4, 0, 7, TimeSpan.Zero);

    public static readonly IReadOnlyList<NotificationLine> ThreeFailures = new[]
    {
        new NotificationLine("system_health", "api_server_responding", "fail", "HTTP 500 in 12 ms", "2xx in < 100 ms", "GET http://api.internal/health answered 500"),
        new NotificationLine("task_queue", "queue_depth", "fail", "pending 250", "< 100", "cfo 180, support-lead 70\noldest pending 2026-11-28T01:12:00Z"),
        new NotificationLine("data_integrity", "audit_log_continuous", "error", "gap after entry 4711", "no gaps", "hash chain broken at 4712"),
    };

    public static Notification Critical(string id = "heartbeat:consecutive-failures:super_admin#1", IReadOnlyList<NotificationLine>? lines = null,
        NotificationKind kind = NotificationKind.Firing, string severity = "critical", string? title = null, string? summary = null)
    {
        lines ??= ThreeFailures;
        return new Notification(
            Id: id,
            Audience: "super_admin",
            Kind: kind,
            Severity: severity,
            Title: title ?? $"{lines.Count} checks failing",
            Summary: summary ?? "Three consecutive heartbeats failed; the platform needs a person.",
            DedupKeys: new[] { "heartbeat:consecutive-failures:super_admin", "system_health.api_server_responding:admin" },
            Lines: lines,
            HeartbeatId: HeartbeatId,
            CreatedAt: At);
    }
}
