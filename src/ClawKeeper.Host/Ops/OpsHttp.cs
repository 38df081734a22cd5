using System.Net;
using System.Text.Json;
using Akka.Event;
using Akka.Http.Dsl;
using ClawKeeper.Actors.Heartbeat;
using Ceen;
using HttpStatusCode = Ceen.HttpStatusCode;

namespace ClawKeeper.Host.Ops;

/// <summary>What a route sees of an HTTP request (Ceen stays at the edge, so routes are plain functions).</summary>
public sealed record OpsRequest(
    string Method,
    string Path,
    IReadOnlyDictionary<string, string?> Query,
    string? Authorization,
    string Remote,
    string? Body = null);

/// <summary>What a route answers.</summary>
public sealed record OpsResponse(int Status, string ContentType, string Body, IReadOnlyDictionary<string, string>? Headers = null)
{
    public const string JsonType = "application/json; charset=utf-8";
    public const string HtmlType = "text/html; charset=utf-8";
    public const string PrometheusType = "text/plain; version=0.0.4; charset=utf-8";

    public static OpsResponse Json(int status, object value) => new(status, JsonType, JsonSerializer.Serialize(value, HeartbeatJson.Compact));

    public static OpsResponse RawJson(int status, string json) => new(status, JsonType, json);

    public static OpsResponse Error(int status, string message) => Json(status, new { error = message });
}

/// <summary>One route: a method, a path and the function that answers it.</summary>
internal sealed class OpsRoute : HttpModuleBase
{
    private readonly string _method;
    private readonly Func<OpsRequest, CancellationToken, Task<OpsResponse>> _handler;
    private readonly ILoggingAdapter _log;

    public OpsRoute(string method, Func<OpsRequest, CancellationToken, Task<OpsResponse>> handler, ILoggingAdapter log)
    {
        _method = method;
        _handler = handler;
        _log = log;
    }

    public override async Task<bool> HandleAsync(IAkkaHttpContext context)
    {
        var request = context.HttpContext.Request;
        OpsResponse response;
        if (!string.Equals(request.Method, _method, StringComparison.OrdinalIgnoreCase))
        {
            response = OpsResponse.Error(405, $"{request.Path} answers {_method} only") with
            {
                Headers = new Dictionary<string, string> { ["Allow"] = _method },
            };
        }
        else
        {
            try
            {
                response = await ToOpsRequestAsync(request).ConfigureAwait(false) is { } opsRequest
                    ? await _handler(opsRequest, request.TimeoutCancellationToken).ConfigureAwait(false)
                    : OpsResponse.Error(413, $"the request body is larger than {MaxBodyBytes} bytes");
            }
            catch (Exception e)
            {
                _log.Error(e, "ops: {0} {1} failed", request.Method, request.Path);
                response = OpsResponse.Error(500, $"internal error ({e.GetType().Name}); see the node's log");
            }
        }

        await WriteAsync(context.HttpContext.Response, response).ConfigureAwait(false);
        return true;
    }

    /// <summary>The largest request body a route reads (the POST bodies are small JSON documents).</summary>
    public const int MaxBodyBytes = 16 * 1024;

    /// <summary>Null when the body is larger than <see cref="MaxBodyBytes"/>.</summary>
    private static async Task<OpsRequest?> ToOpsRequestAsync(IHttpRequest request)
    {
        var query = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var pair in request.QueryString) query[pair.Key] = pair.Value;
        request.Headers.TryGetValue("Authorization", out var authorization);
        string? body = null;
        if (request.ContentLength > MaxBodyBytes) return null;
        if (request.ContentLength > 0 && request.Body is { } stream)
        {
            var buffer = new byte[request.ContentLength];
            var read = 0;
            while (read < buffer.Length)
            {
                var n = await stream.ReadAsync(buffer.AsMemory(read), request.TimeoutCancellationToken).ConfigureAwait(false);
                if (n == 0) break;
                read += n;
            }
            body = System.Text.Encoding.UTF8.GetString(buffer, 0, read);
        }
        return new OpsRequest(request.Method.ToUpperInvariant(), request.Path, query, authorization,
            request.RemoteEndPoint?.ToString() ?? "unknown", body);
    }

    private static async Task WriteAsync(IHttpResponse target, OpsResponse response)
    {
        target.StatusCode = (HttpStatusCode)response.Status;
        target.Headers["Cache-Control"] = "no-store";
        target.Headers["X-Content-Type-Options"] = "nosniff";
        if (response.Headers is not null)
            foreach (var header in response.Headers)
                target.Headers[header.Key] = header.Value;
        await target.WriteAllAsync(response.Body, response.ContentType).ConfigureAwait(false);
    }
}

/// <summary>What <see cref="OpsRouteProvider"/> needs; carried into the ActorSystem as a <see cref="Akka.Actor.Setup.Setup"/>.</summary>
public sealed class OpsSetup : Akka.Actor.Setup.Setup
{
    public OpsSetup(OpsSettings settings, Npgsql.NpgsqlDataSource platform, OpsWriteSettings? writes = null)
    {
        Settings = settings;
        Platform = platform;
        Writes = writes ?? OpsWriteSettings.Disabled;
    }

    /// <summary>What <c>POST /writes/unblock</c> needs: the super_admin credential's hash and the integrity checks' settings.</summary>
    public OpsWriteSettings Writes { get; }

    /// <summary>The settings with the port actually used (a free one when configured as 0).</summary>
    public OpsSettings Settings { get; }

    public Npgsql.NpgsqlDataSource Platform { get; }

    public Uri BaseUri => new($"http://{(IPAddress.TryParse(Settings.Hostname, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{Settings.Hostname}]" : Settings.Hostname)}:{Settings.Port}/");
}

/// <summary>
/// What <c>POST /writes/unblock</c> needs from the node's settings: the super_admin credential
/// (<c>clawkeeper.security.super-admin-token-sha256</c>) and the data-integrity checks it re-runs.
/// </summary>
public sealed record OpsWriteSettings(ClawKeeper.Actors.Settings.SecuritySettings Security, ClawKeeper.Actors.Settings.DataIntegritySettings? Integrity)
{
    /// <summary>No credential configured: the route refuses every attempt (401).</summary>
    public static readonly OpsWriteSettings Disabled = new(new ClawKeeper.Actors.Settings.SecuritySettings(""), null);
}
