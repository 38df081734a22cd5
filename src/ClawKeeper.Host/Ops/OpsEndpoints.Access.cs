using Akka.Event;
using System.Globalization;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;

namespace ClawKeeper.Host.Ops;

/// <summary>Who may mute what (pure).</summary>
public static class AlertControlRules
{
    /// <summary>The groups a silence may name.</summary>
    public static readonly IReadOnlyList<string> Groups =
        [CheckGroups.SystemHealth, CheckGroups.TaskQueue, CheckGroups.DataIntegrity, CheckGroups.SecurityPosture, CheckGroups.IntegrationHealth];

    /// <summary>The subject of the escalation's dedup key (<see cref="HeartbeatDecisions.ConsecutiveFailuresDedupKey"/>).</summary>
    public const string EscalationSubject = "consecutive-failures";

    /// <summary>
    /// True when a silence or acknowledgement of <paramref name="target"/> would match a data-integrity
    /// alert or the escalation (as <c>AlertDecisions.Matches</c> matches): the books' owner, super_admin,
    /// must do it. A target is a group, <c>group/check</c>, a subject, or a whole dedup key.
    /// </summary>
    public static bool NeedsSuperAdmin(string target)
    {
        static bool Protected(string subject) =>
            subject == CheckGroups.DataIntegrity
            || subject.StartsWith(CheckGroups.DataIntegrity + "/", StringComparison.Ordinal)
            || subject == EscalationSubject;

        var trimmed = target.Trim();
        return Protected(trimmed)
               || Protected(Actors.Alerts.AlertDecisions.Subject(trimmed))
               || trimmed == HeartbeatDecisions.ConsecutiveFailuresDedupKey;
    }

    /// <summary>
    /// The end of a silence from <c>until</c> (ISO 8601) or <c>for</c> (seconds): in the future and at
    /// most <paramref name="max"/> ahead; else the error, naming the parameter.
    /// </summary>
    public static (DateTimeOffset? Until, string? Error) Window(string? until, string? seconds, DateTimeOffset now, TimeSpan max)
    {
        var limit = $"at most {Describe(max)} ahead (clawkeeper.alerts.max-silence)";
        if (until is not null && seconds is not null)
            return (null, "give either until=<ISO time> or for=<seconds>, not both");
        if (until is not null)
        {
            if (!DateTimeOffset.TryParse(until, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var end))
                return (null, $"until must be an ISO 8601 time such as 2026-12-06T18:00:00Z; got '{Shorten(until)}'");
            if (end <= now) return (null, $"until must be in the future; got {end:u}");
            if (end - now > max) return (null, $"until must be {limit}; got {end:u}");
            return (end, null);
        }
        if (seconds is not null)
        {
            if (!double.TryParse(seconds, NumberStyles.Float, CultureInfo.InvariantCulture, out var s) || !double.IsFinite(s))
                return (null, $"for must be a number of seconds; got '{Shorten(seconds)}'");
            if (s <= 0) return (null, $"for must be more than 0 seconds; got '{Shorten(seconds)}'");
            if (s > max.TotalSeconds) return (null, $"for must be {limit}, i.e. at most {max.TotalSeconds.ToString("0", CultureInfo.InvariantCulture)} seconds; got '{Shorten(seconds)}'");
            return (now.AddSeconds(s), null);
        }
        return (null, "give until=<ISO time in the future> or for=<seconds>");
    }

    private static string Shorten(string text) => text.Length > 40 ? text[..40] + "..." : text;

    private static string Describe(TimeSpan span) =>
        span.TotalDays >= 1 && span.TotalDays == Math.Floor(span.TotalDays) ? $"{span.TotalDays:0}d"
        : span.TotalHours >= 1 && span.TotalHours == Math.Floor(span.TotalHours) ? $"{span.TotalHours:0}h"
        : $"{span.TotalMinutes:0.#}m";
}

/// <summary>The read gate of the GET routes and the routes that mute alerts.</summary>
public sealed partial class OpsEndpoints
{
    private const string ReadChallenge = "Bearer realm=\"clawkeeper-ops-read\", Basic realm=\"clawkeeper-ops-read\", charset=\"UTF-8\"";

    /// <summary>
    /// A GET route with the read gate: with <c>clawkeeper.ops.read-token-sha256</c> set, the read token
    /// (or the super_admin credential) is required and details are shown; without it, everyone reads,
    /// details only with <c>expose-tenant-details = on</c>.
    /// </summary>
    private Func<OpsRequest, CancellationToken, Task<OpsResponse>> Readable(Func<OpsRequest, CancellationToken, Task<OpsResponse>> handler) =>
        (request, cancellationToken) =>
        {
            if (!_readAuthorization.Configured)
                return handler(request with { Details = _settings.ExposeTenantDetails }, cancellationToken);
            var token = OpsAuthorization.BearerOrBasicToken(request.Authorization);
            if (_readAuthorization.Matches(token) || (token is not null && Cli.SuperAdminCredential.Refusal(_writes.Security, token) is null))
                return handler(request with { Details = true }, cancellationToken);
            var why = token is null ? "no read token presented" : "the read token is not valid";
            _log.Warning("ops: refused {0} {1} from {2}: {3}", request.Method, request.Path, request.Remote, why);
            return Task.FromResult(OpsResponse.Error(401, $"this node requires the ops read token for {request.Path} (Authorization: Bearer <read token>, or Basic with it as password): {why}") with
            {
                Headers = new Dictionary<string, string> { ["WWW-Authenticate"] = ReadChallenge },
            });
        };

    /// <summary>
    /// <c>/alerts/ack</c> and <c>/alerts/silence</c>: the ops token or the super_admin credential, and
    /// only super_admin mutes what matches data integrity or the escalation (403 for the ops token).
    /// Who did it is the credential's holder, never a parameter.
    /// </summary>
    private Func<OpsRequest, CancellationToken, Task<OpsResponse>> AlertControl(Func<OpsRequest, CancellationToken, Task<OpsResponse>> handler) =>
        async (request, cancellationToken) =>
        {
            var (token, problem) = OpsAuthorization.BearerToken(request.Authorization);
            string principal;
            if (token is not null && _writes.Security.SuperAdminConfigured && Cli.SuperAdminCredential.Refusal(_writes.Security, token) is null)
            {
                principal = "super_admin";
            }
            else if (_authorization.WhyRefused(request.Authorization) is { } reason)
            {
                _log.Warning("ops: refused {0} {1} from {2}: {3}", request.Method, request.Path, request.Remote, token is null ? problem! : reason);
                return OpsResponse.Error(401, $"a valid ops token or the super_admin credential is required (Authorization: Bearer <token>): {reason}") with
                {
                    Headers = new Dictionary<string, string> { ["WWW-Authenticate"] = "Bearer realm=\"clawkeeper-ops\"" },
                };
            }
            else
            {
                principal = "ops";
            }
            return await handler(request with { Principal = principal }, cancellationToken).ConfigureAwait(false);
        };

    /// <summary>403 when <paramref name="target"/> belongs to the books' owner and the caller is not super_admin; null when allowed.</summary>
    private async Task<OpsResponse?> RefuseUnlessOwnerAsync(OpsRequest request, string target, CancellationToken cancellationToken)
    {
        if (!AlertControlRules.NeedsSuperAdmin(target) || request.Principal == "super_admin") return null;
        var why = $"{Shorten(target)} matches data-integrity alerts or the escalation: only super_admin may mute the books";
        _log.Warning("ops: refused {0} {1} from {2} ({3}): {4}", request.Method, request.Path, request.Remote, request.Principal, why);
        await WriteUnblock.RecordRefusedAttemptAsync(_platform, "ops:" + request.Path.Trim('/').Replace('/', '-'), why, $"{request.Principal}@{request.Remote}", cancellationToken).ConfigureAwait(false);
        return OpsResponse.Error(403, $"{why}: present the super_admin credential (Authorization: Bearer <super_admin token>); the ops token does not suffice");
    }

    private static OpsResponse? RefuseBy(OpsRequest request) =>
        request.Query.ContainsKey("by")
            ? OpsResponse.Error(400, "by is not accepted: who did it is taken from the credential (ops or super_admin)")
            : null;

    /// <summary><c>POST /alerts/ack?incident=KEY&amp;reason=TEXT</c>: no more reminders for that incident until it resolves.</summary>
    public async Task<OpsResponse> AcknowledgeAsync(OpsRequest request, CancellationToken cancellationToken)
    {
        if (RefuseBy(request) is { } by) return by;
        var incident = Parameter(request, "incident");
        if (incident is null) return OpsResponse.Error(400, "incident is required: give ?incident=<dedup key or group/check> and &reason=<why>");
        var reason = Parameter(request, "reason");
        if (reason is null) return OpsResponse.Error(400, "reason is required: give &reason=<why> (recorded with the acknowledgement)");
        if (await RefuseUnlessOwnerAsync(request, incident, cancellationToken).ConfigureAwait(false) is { } refused) return refused;
        var createdBy = request.Principal ?? "ops";
        var id = await _alertControls.AddAsync("ack", incident, null, createdBy, reason, cancellationToken).ConfigureAwait(false);
        _log.Info("ops: acknowledgement #{0} of {1} by {2} from {3}", id, incident, createdBy, request.Remote);
        return OpsResponse.Json(201, new { control = id, kind = "ack", target = incident, by = createdBy, detail = "applied by the next heartbeat" });
    }

    /// <summary>
    /// <c>POST /alerts/silence?target=GROUP[/CHECK]&amp;until=ISO|for=SECONDS&amp;reason=TEXT</c>: alerts kept,
    /// not sent, until the end (at most <c>clawkeeper.alerts.max-silence</c> ahead).
    /// </summary>
    public async Task<OpsResponse> SilenceAsync(OpsRequest request, CancellationToken cancellationToken)
    {
        if (RefuseBy(request) is { } by) return by;
        var target = Parameter(request, "target");
        if (target is null || !AlertControlRules.Groups.Contains(target.Split('/')[0]))
            return OpsResponse.Error(400, $"target must be a group or group/check; groups: {string.Join(", ", AlertControlRules.Groups)}; got '{Shorten(target ?? "")}'");
        var reason = Parameter(request, "reason");
        if (reason is null) return OpsResponse.Error(400, "reason is required: give &reason=<why> (recorded with the silence)");
        var (until, problem) = AlertControlRules.Window(Parameter(request, "until"), Parameter(request, "for"), DateTimeOffset.UtcNow, _settings.MaxSilence);
        if (problem is not null) return OpsResponse.Error(400, problem);
        if (await RefuseUnlessOwnerAsync(request, target, cancellationToken).ConfigureAwait(false) is { } refused) return refused;
        var createdBy = request.Principal ?? "ops";
        var id = await _alertControls.AddAsync("silence", target, until, createdBy, reason, cancellationToken).ConfigureAwait(false);
        _log.Info("ops: silence #{0} of {1} until {2} by {3} from {4}", id, target, until!, createdBy, request.Remote);
        return OpsResponse.Json(201, new { control = id, kind = "silence", target, until, by = createdBy, detail = "applied by the next heartbeat" });
    }
}
