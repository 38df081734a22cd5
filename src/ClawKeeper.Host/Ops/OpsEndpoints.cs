using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;

namespace ClawKeeper.Host.Ops;

/// <summary>Bearer-token check of the mutating routes: SHA-256 of the presented token, compared in constant time.</summary>
public sealed class OpsAuthorization
{
    private readonly byte[]? _expected;

    public OpsAuthorization(string tokenSha256) =>
        _expected = tokenSha256.Length == 64 ? Convert.FromHexString(tokenSha256) : null;

    public bool Configured => _expected is not null;

    /// <summary>True when <paramref name="token"/> is the configured token (constant-time comparison of the SHA-256).</summary>
    public bool Matches(string? token) =>
        _expected is not null && token is { Length: > 0 }
        && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(token)), _expected);

    /// <summary>The token of an <c>Authorization: Bearer</c> header, or the password of a <c>Basic</c> one (what a browser sends after its prompt).</summary>
    public static string? BearerOrBasicToken(string? authorizationHeader)
    {
        if (string.IsNullOrWhiteSpace(authorizationHeader)) return null;
        const string basic = "Basic ";
        if (!authorizationHeader.StartsWith(basic, StringComparison.OrdinalIgnoreCase)) return BearerToken(authorizationHeader).Token;
        try
        {
            var pair = Encoding.UTF8.GetString(Convert.FromBase64String(authorizationHeader[basic.Length..].Trim()));
            var colon = pair.IndexOf(':');
            return colon >= 0 && colon < pair.Length - 1 ? pair[(colon + 1)..] : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }

    /// <summary>Null when <paramref name="authorizationHeader"/> carries the ops token; else why not (never containing the token).</summary>
    public string? WhyRefused(string? authorizationHeader)
    {
        if (_expected is null) return "no ops token is configured (clawkeeper.ops.token-sha256 is empty), so mutating routes are disabled";
        var (token, problem) = BearerToken(authorizationHeader);
        if (token is null) return problem;
        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(token));
        return CryptographicOperations.FixedTimeEquals(presented, _expected) ? null : "the bearer token is not valid";
    }

    /// <summary>The token of an <c>Authorization: Bearer</c> header, or why there is none.</summary>
    public static (string? Token, string? Problem) BearerToken(string? authorizationHeader)
    {
        if (string.IsNullOrWhiteSpace(authorizationHeader)) return (null, "no Authorization header");
        const string scheme = "Bearer ";
        if (!authorizationHeader.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return (null, "the Authorization header is not a Bearer token");
        var token = authorizationHeader[scheme.Length..].Trim();
        return token.Length == 0 ? (null, "the bearer token is empty") : (token, null);
    }
}

/// <summary>The routes of the ops surface as plain functions of <see cref="OpsRequest"/>.</summary>
public sealed partial class OpsEndpoints
{
    public const int DefaultHistoryLimit = 20;

    private readonly ActorSystem _system;
    private readonly OpsSettings _settings;
    private readonly OpsQueries _queries;
    private readonly HeartbeatAccess _heartbeat;
    private readonly OpsAuthorization _authorization;
    private readonly OpsAuthorization _readAuthorization;
    private readonly OpsHealthCache _health;
    private readonly SharedResultCache<bool, PlatformFigures> _figures;
    private readonly Dictionary<string, Func<Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckRegistration, bool>> _tagPredicates = new(StringComparer.Ordinal);
    private readonly ILoggingAdapter _log;
    private readonly ClawKeeper.Platform.Alerts.AlertControlStore _alertControls;
    private readonly Npgsql.NpgsqlDataSource _platform;
    private readonly OpsWriteSettings _writes;

    // super_admin's own connection for lifting a block (CLAWKEEPER_ADMIN_DB); the node's own connection is the monitoring role.
    private readonly Lazy<Npgsql.NpgsqlDataSource?> _admin = new(() =>
        WriteUnblock.AdminConnectionStringFromEnvironment() is { } admin ? Npgsql.NpgsqlDataSource.Create(admin) : null);

    public OpsEndpoints(ActorSystem system, OpsSettings settings, Npgsql.NpgsqlDataSource platform, OpsWriteSettings? writes = null)
    {
        _system = system;
        _platform = platform;
        _writes = writes ?? OpsWriteSettings.Disabled;
        _alertControls = new ClawKeeper.Platform.Alerts.AlertControlStore(platform);
        _settings = settings;
        _queries = new OpsQueries(platform);
        _heartbeat = new HeartbeatAccess(system, settings.AskTimeout);
        _authorization = new OpsAuthorization(settings.TokenSha256);
        _readAuthorization = new OpsAuthorization(settings.ReadTokenSha256);
        _health = new OpsHealthCache(system, settings.HealthCache);
        _figures = new SharedResultCache<bool, PlatformFigures>(settings.HealthCache);
        _log = Logging.GetLogger(system, "ClawKeeper.Ops");
        Metrics = CreateMetrics();
    }

    public sealed record Route(string Method, string Path, Func<OpsRequest, CancellationToken, Task<OpsResponse>> Handler);

    /// <summary>The node's health checks behind the short cache (what <c>MapHealthChecks</c> and the status page run).</summary>
    public OpsHealthCache Health => _health;

    /// <summary>
    /// Every route but the health routes (those are <c>MapHealthChecks</c>, see <see cref="OpsServer"/>).
    /// <c>/metrics</c> is open; the other GET routes need the read token when one is configured
    /// (<see cref="Readable"/>); the mutating routes need the ops token, the muting of the books and
    /// the unblock the super_admin credential.
    /// </summary>
    public IReadOnlyList<Route> Routes() =>
    [
        new("GET", "/", Readable(StatusPageAsync)),
        new("GET", "/cluster/members", Readable(ClusterMembersAsync)),
        new("GET", "/cluster/members/{**address}", Readable(ClusterMemberAsync)),
        new("PUT", "/cluster/members/{**address}", Mutating(ClusterMemberOperationAsync)),
        new("DELETE", "/cluster/members/{**address}", Mutating(ClusterMemberLeaveAsync)),
        new("GET", "/heartbeat/latest", Readable(LatestAsync)),
        new("GET", "/heartbeat/history", Readable(HistoryAsync)),
        new("GET", "/metrics", MetricsAsync),
        new("POST", "/heartbeat/run", Mutating(RunHeartbeatAsync)),
        new("POST", "/cluster/leave", Mutating(LeaveAsync)),
        new("POST", "/cluster/down", Mutating(DownAsync)),
        new("POST", "/writes/unblock", SuperAdmin(UnblockWritesAsync)),
        new("POST", "/alerts/ack", AlertControl(AcknowledgeAsync)),
        new("POST", "/alerts/silence", AlertControl(SilenceAsync)),
    ];

    private static string? Parameter(OpsRequest request, string name) =>
        request.Query.TryGetValue(name, out var value) && !string.IsNullOrWhiteSpace(value) ? value.Trim() : null;

    /// <summary><c>GET /health/live</c>: the probes tagged <c>liveness</c> (the ActorSystem runs); 200 or 503, each probe listed.</summary>
    public OpsResponse LiveResponse(Readiness live) =>
        OpsResponse.Json(live.Ready ? 200 : 503, new
        {
            status = live.Ready ? "alive" : "not_alive",
            live = live.Ready,
            actorSystem = _system.Name,
            uptimeSeconds = (long)_system.Uptime.TotalSeconds,
            checkedAt = live.CheckedAt,
            totalDurationMs = live.TotalDurationMs,
            failing = live.Failing,
            conditions = live.Conditions,
        });

    /// <summary>
    /// <c>GET /health/ready</c>: the probes tagged <c>ready</c> (joined and Up, journal reachable,
    /// supervisor recovered, a heartbeat within two intervals); 200 or 503, each probe listed.
    /// </summary>
    public OpsResponse ReadyResponse(Readiness readiness) =>
        OpsResponse.Json(readiness.Ready ? 200 : 503, new
        {
            ready = readiness.Ready,
            status = readiness.Ready ? "ready" : "not_ready",
            checkedAt = readiness.CheckedAt,
            totalDurationMs = readiness.TotalDurationMs,
            failing = readiness.Failing,
            conditions = readiness.Conditions,
        });

    /// <summary>One predicate instance per tag: the health cache keys its reports by it.</summary>
    public Func<Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckRegistration, bool> TagPredicate(string tag)
    {
        lock (_tagPredicates)
        {
            if (!_tagPredicates.TryGetValue(tag, out var predicate))
                _tagPredicates[tag] = predicate = registration => registration.Tags.Contains(tag);
            return predicate;
        }
    }

    /// <summary>Pure: the answer for a health report of the checks tagged <paramref name="tag"/>.</summary>
    public static Readiness ReadinessOf(Microsoft.Extensions.Diagnostics.HealthChecks.HealthReport report, string tag)
    {
        var now = DateTimeOffset.UtcNow;
        return report.Entries.Count == 0
            ? Readiness.Unavailable("health_checks_registered", $"no health check tagged '{tag}' is registered (the host needs services.AddHealthChecks() and WithClawKeeperHealthChecks(...))", now)
            : Readiness.From(report, now);
    }

    /// <summary>Runs the health checks tagged <paramref name="tag"/> (through the short cache).</summary>
    private async Task<Readiness> ProbeAsync(string tag, CancellationToken cancellationToken)
    {
        var report = await _health.CheckHealthAsync(TagPredicate(tag), cancellationToken).ConfigureAwait(false);
        return ReadinessOf(report, tag);
    }

    public async Task<OpsResponse> LatestAsync(OpsRequest request, CancellationToken cancellationToken)
    {
        var view = await _heartbeat.ViewAsync(_queries, cancellationToken).ConfigureAwait(false);
        if (view.Latest is { } report)
            return OpsResponse.RawJson(200, (request.Details ? report : OpsRedaction.Report(report)).ToJson()) with
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
            return OpsResponse.RawJson(200, "[" + string.Join(",", request.Details ? reports : reports.Select(OpsRedaction.StoredJson)) + "]");
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

    /// <summary>This node's metrics (<see cref="OpsMetrics.WriteAsync"/> is the seam any HTTP server can call).</summary>
    public OpsMetrics Metrics { get; }

    public async Task<OpsResponse> MetricsAsync(OpsRequest request, CancellationToken cancellationToken) =>
        new(200, OpsResponse.PrometheusType, await Metrics.RenderAsync(cancellationToken).ConfigureAwait(false));

    private OpsMetrics CreateMetrics()
    {
        var node = Api.ApiMetricsSetup.Of(_system)?.Node ?? new NodeMetrics();
        try
        {
            _system.ActorOf(Props.Create(() => new HeartbeatRoundMetrics(node)), "heartbeat-round-metrics");
        }
        catch (InvalidActorNameException)
        {
            // The routes were built again on this node: its listener already observes the rounds.
        }
        return new OpsMetrics(node,
            ct => OpsMetrics.HostsSupervisorAsync(_system, _heartbeat.Supervisor, ct),
            ct => _heartbeat.ViewAsync(_queries, ct),
            async (view, ct) =>
            {
                try
                {
                    var uptime = await _queries.UptimeAsync(ct).ConfigureAwait(false);
                    var api = await _queries.ApiResponseAsync(ct).ConfigureAwait(false);
                    var tasks = await _queries.TaskRatesAsync(ct).ConfigureAwait(false);
                    var tenants = await _queries.TenantTotalsAsync(ct).ConfigureAwait(false);
                    var visibility = await _queries.WhyNotAllTenantsVisibleAsync(ct).ConfigureAwait(false);
                    return new MetricsInput(view, DateTimeOffset.UtcNow, uptime, api, tasks, tenants, visibility, null);
                }
                catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
                {
                    _log.Warning("ops: reading the platform database for /metrics failed: {0}", OpsText.Describe(e));
                    return new MetricsInput(view, DateTimeOffset.UtcNow, null, null, null, null, null, $"reading the platform database failed: {OpsText.Describe(e)}");
                }
            });
    }

    public async Task<OpsResponse> StatusPageAsync(OpsRequest request, CancellationToken cancellationToken)
    {
        var view = await _heartbeat.ViewAsync(_queries, cancellationToken).ConfigureAwait(false);
        var cluster = ClusterView.Of(_system);
        var now = DateTimeOffset.UtcNow;
        var readiness = await ProbeAsync(OpsHealthChecks.ReadinessTag, cancellationToken).ConfigureAwait(false);
        var platform = await _figures.GetAsync(true, () => PlatformAsync(history: true, CancellationToken.None)).WaitAsync(cancellationToken).ConfigureAwait(false);
        if (!request.Details)
        {
            // Counts and check states only: no tenant ids, task ids, error texts or addresses.
            view = OpsRedaction.View(view);
            platform = platform with { TenantDays = null };
        }
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

    /// <summary>
    /// <c>POST /cluster/down?address=akka.tcp://system@host:port[&amp;force=true]</c>: downs a member this
    /// node sees as unreachable (Akka.Management's <c>PUT /cluster/members/{address}</c> operation
    /// Down). A reachable member is refused unless forced (make it leave instead); this node itself
    /// is refused (use <c>/cluster/leave</c>).
    /// </summary>
    public Task<OpsResponse> DownAsync(OpsRequest request, CancellationToken cancellationToken)
    {
        if (((ExtendedActorSystem)_system).Provider is not IClusterActorRefProvider)
            return Task.FromResult(OpsResponse.Error(409, "this node is not a cluster member; there is no member to down"));
        var cluster = Cluster.Get(_system);
        var members = ClusterView.Of(_system).Members;
        var known = members.Count == 0 ? "none" : string.Join(", ", members.Select(m => m.Address));
        if (Parameter(request, "address") is not { } raw)
            return Task.FromResult(OpsResponse.Error(400, $"give ?address=<member address such as {cluster.SelfAddress}>; members: {known}"));
        var (address, problem) = ParseAddress(raw);
        if (address is null)
            return Task.FromResult(OpsResponse.Error(400, $"'{Shorten(raw)}' is not a member address such as {cluster.SelfAddress}: {problem}"));
        var member = cluster.State.Members.FirstOrDefault(m => m.Address.Equals(address));
        if (member is null)
            return Task.FromResult(OpsResponse.Error(400, $"{address} is not a member of this cluster; members: {known}"));
        if (member.Address.Equals(cluster.SelfAddress))
            return Task.FromResult(OpsResponse.Error(400, $"{address} is this node: take it out gracefully with POST /cluster/leave"));
        var unreachable = cluster.State.Unreachable.Any(m => m.UniqueAddress.Equals(member.UniqueAddress));
        var force = request.Query.TryGetValue("force", out var f) && (f is "true" or "1");
        if (!unreachable && !force)
            return Task.FromResult(OpsResponse.Error(409, $"{address} is reachable ({member.Status.ToString().ToLowerInvariant()}): ask it to leave (POST /cluster/leave on its ops port), or add &force=true to down it anyway"));
        if (member.Status is MemberStatus.Down or MemberStatus.Removed)
            return Task.FromResult(OpsResponse.Json(200, new { accepted = "cluster_down", address = address.ToString(), detail = $"{address} is already {member.Status.ToString().ToLowerInvariant()}" }));
        _log.Warning("ops: down of {0} ({1}, {2}) requested by {3}", address, member.Status, unreachable ? "unreachable" : "reachable, forced", request.Remote);
        cluster.Down(address);
        return Task.FromResult(OpsResponse.Json(202, new
        {
            accepted = "cluster_down",
            address = address.ToString(),
            unreachable,
            detail = "the member is marked down; the leader removes it and its singletons move to the oldest remaining member",
        }));
    }

    /// <summary>An Akka address with protocol, system, host and port; or why not.</summary>
    public static (Address? Address, string? Problem) ParseAddress(string raw)
    {
        try
        {
            var address = Address.Parse(raw.Trim());
            if (string.IsNullOrEmpty(address.Host) || address.Port is null or <= 0)
                return (null, "it needs a host and a port (protocol://system@host:port)");
            return (address, null);
        }
        catch (Exception e) when (e is UriFormatException or ArgumentException or FormatException)
        {
            return (null, "expected protocol://system@host:port");
        }
    }

    private static string Shorten(string text) => text.Length > 80 ? text[..80] + "..." : text;

    /// <summary>The JSON body of <c>POST /writes/unblock</c>.</summary>
    public sealed record UnblockBody(string? Reason, bool Force = false, string? Operator = null);

    /// <summary>
    /// <c>POST /writes/unblock</c> with body <c>{"reason": "...", "force": false, "operator": "..."}</c>
    /// (super_admin credential): re-runs the four data-integrity checks; 409 with their evidence while
    /// one fails and force is false; 200 with the lifted block, and the supervisor records the lift.
    /// </summary>
    public async Task<OpsResponse> UnblockWritesAsync(OpsRequest request, CancellationToken cancellationToken)
    {
        UnblockBody? body;
        try
        {
            body = string.IsNullOrWhiteSpace(request.Body) ? null : System.Text.Json.JsonSerializer.Deserialize<UnblockBody>(request.Body, HeartbeatJson.Compact);
        }
        catch (System.Text.Json.JsonException e)
        {
            return OpsResponse.Error(400, $"the body must be JSON like {{\"reason\": \"...\", \"force\": false}}: {e.Message}");
        }
        var reason = body?.Reason?.Trim();
        if (string.IsNullOrEmpty(reason))
            return OpsResponse.Error(400, "give a JSON body {\"reason\": \"why the block can be lifted\", \"force\": false}: the reason is recorded in write_blocks and the audit trail");
        if (_writes.Integrity is not { } integrity)
            return OpsResponse.Error(503, "this node has no data-integrity settings to re-run the checks with");

        var liftedBy = "super_admin:" + (string.IsNullOrWhiteSpace(body!.Operator) ? "ops@" + request.Remote : body.Operator.Trim());
        UnblockOutcome outcome;
        try
        {
            // The verified positions as the journal holds them (this node's actor system reads it like the singleton does).
            outcome = await new WriteUnblock(_platform, integrity, _admin.Value, ct => Actors.Heartbeat.IntegrityAnchors.ReadAsync(_system, TimeSpan.FromSeconds(30), ct))
                .LiftAsync(liftedBy, reason, body.Force, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or TimeoutException)
        {
            return OpsResponse.Error(503, $"the platform database did not answer; the block is unchanged: {OpsText.Describe(e)}");
        }

        switch (outcome.Result)
        {
            case UnblockResult.NothingOpen:
                return OpsResponse.Json(409, new { error = "no write block is open: nothing to lift", result = "nothing_open" });
            case UnblockResult.NotPermitted:
                _log.Warning("ops: unblock of write block #{0} not possible: this node's database connection may not lift it ({1} is {2})",
                    outcome.Block!.Id, WriteUnblock.AdminVariable, _admin.Value is null ? "not set" : "set but not permitted");
                return OpsResponse.Json(503, new { error = WriteUnblock.NotPermittedProblem(_admin.Value is not null), result = "not_permitted" });
            case UnblockResult.StillFailing:
                _log.Warning("ops: unblock of write block #{0} refused: {1} still failing (requested by {2})",
                    outcome.Block!.Id, string.Join(", ", outcome.Failing.Select(c => c.Check)), liftedBy);
                return OpsResponse.Json(409, new
                {
                    error = $"the integrity failure is still present: write block #{outcome.Block.Id} stays. Repair it first, or lift with \"force\": true (the next heartbeat blocks again while it persists)",
                    result = "still_failing",
                    writeBlock = new { id = outcome.Block.Id, reason = outcome.Block.Reason, imposedAt = outcome.Block.ImposedAt, imposedBy = outcome.Block.ImposedBy },
                    failing = outcome.Failing.Select(c => new { check = c.Check, status = c.Status.ToWire(), observed = c.Observed, threshold = c.Threshold, detail = c.Detail }),
                });
        }

        // The supervisor records the lift now instead of at its next round.
        var supervisor = _heartbeat.Supervisor;
        supervisor?.Tell(ReconcileWriteBlock.Instance, ActorRefs.Nobody);
        _log.Warning("ops: write block #{0} lifted by {1} from {2}: {3}", outcome.LiftedId!, liftedBy, request.Remote, outcome.LiftReason!);
        return OpsResponse.Json(200, new
        {
            result = "lifted",
            writeBlock = new
            {
                id = outcome.LiftedId,
                reason = outcome.Block!.Reason,
                imposedAt = outcome.Block.ImposedAt,
                liftedBy = outcome.LiftedBy,
                liftReason = outcome.LiftReason,
            },
            forced = outcome.Failing.Count > 0,
            stillFailing = outcome.Failing.Select(c => c.Check),
            supervisor = supervisor is null
                ? "no heartbeat supervisor is registered on this node: it notices the lift at its next round"
                : "told: the heartbeat supervisor records the lift now",
        });
    }

    /// <summary>
    /// The super_admin routes: <c>Authorization: Bearer &lt;super_admin token&gt;</c>, checked against
    /// <c>clawkeeper.security.super-admin-token-sha256</c> in constant time (the ops token does not
    /// suffice). A refusal is logged and recorded as an <c>unauthorized_access</c> security event.
    /// </summary>
    private Func<OpsRequest, CancellationToken, Task<OpsResponse>> SuperAdmin(Func<OpsRequest, CancellationToken, Task<OpsResponse>> handler) =>
        async (request, cancellationToken) =>
        {
            var (token, problem) = OpsAuthorization.BearerToken(request.Authorization);
            var refusal = !_writes.Security.SuperAdminConfigured
                ? ClawKeeper.Host.Cli.SuperAdminCredential.Refusal(_writes.Security, token)
                : token is null ? problem : ClawKeeper.Host.Cli.SuperAdminCredential.Refusal(_writes.Security, token);
            if (refusal is not null)
            {
                // The presented token is never logged, only why it was refused.
                _log.Warning("ops: refused {0} {1} from {2}: {3}", request.Method, request.Path, request.Remote, refusal);
                await WriteUnblock.RecordRefusedAttemptAsync(_platform, "ops:" + request.Path.Trim('/').Replace('/', '-'), refusal, "ops@" + request.Remote, cancellationToken).ConfigureAwait(false);
                return OpsResponse.Error(401, $"the super_admin credential is required (Authorization: Bearer <super_admin token>; the ops token does not suffice): {refusal}") with
                {
                    Headers = new Dictionary<string, string> { ["WWW-Authenticate"] = "Bearer realm=\"clawkeeper-super-admin\"" },
                };
            }
            return await handler(request with { Principal = "super_admin" }, cancellationToken).ConfigureAwait(false);
        };

    private Func<OpsRequest, CancellationToken, Task<OpsResponse>> Mutating(Func<OpsRequest, CancellationToken, Task<OpsResponse>> handler) =>
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
            return handler(request with { Principal = "ops" }, cancellationToken);
        };

    internal sealed record PlatformFigures(
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
