using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ClawKeeper.Platform.Api;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.AspNetCore.Routing;
using System.Threading.RateLimiting;
using ILogger = Serilog.ILogger;

namespace ClawKeeper.Host.Api;

/// <summary>
/// The API's middleware and routes:
/// <c>GET /health</c> (no key, not rate limited), <c>GET /api/ping</c> (any valid key, no side effect:
/// what the heartbeat's rate-limiter probe calls), <c>POST /api/tasks</c>, <c>GET /api/tasks/{id}</c>.
/// Pipeline: measure → per-address limit BEFORE any key lookup (429 without touching the database;
/// the heartbeat's probe and keys validated recently are not counted) → authenticate (resolve the key,
/// no answer yet) → rate limit (per key id, or per remote address without a valid key) → refuse callers
/// without a valid key (401; the refusal is counted and recorded by <see cref="RefusalEventThrottle"/>,
/// one row per source and reason per window; or 503 while the key cannot be verified) → route.
/// </summary>
internal sealed class ApiEndpoints
{
    private const string CallerItem = "clawkeeper.api.caller";
    private static readonly ILogger Log = Serilog.Log.ForContext("SourceContext", "ClawKeeper.Api");

    private readonly ApiServer _server;

    public ApiEndpoints(ApiServer server) => _server = server;

    private string RetryAfterSeconds => ((int)Math.Ceiling(_server.Settings.RetryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);

    public static ApiCaller? CallerOf(HttpContext context) => context.Items.TryGetValue(CallerItem, out var caller) ? caller as ApiCaller : null;

    private static bool IsHealth(HttpContext context) => context.Request.Path.Equals("/health", StringComparison.OrdinalIgnoreCase);

    public void Map(WebApplication app)
    {
        app.MapGet("/health", Health);
        app.MapGet("/api/ping", (HttpContext context) => Results.Json(new { ok = true, tenantId = ((ApiCaller.Authenticated)CallerOf(context)!).TenantId }));
        app.MapPost("/api/tasks", (Func<HttpContext, Task<IResult>>)SubmitAsync);
        app.MapGet("/api/tasks/{id}", (Func<HttpContext, string, Task<IResult>>)GetTaskAsync);
    }

    /// <summary>First middleware: times every request for <c>/metrics</c>.</summary>
    public async Task MeasureAsync(HttpContext context, RequestDelegate next)
    {
        if (_server.IsWarmUp(context))
        {
            // The node's own warm-up before its first heartbeat: served like any request, counted nowhere.
            await next(context).ConfigureAwait(false);
            return;
        }
        var stopwatch = Stopwatch.StartNew();
        try
        {
            await next(context).ConfigureAwait(false);
        }
        finally
        {
            var route = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "unmatched";
            _server.Metrics.Record(route, context.Response.StatusCode, stopwatch.Elapsed);
        }
    }

    /// <summary>
    /// Before any key lookup: at most <see cref="ApiSettings.AddressPermits"/> requests per remote address per
    /// window reach the authenticator (the probe key and keys validated within the cache TTL are not counted).
    /// Past it: 429 with Retry-After, no database work and no security event.
    /// </summary>
    public async Task PreAuthLimitAsync(HttpContext context, RequestDelegate next)
    {
        if (!IsHealth(context))
        {
            var key = ApiAuthenticator.PresentedKey(context.Request.Headers.Authorization, context.Request.Headers["X-Api-Key"]);
            if (!_server.Authenticator.IsKnown(key, DateTimeOffset.UtcNow))
            {
                var address = context.Connection.RemoteIpAddress?.ToString() ?? "unknown";
                using var lease = _server.AddressLimiter.AttemptAcquire(address);
                if (!lease.IsAcquired)
                {
                    _server.Metrics.AddressLimited();
                    var retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : _server.Settings.RateWindow;
                    context.Response.Headers.RetryAfter = ((int)Math.Max(1, Math.Ceiling(retryAfter.TotalSeconds))).ToString(CultureInfo.InvariantCulture);
                    await Results.Json(new
                    {
                        error = "rate_limited",
                        reason = $"more than {_server.Settings.AddressPermits} requests without a recently validated API key in {_server.Settings.RateWindow.TotalSeconds:0.###} s from this address",
                    }, statusCode: StatusCodes.Status429TooManyRequests).ExecuteAsync(context).ConfigureAwait(false);
                    return;
                }
            }
        }
        await next(context).ConfigureAwait(false);
    }

    /// <summary>Resolves the caller (for the limiter's partition); answers nothing itself.</summary>
    public async Task AuthenticateAsync(HttpContext context, RequestDelegate next)
    {
        if (!IsHealth(context))
        {
            var key = ApiAuthenticator.PresentedKey(context.Request.Headers.Authorization, context.Request.Headers["X-Api-Key"]);
            context.Items[CallerItem] = await _server.Authenticator.AuthenticateAsync(key, DateTimeOffset.UtcNow, context.RequestAborted).ConfigureAwait(false);
        }
        await next(context).ConfigureAwait(false);
    }

    /// <summary>After the limiter: a request without a valid key ends here.</summary>
    public async Task RequireCallerAsync(HttpContext context, RequestDelegate next)
    {
        if (IsHealth(context))
        {
            await next(context).ConfigureAwait(false);
            return;
        }
        switch (CallerOf(context))
        {
            case ApiCaller.Refused refused:
                RecordRefusal(context, refused);
                context.Response.Headers.WWWAuthenticate = "Bearer";
                await Results.Json(new { error = "unauthorized", reason = refused.Reason }, statusCode: StatusCodes.Status401Unauthorized).ExecuteAsync(context).ConfigureAwait(false);
                return;
            case ApiCaller.Unverifiable unverifiable:
                context.Response.Headers.RetryAfter = RetryAfterSeconds;
                await Results.Json(new { error = unverifiable.Busy ? "database_busy" : "database_unavailable", reason = unverifiable.Reason },
                    statusCode: StatusCodes.Status503ServiceUnavailable).ExecuteAsync(context).ConfigureAwait(false);
                return;
            case ApiCaller.Authenticated { IsProbe: true } when !context.Request.Path.Equals("/api/ping", StringComparison.OrdinalIgnoreCase):
                await Results.Json(new { error = "forbidden", reason = "the heartbeat's probe key may only call GET /api/ping" }, statusCode: StatusCodes.Status403Forbidden).ExecuteAsync(context).ConfigureAwait(false);
                return;
            case ApiCaller.Authenticated:
                await next(context).ConfigureAwait(false);
                return;
            default:
                throw new InvalidOperationException("no caller resolved for " + context.Request.Path);
        }
    }

    /// <summary>Counts the refusal for <see cref="RefusalEventThrottle"/> (written once per source and reason per window); no database work here.</summary>
    private void RecordRefusal(HttpContext context, ApiCaller.Refused refused)
    {
        var remote = context.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        var path = context.Request.Path.Value is { Length: > 200 } p ? p[..200] : context.Request.Path.Value;
        _server.RefusalEvents.Record(new ApiRefusal(refused.TenantId, $"api {remote}", refused.Reason, refused.KeyFingerprint, refused.KeyId,
            context.Request.Method, path, remote, DateTimeOffset.UtcNow));
        Log.Debug("Unauthorized API request {Method} {Path} from {Remote} (key {Key}): {Reason}",
            context.Request.Method, path, remote, refused.KeyFingerprint ?? "none", refused.Reason);
    }

    public async ValueTask RateLimitedAsync(OnRejectedContext rejected, CancellationToken ct)
    {
        var context = rejected.HttpContext;
        var retryAfter = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : _server.Settings.RateWindow;
        context.Response.Headers.RetryAfter = ((int)Math.Max(1, Math.Ceiling(retryAfter.TotalSeconds))).ToString(CultureInfo.InvariantCulture);
        await Results.Json(new
        {
            error = "rate_limited",
            reason = $"more than {_server.Settings.RatePermits} requests in {_server.Settings.RateWindow.TotalSeconds:0.###} s for this {(CallerOf(context) is ApiCaller.Authenticated ? "API key" : "address")}",
        }, statusCode: StatusCodes.Status429TooManyRequests).ExecuteAsync(context).ConfigureAwait(false);
    }

    private IResult Health()
    {
        var gate = _server.Gate;
        return Results.Json(new
        {
            status = "ok",
            database = gate.Available ? "reachable" : "unreachable",
            databaseDownSince = gate.DownSince,
        });
    }

    private async Task<IResult> SubmitAsync(HttpContext context)
    {
        var caller = (ApiCaller.Authenticated)CallerOf(context)!;
        JsonDocument document;
        try
        {
            document = await JsonDocument.ParseAsync(context.Request.Body, default, context.RequestAborted).ConfigureAwait(false);
        }
        catch (JsonException ex)
        {
            return Error(StatusCodes.Status400BadRequest, "invalid_body", $"the body is not valid JSON: {ex.Message}");
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return Error(StatusCodes.Status413PayloadTooLarge, "body_too_large", $"the body is larger than {_server.Settings.MaxBodyBytes} bytes");
        }
        using (document)
        {
            var (request, error) = ApiTaskRequest.Parse(document.RootElement);
            if (request is null) return Error(StatusCodes.Status400BadRequest, "invalid_task", error!);

            var task = new ApiTaskSubmission(ApiTaskRequest.TaskIdFor(caller.TenantId, request.ClientId), caller.TenantId, request.Orchestrator,
                request.Kind, request.PayloadJson, request.Priority, DateTimeOffset.UtcNow);
            if (_server.Gate.Available)
            {
                try
                {
                    var (outcome, view) = await _server.Tasks.InsertAsync(task, context.RequestAborted).ConfigureAwait(false);
                    switch (outcome)
                    {
                        case ApiTaskInsertOutcome.Created:
                            return Results.Json(TaskJson(view!), statusCode: StatusCodes.Status201Created).WithLocation(task.Id);
                        case ApiTaskInsertOutcome.AlreadyExisted:
                            return Results.Json(TaskJson(view!), statusCode: StatusCodes.Status200OK).WithLocation(task.Id);
                        default:
                            return Error(StatusCodes.Status409Conflict, "id_conflict", "this id cannot be used; choose another idempotency key");
                    }
                }
                catch (WritesBlockedException ex)
                {
                    context.Response.Headers.RetryAfter = RetryAfterSeconds;
                    return Error(StatusCodes.Status503ServiceUnavailable, "writes_blocked", $"the platform refuses writes: {ex.Message}");
                }
                catch (Exception ex) when (ApiTaskStore.IsPoolExhausted(ex) && !context.RequestAborted.IsCancellationRequested)
                {
                    return Busy(context);
                }
                catch (Exception ex) when (ApiTaskStore.IsUnavailable(ex) && !context.RequestAborted.IsCancellationRequested)
                {
                    _server.Gate.MarkUnavailable($"{ex.GetType().Name}: {ex.Message}");
                    Log.Warning("Platform database unreachable for POST /api/tasks ({Error}); buffering task {TaskId}", ex.Message, task.Id);
                }
            }
            return await BufferAsync(context, task).ConfigureAwait(false);
        }
    }

    private async Task<IResult> BufferAsync(HttpContext context, ApiTaskSubmission task)
    {
        // Durable before the answer: the buffer commits (synchronous = FULL) before 202 is sent.
        var outcome = await _server.Buffer.AddAsync(task, CancellationToken.None).ConfigureAwait(false);
        if (outcome == BufferAddOutcome.Full)
        {
            context.Response.Headers.RetryAfter = RetryAfterSeconds;
            return Error(StatusCodes.Status503ServiceUnavailable, "buffer_full",
                $"the platform database is unreachable and the local submission buffer holds its capacity ({_server.Buffer.Capacity} tasks); nothing was accepted, retry later");
        }
        _server.Flusher.Wake();
        return Results.Json(QueuedJson(task), statusCode: StatusCodes.Status202Accepted).WithLocation(task.Id);
    }

    private async Task<IResult> GetTaskAsync(HttpContext context, string id)
    {
        var caller = (ApiCaller.Authenticated)CallerOf(context)!;
        // The buffer first: a task moves from the buffer to the database, never back.
        if (await _server.Buffer.FindAsync(caller.TenantId, id, context.RequestAborted).ConfigureAwait(false) is { } queued)
            return Results.Json(QueuedJson(queued));
        if (_server.Gate.Available)
        {
            try
            {
                var view = await _server.Tasks.GetAsync(caller.TenantId, id, context.RequestAborted).ConfigureAwait(false);
                return view is null
                    ? Error(StatusCodes.Status404NotFound, "not_found", $"no task '{(id.Length > 100 ? id[..100] + "..." : id)}' for this API key's tenant")
                    : Results.Json(TaskJson(view));
            }
            catch (Exception ex) when (ApiTaskStore.IsPoolExhausted(ex) && !context.RequestAborted.IsCancellationRequested)
            {
                return Busy(context);
            }
            catch (Exception ex) when (ApiTaskStore.IsUnavailable(ex) && !context.RequestAborted.IsCancellationRequested)
            {
                _server.Gate.MarkUnavailable($"{ex.GetType().Name}: {ex.Message}");
            }
        }
        context.Response.Headers.RetryAfter = RetryAfterSeconds;
        return Error(StatusCodes.Status503ServiceUnavailable, "database_unavailable", "the platform database is unreachable and the task is not in this node's submission buffer; retry later");
    }

    /// <summary>Every connection of the API's own pool is in use: 503 + Retry-After. Not an outage: the gate stays open, nothing is buffered.</summary>
    private IResult Busy(HttpContext context)
    {
        _server.Metrics.PoolExhausted();
        context.Response.Headers.RetryAfter = RetryAfterSeconds;
        return Error(StatusCodes.Status503ServiceUnavailable, "database_busy",
            $"every connection of the API's database pool ({_server.Settings.MaxPoolSize}) is in use; nothing was accepted, retry later");
    }

    private static IResult Error(int status, string error, string reason) => Results.Json(new { error, reason }, statusCode: status);

    private static object TaskJson(ApiTaskView task) => new
    {
        id = task.Id,
        tenantId = task.TenantId,
        orchestrator = task.Orchestrator,
        kind = task.Kind,
        status = task.Status,
        attempts = task.Attempts,
        lastError = task.LastError,
        createdAt = task.CreatedAt,
        startedAt = task.StartedAt,
        completedAt = task.CompletedAt,
    };

    private static object QueuedJson(ApiTaskSubmission task) => new
    {
        id = task.Id,
        tenantId = task.TenantId,
        orchestrator = task.Orchestrator,
        kind = task.Kind,
        status = "queued",
        attempts = 0,
        lastError = (string?)null,
        createdAt = task.AcceptedAt,
        startedAt = (DateTimeOffset?)null,
        completedAt = (DateTimeOffset?)null,
    };
}

internal static class ApiResults
{
    /// <summary>Adds <c>Location: /api/tasks/{id}</c>.</summary>
    public static IResult WithLocation(this IResult result, string id) => new Located(result, "/api/tasks/" + Uri.EscapeDataString(id));

    private sealed class Located(IResult inner, string location) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.Headers.Location = location;
            return inner.ExecuteAsync(httpContext);
        }
    }
}
