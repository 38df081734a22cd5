using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using ClawKeeper.Actors.Heartbeat;

namespace ClawKeeper.Host.Ops;

/// <summary>Bearer-token check of the mutating routes: SHA-256 of the presented token, compared in constant time.</summary>
public sealed class OpsAuthorization
{
    private readonly byte[]? _expected;

    public OpsAuthorization(string tokenSha256) =>
        _expected = tokenSha256.Length == 64 ? Convert.FromHexString(tokenSha256) : null;

    /// <summary>Null when <paramref name="authorizationHeader"/> carries the ops token; else why not (never containing the token).</summary>
    public string? WhyRefused(string? authorizationHeader)
    {
        if (_expected is null) return "no ops token is configured (clawkeeper.ops.token-sha256 is empty), so mutating routes are disabled";
        if (string.IsNullOrWhiteSpace(authorizationHeader)) return "no Authorization header";
        const string scheme = "Bearer ";
        if (!authorizationHeader.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return "the Authorization header is not a Bearer token";
        var token = authorizationHeader[scheme.Length..].Trim();
        if (token.Length == 0) return "the bearer token is empty";
        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(token));
        return CryptographicOperations.FixedTimeEquals(presented, _expected) ? null : "the bearer token is not valid";
    }
}

/// <summary>The routes of the ops surface as plain functions of <see cref="OpsRequest"/>.</summary>
public sealed class OpsEndpoints
{
    public const int DefaultHistoryLimit = 20;

    private readonly ActorSystem _system;
    private readonly OpsSettings _settings;
    private readonly OpsQueries _queries;
    private readonly HeartbeatAccess _heartbeat;
    private readonly OpsAuthorization _authorization;
    private readonly ILoggingAdapter _log;
    private readonly ClawKeeper.Platform.Alerts.AlertControlStore _alertControls;

    public OpsEndpoints(ActorSystem system, OpsSettings settings, Npgsql.NpgsqlDataSource platform)
    {
        _system = system;
        _alertControls = new ClawKeeper.Platform.Alerts.AlertControlStore(platform);
        _settings = settings;
        _queries = new OpsQueries(platform);
        _heartbeat = new HeartbeatAccess(system, settings.AskTimeout);
        _authorization = new OpsAuthorization(settings.TokenSha256);
        _log = Logging.GetLogger(system, "ClawKeeper.Ops");
    }

    public sealed record Route(string Method, string Path, Func<OpsRequest, CancellationToken, Task<OpsResponse>> Handler);

    /// <summary>Every route; with <paramref name="readOnly"/> (akka.management.http.route-providers-read-only) the POST routes answer 403.</summary>
    public IReadOnlyList<Route> Routes(bool readOnly) =>
    [
        new("GET", "/", StatusPageAsync),
        new("GET", "/health/live", LiveAsync),
        new("GET", "/health/ready", ReadyAsync),
        new("GET", "/cluster/members", MembersAsync),
        new("GET", "/heartbeat/latest", LatestAsync),
        new("GET", "/heartbeat/history", HistoryAsync),
        new("GET", "/metrics", MetricsAsync),
        new("POST", "/heartbeat/run", Mutating(readOnly, RunHeartbeatAsync)),
        new("POST", "/cluster/leave", Mutating(readOnly, LeaveAsync)),
        new("POST", "/alerts/ack", Mutating(readOnly, AcknowledgeAsync)),
        new("POST", "/alerts/silence", Mutating(readOnly, SilenceAsync)),
    ];

    /// <summary><c>POST /alerts/ack?incident=KEY&amp;reason=TEXT[&amp;by=NAME]</c>: no more reminders for that incident until it resolves.</summary>
    public async Task<OpsResponse> AcknowledgeAsync(OpsRequest request, CancellationToken cancellationToken)
    {
        var incident = Parameter(request, "incident");
        var reason = Parameter(request, "reason");
        if (incident is null || reason is null)
            return OpsResponse.Error(400, "give ?incident=<dedup key or group/check> and &reason=<why>");
        var by = "ops:" + (Parameter(request, "by") ?? request.Remote);
        var id = await _alertControls.AddAsync("ack", incident, null, by, reason, cancellationToken).ConfigureAwait(false);
        _log.Info("ops: acknowledgement #{0} of {1} by {2}", id, incident, by);
        return OpsResponse.Json(201, new { control = id, kind = "ack", target = incident, by, detail = "applied by the next heartbeat" });
    }

    /// <summary><c>POST /alerts/silence?target=GROUP[/CHECK]&amp;until=ISO|for=SECONDS&amp;reason=TEXT</c>: alerts kept, not sent, until the end.</summary>
    public async Task<OpsResponse> SilenceAsync(OpsRequest request, CancellationToken cancellationToken)
    {
        var target = Parameter(request, "target");
        var reason = Parameter(request, "reason");
        DateTimeOffset? until = null;
        if (Parameter(request, "until") is { } text)
            until = DateTimeOffset.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var parsed) ? parsed : null;
        else if (Parameter(request, "for") is { } seconds && double.TryParse(seconds, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var s) && s > 0)
            until = DateTimeOffset.UtcNow.AddSeconds(s);
        var groups = new[] { "system_health", "task_queue", "data_integrity", "security_posture", "integration_health" };
        if (target is null || reason is null || until is null || until <= DateTimeOffset.UtcNow || !groups.Contains(target.Split('/')[0]))
            return OpsResponse.Error(400, $"give ?target=<group or group/check; groups: {string.Join(", ", groups)}>, &until=<ISO time in the future> or &for=<seconds>, and &reason=<why>");
        var by = "ops:" + (Parameter(request, "by") ?? request.Remote);
        var id = await _alertControls.AddAsync("silence", target, until, by, reason, cancellationToken).ConfigureAwait(false);
        _log.Info("ops: silence #{0} of {1} until {2} by {3}", id, target, until, by);
        return OpsResponse.Json(201, new { control = id, kind = "silence", target, until, by, detail = "applied by the next heartbeat" });
    }

    private static string? Parameter(OpsRequest request, string name) =>
        request.Query.TryGetValue(name, out var value) && !string.IsNullOrWhiteSpace(value) ? value.Trim() : null;

    public Task<OpsResponse> LiveAsync(OpsRequest request, CancellationToken cancellationToken) =>
        Task.FromResult(_system.WhenTerminated.IsCompleted
            ? OpsResponse.Json(503, new { status = "terminated", actorSystem = _system.Name })
            : OpsResponse.Json(200, new { status = "alive", actorSystem = _system.Name, uptimeSeconds = (long)_system.Uptime.TotalSeconds }));

    public async Task<OpsResponse> ReadyAsync(OpsRequest request, CancellationToken cancellationToken)
    {
        var readiness = await ReadinessAsync(cancellationToken).ConfigureAwait(false);
        return OpsResponse.Json(readiness.Ready ? 200 : 503, new
        {
            ready = readiness.Ready,
            checkedAt = readiness.CheckedAt,
            failing = readiness.Failing,
            conditions = readiness.Conditions,
        });
    }

    public Task<OpsResponse> MembersAsync(OpsRequest request, CancellationToken cancellationToken) =>
        Task.FromResult(OpsResponse.Json(200, ClusterView.Of(_system).Members));

    public async Task<OpsResponse> LatestAsync(OpsRequest request, CancellationToken cancellationToken)
    {
        var view = await _heartbeat.ViewAsync(_queries, cancellationToken).ConfigureAwait(false);
        if (view.Latest is { } report)
            return OpsResponse.RawJson(200, report.ToJson()) with
            {
                Headers = new Dictionary<string, string> { ["X-ClawKeeper-Source"] = view.LatestSource },
            };
        if (view.Supervisor.Answered)
            return OpsResponse.Error(404, "no heartbeat has completed yet");
        return view.LatestError is { } error
            ? OpsResponse.Error(503, $"{view.Supervisor.Error}; {error}")
            : OpsResponse.Error(404, $"no heartbeat recorded: {view.Supervisor.Error}, and agent_runs holds no heartbeat");
    }

    public async Task<OpsResponse> HistoryAsync(OpsRequest request, CancellationToken cancellationToken)
    {
        var (limit, problem) = ParseLimit(request.Query);
        if (problem is not null) return OpsResponse.Error(400, problem);
        try
        {
            var reports = await _queries.HistoryJsonAsync(limit, cancellationToken).ConfigureAwait(false);
            return OpsResponse.RawJson(200, "[" + string.Join(",", reports) + "]");
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return OpsResponse.Error(503, $"reading agent_runs failed: {OpsText.Describe(e)}");
        }
    }

    /// <summary><c>limit</c>: absent = 20, else a whole number 1..500.</summary>
    public static (int Limit, string? Error) ParseLimit(IReadOnlyDictionary<string, string?> query)
    {
        if (!query.TryGetValue("limit", out var raw)) return (DefaultHistoryLimit, null);
        if (int.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out var limit) && limit is >= 1 and <= OpsQueries.MaxHistory)
            return (limit, null);
        var shown = raw is null ? "" : raw.Length > 40 ? raw[..40] + "..." : raw;
        return (0, $"limit must be a whole number from 1 to {OpsQueries.MaxHistory}; got '{shown}'");
    }

    public async Task<OpsResponse> MetricsAsync(OpsRequest request, CancellationToken cancellationToken)
    {
        var view = await _heartbeat.ViewAsync(_queries, cancellationToken).ConfigureAwait(false);
        var platform = await PlatformAsync(history: false, cancellationToken).ConfigureAwait(false);
        var text = OpsMetrics.Render(new MetricsInput(view, DateTimeOffset.UtcNow, platform.Uptime, platform.Api, platform.Tasks,
            platform.TenantDays, platform.Visibility, platform.Error, Api.ApiMetricsSetup.Of(_system)?.Snapshot(DateTimeOffset.UtcNow)));
        return new OpsResponse(200, OpsResponse.PrometheusType, text);
    }

    public async Task<OpsResponse> StatusPageAsync(OpsRequest request, CancellationToken cancellationToken)
    {
        var view = await _heartbeat.ViewAsync(_queries, cancellationToken).ConfigureAwait(false);
        var cluster = ClusterView.Of(_system);
        var now = DateTimeOffset.UtcNow;
        var readiness = Readiness.Evaluate(cluster, view.Supervisor, now, _settings.HeartbeatFreshWithin);
        var platform = await PlatformAsync(history: true, cancellationToken).ConfigureAwait(false);
        var html = StatusPage.Render(new StatusPageInput(view, readiness, cluster, now, platform.History, platform.Uptime, platform.Api,
            platform.Tasks, platform.TenantDays, platform.Visibility, platform.Error));
        return new OpsResponse(200, OpsResponse.HtmlType, html, new Dictionary<string, string>
        {
            // Everything is inline; nothing may be loaded from elsewhere.
            ["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        });
    }

    public Task<OpsResponse> RunHeartbeatAsync(OpsRequest request, CancellationToken cancellationToken)
    {
        if (_heartbeat.Supervisor is not { } supervisor)
            return Task.FromResult(OpsResponse.Error(503, "no heartbeat supervisor is registered on this node"));
        var full = request.Query.TryGetValue("full", out var raw) && (raw is null || raw.Equals("true", StringComparison.OrdinalIgnoreCase) || raw == "1");
        // Nobody as sender: the HeartbeatCompleted answer is not wanted (the report lands in /heartbeat/latest).
        supervisor.Tell(full ? new RunHeartbeatNow(FullVerification: true) : RunHeartbeatNow.Instance, ActorRefs.Nobody);
        _log.Info("ops: heartbeat run requested by {0} (full verification: {1})", request.Remote, full);
        return Task.FromResult(OpsResponse.Json(202, new
        {
            accepted = "heartbeat_run",
            fullVerification = full,
            detail = "a heartbeat starts now (or the one in flight is joined); its report appears at /heartbeat/latest",
        }));
    }

    public Task<OpsResponse> LeaveAsync(OpsRequest request, CancellationToken cancellationToken)
    {
        if (((ExtendedActorSystem)_system).Provider is not IClusterActorRefProvider)
            return Task.FromResult(OpsResponse.Error(409, "this node is not a cluster member; there is nothing to leave"));
        var cluster = Cluster.Get(_system);
        _log.Warning("ops: cluster leave of {0} requested by {1}", cluster.SelfAddress, request.Remote);
        cluster.Leave(cluster.SelfAddress);
        return Task.FromResult(OpsResponse.Json(202, new
        {
            accepted = "cluster_leave",
            address = cluster.SelfAddress.ToString(),
            detail = "the node leaves the cluster gracefully (singletons hand over) and then shuts down",
        }));
    }

    private Func<OpsRequest, CancellationToken, Task<OpsResponse>> Mutating(bool readOnly, Func<OpsRequest, CancellationToken, Task<OpsResponse>> handler) =>
        (request, cancellationToken) =>
        {
            if (_authorization.WhyRefused(request.Authorization) is { } reason)
            {
                // The presented token is never logged, only why it was refused.
                _log.Warning("ops: refused {0} {1} from {2}: {3}", request.Method, request.Path, request.Remote, reason);
                return Task.FromResult(OpsResponse.Error(401, $"a valid ops token is required (Authorization: Bearer <token>): {reason}") with
                {
                    Headers = new Dictionary<string, string> { ["WWW-Authenticate"] = "Bearer realm=\"clawkeeper-ops\"" },
                });
            }
            if (readOnly)
                return Task.FromResult(OpsResponse.Error(403, "the management endpoint is read-only (akka.management.http.route-providers-read-only = on)"));
            return handler(request, cancellationToken);
        };

    private async Task<Readiness> ReadinessAsync(CancellationToken cancellationToken)
    {
        var cluster = ClusterView.Of(_system);
        var supervisor = await _heartbeat.StateAsync(cancellationToken).ConfigureAwait(false);
        return Readiness.Evaluate(cluster, supervisor, DateTimeOffset.UtcNow, _settings.HeartbeatFreshWithin);
    }

    private sealed record PlatformFigures(
        IReadOnlyList<HistoryPoint>? History,
        IReadOnlyList<UptimeRow>? Uptime,
        IReadOnlyList<ApiResponseRow>? Api,
        TaskRates? Tasks,
        IReadOnlyList<TenantDay>? TenantDays,
        string? Visibility,
        string? Error);

    private async Task<PlatformFigures> PlatformAsync(bool history, CancellationToken cancellationToken)
    {
        try
        {
            var points = history ? await _queries.HistoryPointsAsync(StatusPage.ChartPoints, cancellationToken).ConfigureAwait(false) : null;
            var uptime = await _queries.UptimeAsync(cancellationToken).ConfigureAwait(false);
            var api = await _queries.ApiResponseAsync(cancellationToken).ConfigureAwait(false);
            var tasks = await _queries.TaskRatesAsync(cancellationToken).ConfigureAwait(false);
            var days = await _queries.TenantDaysAsync(cancellationToken).ConfigureAwait(false);
            var visibility = await _queries.WhyNotAllTenantsVisibleAsync(cancellationToken).ConfigureAwait(false);
            return new PlatformFigures(points, uptime, api, tasks, days, visibility, null);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            _log.Warning("ops: reading the platform database failed: {0}", OpsText.Describe(e));
            return new PlatformFigures(null, null, null, null, null, null, $"reading the platform database failed: {OpsText.Describe(e)}");
        }
    }
}
