using System.Text.Json;
using System.Text.Json.Serialization;
using ClawKeeper.Actors.Checks;

namespace ClawKeeper.Actors.Heartbeat;

[JsonConverter(typeof(JsonStringEnumConverter<HeartbeatStatus>))]
public enum HeartbeatStatus
{
    [JsonStringEnumMemberName("pass")] Pass,
    [JsonStringEnumMemberName("fail")] Fail,
}

/// <summary>The report of one heartbeat: the JSON contract of ARCHITECTURE.md §3.</summary>
public sealed record HeartbeatReport(
    string Id,
    DateTimeOffset StartedAt,
    DateTimeOffset CompletedAt,
    HeartbeatStatus Status,
    int ConsecutiveFailures,
    WriteBlockReport WriteBlock,
    IReadOnlyList<GroupReport> Groups,
    IReadOnlyList<ActionReport> Actions,
    IReadOnlyList<AlertReport> Alerts,
    bool DryRun = false,
    IReadOnlyList<IncidentReport>? Incidents = null,
    IReadOnlyList<string>? OpenBreakers = null,
    IReadOnlyList<string>? Rechecked = null)
{
    /// <summary>A retry round: only <see cref="Rechecked"/> (<c>group/check</c>) ran; the other checks are carried from the previous report.</summary>
    public bool? Retry => Rechecked is null ? null : true;

    public long DurationMs => (long)(CompletedAt - StartedAt).TotalMilliseconds;

    public IEnumerable<(string Group, CheckResult Check)> AllChecks() =>
        Groups.SelectMany(g => g.Checks.Select(c => (g.Group, c)));

    public IEnumerable<(string Group, CheckResult Check)> Problems() =>
        AllChecks().Where(x => x.Check.Status.IsProblem());

    public string ToJson(bool indented = false) =>
        JsonSerializer.Serialize(this, indented ? HeartbeatJson.Indented : HeartbeatJson.Compact);
}

public sealed record WriteBlockReport(bool Active, string? Reason = null, DateTimeOffset? Since = null, long? BlockId = null);

public sealed record GroupReport(string Group, CheckStatus Status, IReadOnlyList<CheckResult> Checks);

/// <summary>An action the heartbeat took and how it went; <see cref="Recheck"/>: what a re-check right after it found.</summary>
public sealed record ActionReport(string Action, string Detail, string Outcome)
{
    public string? Recheck { get; init; }
}

/// <summary>An alert the heartbeat raised (audience, channels, stable dedup key) and where it stands.</summary>
public sealed record AlertReport(string Audience, IReadOnlyList<string> Channels, string DedupKey, string Severity, string Summary, string Delivery)
{
    /// <summary>
    /// The evidence the alert's notification carries when it is not just the report's own failing checks (the
    /// escalation: every check that failed in the streak). Decided with the round, used when the alert is planned;
    /// not part of the report JSON (the incident keeps the lines).
    /// </summary>
    [JsonIgnore]
    public IReadOnlyList<Alerts.NotificationLine>? Evidence { get; init; }
}

/// <summary>An incident still open after the heartbeat.</summary>
public sealed record IncidentReport(string DedupKey, string Audience, DateTimeOffset Since, bool Acknowledged, bool Silenced, DateTimeOffset? LastNotifiedAt);

public static class HeartbeatJson
{
    public static readonly JsonSerializerOptions Compact = Create(indented: false);
    public static readonly JsonSerializerOptions Indented = Create(indented: true);

    private static JsonSerializerOptions Create(bool indented) => new(JsonSerializerDefaults.Web)
    {
        WriteIndented = indented,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };
}
