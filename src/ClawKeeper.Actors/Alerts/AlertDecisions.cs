using System.Collections.Immutable;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Platform.Alerts;

namespace ClawKeeper.Actors.Alerts;

/// <summary>
/// An open incident: raised once, reminded on an interval until acknowledged, resolved with a
/// notice. <see cref="Suppressed"/>: raised inside a silence (kept, not sent); <see cref="ResolvedAt"/>:
/// the problem went away while silenced (the resolved notice goes out when the window ends).
/// <see cref="Told"/>: the checks (<c>group/check</c>) its notifications have named so far, kept for the
/// escalation, which tells super_admin again when a problem it has not named is confirmed during its streak;
/// <c>null</c> in incidents written before it existed (then the checks its <see cref="Summary"/> names stand for it).
/// </summary>
public sealed record Incident(
    string DedupKey,
    string Audience,
    IReadOnlyList<string> Channels,
    string Severity,
    string Summary,
    IReadOnlyList<NotificationLine> Lines,
    DateTimeOffset OpenedAt,
    DateTimeOffset? LastNotifiedAt,
    bool Acknowledged,
    bool Suppressed,
    DateTimeOffset? ResolvedAt,
    IReadOnlyList<string>? Told = null);

/// <summary>A notification waiting for its channels; removed when every channel has it.</summary>
public sealed record QueuedNotification(Notification Notification, ImmutableHashSet<string> PendingChannels);

/// <summary>How alerts are routed and repeated.</summary>
public sealed record AlertPolicy(TimeSpan ReminderInterval, IReadOnlyDictionary<string, IReadOnlyList<string>> ChannelsByAudience)
{
    public static readonly AlertPolicy Unrouted = new(TimeSpan.FromHours(4), new Dictionary<string, IReadOnlyList<string>>());
}

/// <summary>The result of planning one heartbeat's alerts.</summary>
public sealed record AlertPlan(ImmutableDictionary<string, Incident> Incidents, IReadOnlyList<QueuedNotification> Notifications, IReadOnlyList<AlertReport> Alerts);

/// <summary>
/// Pure alerting: which incidents open, remind, resolve; grouped into one notification per
/// audience and kind for the whole heartbeat; silences and acknowledgements applied.
/// </summary>
public static class AlertDecisions
{
    /// <summary>The subject of a dedup key: <c>check:data_integrity/audit_log_continuous:super_admin</c> → <c>data_integrity/audit_log_continuous</c>.</summary>
    public static string Subject(string dedupKey)
    {
        var parts = dedupKey.Split(':');
        return parts.Length >= 3 ? string.Join(':', parts[1..^1]) : dedupKey;
    }

    /// <summary>A silence on a group (<c>data_integrity</c>) or a check (<c>data_integrity/audit_log_continuous</c>) or the escalation (<c>consecutive-failures</c>).</summary>
    public static bool Matches(string target, string dedupKey)
    {
        var subject = Subject(dedupKey);
        return subject == target || subject.StartsWith(target + "/", StringComparison.Ordinal) || dedupKey == target;
    }

    public static AlertPlan Plan(
        ImmutableDictionary<string, Incident> incidents,
        HeartbeatReport report,
        IReadOnlyList<AlertControl> controls,
        DateTimeOffset now,
        AlertPolicy policy)
    {
        bool Silenced(string key) => controls.Any(c => c.IsSilence && c.Until > now && Matches(c.Target, key));
        DateTimeOffset? SilencedUntil(string key) => controls.Where(c => c.IsSilence && c.Until > now && Matches(c.Target, key)).Max(c => c.Until);
        bool Acked(Incident incident) => incident.Acknowledged || controls.Any(c => c.IsAck && c.CreatedAt >= incident.OpenedAt && Matches(c.Target, incident.DedupKey));

        var stillOpen = HeartbeatDecisions.OpenAlertsAfter(incidents.Keys.ToImmutableHashSet(), report);
        var next = ImmutableDictionary.CreateBuilder<string, Incident>();
        var outgoing = new List<(NotificationKind Kind, Incident Incident)>();
        var alerts = new List<AlertReport>();

        foreach (var alert in report.Alerts)
        {
            var evidence = alert.Evidence ?? LinesFor(alert.DedupKey, report);
            var incident = new Incident(alert.DedupKey, alert.Audience, alert.Channels, alert.Severity, alert.Summary,
                evidence, now, null, false, false, null, TellsStreak(alert.DedupKey) ? Named(evidence) : null);
            if (Silenced(alert.DedupKey))
            {
                incident = incident with { Suppressed = true };
                alerts.Add(alert with { Delivery = $"silenced until {SilencedUntil(alert.DedupKey):u}: kept, not sent" });
            }
            else
            {
                incident = incident with { LastNotifiedAt = now };
                outgoing.Add((NotificationKind.Firing, incident));
                alerts.Add(alert with { Delivery = Routed(policy, incident) });
            }
            next[alert.DedupKey] = incident;
        }

        foreach (var (key, existing) in incidents)
        {
            if (next.ContainsKey(key)) continue;
            var silenced = Silenced(key);
            var incident = existing with { Acknowledged = Acked(existing) };
            if (stillOpen.Contains(key) && incident.ResolvedAt is null)
            {
                var lines = LinesFor(key, report);
                // Written before Told: its lines grew with the streak without telling anyone; what it told is what its summary names.
                if (TellsStreak(key) && incident.Told is null)
                    incident = incident with { Told = Named(existing.Lines).Where(k => existing.Summary.Contains(k, StringComparison.Ordinal)).ToList() };
                // The escalation keeps every problem of its streak: today's evidence first, the earlier checks after it.
                if (key == HeartbeatDecisions.ConsecutiveFailuresDedupKey && lines.Count > 0)
                    lines = lines.Concat(incident.Lines).DistinctBy(l => (l.Group, l.Check)).ToList();
                if (lines.Count > 0) incident = incident with { Lines = lines };
                var newlyConfirmed = TellsStreak(key)
                    ? NewlyConfirmed(incident, report, incidents.Keys.Concat(next.Keys).ToHashSet(StringComparer.Ordinal))
                    : Array.Empty<string>();
                if (incident.Suppressed && !silenced)
                {
                    incident = incident with { Suppressed = false, LastNotifiedAt = now, Told = TellsStreak(key) ? Named(incident.Lines) : null };
                    outgoing.Add((NotificationKind.Firing, incident)); // the window ended with the problem still there
                }
                else if (!incident.Suppressed && !silenced && newlyConfirmed.Count > 0)
                {
                    // A problem confirmed during an escalated streak that super_admin has not been told about (the platform
                    // database going down while the books already fail): told now, not at the next reminder hours later.
                    incident = incident with
                    {
                        Summary = EscalationUpdateSummary(report, newlyConfirmed),
                        LastNotifiedAt = now,
                        Told = incident.Told!.Concat(newlyConfirmed).Concat(Named(incident.Lines)).Distinct(StringComparer.Ordinal).ToList(),
                    };
                    outgoing.Add((NotificationKind.Firing, incident));
                }
                else if (!incident.Suppressed && !incident.Acknowledged && !silenced
                         && (incident.LastNotifiedAt is null || now - incident.LastNotifiedAt.Value >= policy.ReminderInterval))
                {
                    incident = incident with { LastNotifiedAt = now };
                    outgoing.Add((NotificationKind.Reminder, incident));
                }
                next[key] = incident;
            }
            else if (silenced)
            {
                next[key] = incident with { ResolvedAt = incident.ResolvedAt ?? now }; // resolved inside the window: tell when it ends
            }
            else
            {
                outgoing.Add((NotificationKind.Resolved, incident));
            }
        }

        var notifications = outgoing
            .GroupBy(o => (o.Incident.Audience, o.Kind))
            .OrderBy(g => g.Key.Audience, StringComparer.Ordinal).ThenBy(g => g.Key.Kind)
            .Select(g => Build(report, g.Key.Audience, g.Key.Kind, g.Select(o => o.Incident).ToList(), now, policy))
            .ToList();
        return new AlertPlan(next.ToImmutable(), notifications, alerts);
    }

    /// <summary>The escalation keeps what it has told (<see cref="Incident.Told"/>); the other incidents name one check.</summary>
    private static bool TellsStreak(string dedupKey) => dedupKey == HeartbeatDecisions.ConsecutiveFailuresDedupKey;

    private static IReadOnlyList<string> Named(IEnumerable<NotificationLine> lines) =>
        lines.Select(l => CheckStates.KeyOf(l.Group, l.Check)).Distinct(StringComparer.Ordinal).ToList();

    /// <summary>
    /// The confirmed (hard, not flapping) problems of this heartbeat that the escalation has not named yet and that no
    /// super_admin alert of their own covers (a data-integrity failure is told at once by its own alert).
    /// </summary>
    private static IReadOnlyList<string> NewlyConfirmed(Incident escalation, HeartbeatReport report, IReadOnlySet<string> openKeys)
    {
        var told = (escalation.Told ?? Array.Empty<string>()).ToHashSet(StringComparer.Ordinal);
        return report.Problems()
            .Where(p => p.Check.State == "hard" && p.Check.Flapping != true)
            .Where(p => !openKeys.Contains(HeartbeatDecisions.CheckDedupKey(p.Group, p.Check.Check)))
            .Select(p => CheckStates.KeyOf(p.Group, p.Check.Check))
            .Where(k => !told.Contains(k))
            .ToList();
    }

    private static string EscalationUpdateSummary(HeartbeatReport report, IReadOnlyList<string> newlyConfirmed)
    {
        const int named = 3;
        var names = string.Join(", ", newlyConfirmed.Take(named)) + (newlyConfirmed.Count > named ? $" and {newlyConfirmed.Count - named} more" : "");
        var failingNow = report.Problems().Select(p => CheckStates.KeyOf(p.Group, p.Check.Check));
        return $"{report.ConsecutiveFailures} consecutive failed heartbeats, newly confirmed: {names}; failing now: {string.Join(", ", failingNow)}";
    }

    private static string Routed(AlertPolicy policy, Incident incident)
    {
        var channels = ChannelsFor(policy, incident.Audience, incident.Channels);
        return channels.Count == 0
            ? $"recorded: no channel configured for {incident.Audience}"
            : $"queued: {string.Join("+", channels)}";
    }

    private static IReadOnlyList<string> ChannelsFor(AlertPolicy policy, string audience, IEnumerable<string> wanted) =>
        policy.ChannelsByAudience.TryGetValue(audience, out var configured)
            ? wanted.Where(configured.Contains).Distinct().OrderBy(c => c, StringComparer.Ordinal).ToList()
            : Array.Empty<string>();

    private static QueuedNotification Build(HeartbeatReport report, string audience, NotificationKind kind, IReadOnlyList<Incident> incidents, DateTimeOffset now, AlertPolicy policy)
    {
        var severity = kind == NotificationKind.Resolved ? "resolved" : incidents.Any(i => i.Severity == "critical") ? "critical" : "warning";
        var count = incidents.Count;
        var title = kind switch
        {
            // The channels prefix the kind and severity (CRITICAL:, REMINDER:, RESOLVED:).
            NotificationKind.Firing => count == 1 ? incidents[0].Summary.Split(';', '.')[0] : $"{count} alerts for {audience}",
            NotificationKind.Reminder => $"{count} alert{(count == 1 ? "" : "s")} still open for {audience}",
            _ => $"{count} alert{(count == 1 ? "" : "s")} cleared for {audience}",
        };
        var summary = string.Join("\n", incidents.Select(i => kind == NotificationKind.Resolved
            ? $"{AlertDecisions.Subject(i.DedupKey)}: resolved (open since {i.OpenedAt:u})"
            : i.Summary));
        var lines = incidents.SelectMany(i => i.Lines).DistinctBy(l => (l.Group, l.Check)).ToList();
        var notification = new Notification(
            $"{report.Id}:{audience}:{kind.ToString().ToLowerInvariant()}",
            audience, kind, severity, title, summary,
            incidents.Select(i => i.DedupKey).ToList(),
            kind == NotificationKind.Resolved ? incidents.SelectMany(i => RecoveredLinesFor(i.DedupKey, report)).DistinctBy(l => (l.Group, l.Check)).ToList() : lines,
            report.Id, now);
        var channels = ChannelsFor(policy, audience, incidents.SelectMany(i => i.Channels));
        return new QueuedNotification(notification, channels.ToImmutableHashSet());
    }

    /// <summary>What a resolved incident's check shows now (none for the escalation or a breaker: the summary says what cleared).</summary>
    private static IEnumerable<NotificationLine> RecoveredLinesFor(string dedupKey, HeartbeatReport report)
    {
        var subject = Subject(dedupKey);
        return report.AllChecks()
            .Where(c => subject == $"{c.Group}/{c.Check.Check}")
            .Select(c => new NotificationLine(c.Group, c.Check.Check, c.Check.Status.ToWire(), c.Check.Observed, c.Check.Threshold, c.Check.Detail));
    }

    /// <summary>The evidence of an incident: its check, or every problem of the heartbeat for the escalation.</summary>
    private static IReadOnlyList<NotificationLine> LinesFor(string dedupKey, HeartbeatReport report)
    {
        var subject = Subject(dedupKey);
        var checks = report.AllChecks()
            .Where(c => subject == $"{c.Group}/{c.Check.Check}" || (subject == "consecutive-failures" && c.Check.Status.IsProblem()))
            .Where(c => c.Check.Status.IsProblem());
        return checks.Select(c => new NotificationLine(c.Group, c.Check.Check, c.Check.Status.ToWire(), c.Check.Observed, c.Check.Threshold, c.Check.Detail)).ToList();
    }
}
