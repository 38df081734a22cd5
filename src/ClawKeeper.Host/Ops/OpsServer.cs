using System.Text;
using Akka.Actor;
using Akka.Event;
using ClawKeeper.Host.Node;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;

namespace ClawKeeper.Host.Ops;

/// <summary>
/// The ops surface as an ASP.NET Core app on Kestrel: the routes of <see cref="OpsEndpoints"/>, the
/// health routes through <c>MapHealthChecks</c> (the Akka.Hosting checks filtered by tag), bound
/// with address reuse (<see cref="ListenSockets"/>) so a node killed with SIGKILL listens again at once.
/// </summary>
internal sealed class OpsServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ILoggingAdapter _log;

    private OpsServer(WebApplication app, ILoggingAdapter log)
    {
        _app = app;
        _log = log;
    }

    /// <summary>The port bound (the configured one, or the free one chosen for 0).</summary>
    public int Port { get; private set; }

    /// <summary>Builds and starts the app; throws <see cref="Configuration.ConfigurationProblemException"/> naming the key when the port cannot be bound.</summary>
    public static async Task<OpsServer> StartAsync(ActorSystem system, OpsSetup setup, CancellationToken cancellationToken)
    {
        var settings = setup.ConfiguredSettings;
        var log = Logging.GetLogger(system, "ClawKeeper.Ops");
        var endpoints = new OpsEndpoints(system, settings, setup.Platform, setup.Writes);
        var address = ListenSockets.Resolve(settings.EffectiveBindHostname);

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel =>
        {
            kestrel.Listen(address, settings.Port);
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = OpsHttpAdapter.MaxBodyBytes;
        });
        builder.WebHost.UseSockets(sockets => sockets.CreateBoundListenSocket = ListenSockets.CreateBound);
        // MapHealthChecks runs the node's health checks (registered by Akka.Hosting in the node's
        // container), through a short cache so that probes and the status page cannot hammer the database.
        builder.Services.AddSingleton<HealthCheckService>(endpoints.Health);
        var app = builder.Build();

        app.Use(async (context, next) =>
        {
            context.Response.Headers.CacheControl = "no-store";
            context.Response.Headers.XContentTypeOptions = "nosniff";
            await next(context).ConfigureAwait(false);
            // Routing's own 404 and 405 have no body: say what happened, in JSON like every other answer.
            if (!context.Response.HasStarted && context.Response.ContentLength is null && context.Response.StatusCode is 404 or 405)
                await OpsHttpAdapter.WriteAsync(context, context.Response.StatusCode == 404
                    ? OpsResponse.Error(404, $"no route {context.Request.Path}; the status page at / links the routes")
                    : OpsResponse.Error(405, $"{context.Request.Path} does not answer {context.Request.Method}")).ConfigureAwait(false);
        });
        MapHealth(app, "/health/live", OpsHealthChecks.LivenessTag, endpoints.LiveResponse, endpoints);
        MapHealth(app, "/health/ready", OpsHealthChecks.ReadinessTag, endpoints.ReadyResponse, endpoints);
        foreach (var route in endpoints.Routes())
            app.MapMethods(route.Path, [route.Method], context => OpsHttpAdapter.HandleAsync(context, route, log));

        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw new Configuration.ConfigurationProblemException(
                $"{OpsSettings.DefaultPrefix}.port: the ops surface cannot listen on {address}:{settings.Port} ({e.Message}); " +
                "choose another port (CLAWKEEPER_OPS_PORT, 0 = any free port)");
        }

        var server = new OpsServer(app, log) { Port = new Uri(app.Urls.Single()).Port };
        setup.Bound(server.Port);
        setup.Health = endpoints.Health;
        log.Info("ClawKeeper ops surface listening on {0}:{1} (advertised as {2}): status page {2}, {2}health/ready, {2}metrics",
            address, server.Port, setup.BaseUri);
        return server;
    }

    private static void MapHealth(WebApplication app, string path, string tag, Func<Readiness, OpsResponse> answer, OpsEndpoints endpoints)
    {
        Func<HealthCheckRegistration, bool> predicate = endpoints.TagPredicate(tag);
        app.MapHealthChecks(path, new HealthCheckOptions
        {
            Predicate = predicate,
            AllowCachingResponses = false,
            ResultStatusCodes =
            {
                [HealthStatus.Healthy] = StatusCodes.Status200OK,
                [HealthStatus.Degraded] = StatusCodes.Status200OK,
                [HealthStatus.Unhealthy] = StatusCodes.Status503ServiceUnavailable,
            },
            // The body the specs and tools know (every probe listed, the failing ones named).
            ResponseWriter = (context, report) => OpsHttpAdapter.WriteAsync(context, answer(OpsEndpoints.ReadinessOf(report, tag))),
        }).WithMetadata(new HttpMethodMetadata(["GET", "HEAD"]));
    }

    /// <summary>Stops listening: in-flight requests get <paramref name="grace"/>, then their connections are closed.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        using var limit = new CancellationTokenSource(grace);
        try
        {
            await _app.StopAsync(limit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // the grace period ended; DisposeAsync releases the port
        }
        _log.Info("ClawKeeper ops surface stopped");
    }

    public ValueTask DisposeAsync() => _app.DisposeAsync();
}

/// <summary>Between ASP.NET Core and the plain-function routes: request in, response out.</summary>
internal static class OpsHttpAdapter
{
    /// <summary>The largest request body a route reads (the POST bodies are small JSON documents or forms).</summary>
    public const int MaxBodyBytes = 16 * 1024;

    public static async Task HandleAsync(HttpContext context, OpsEndpoints.Route route, ILoggingAdapter log)
    {
        OpsResponse response;
        try
        {
            var request = await ToOpsRequestAsync(context).ConfigureAwait(false);
            response = request is null
                ? OpsResponse.Error(413, $"the request body is larger than {MaxBodyBytes} bytes")
                : await route.Handler(request, context.RequestAborted).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            return; // the client went away
        }
        catch (BadHttpRequestException e)
        {
            response = OpsResponse.Error(e.StatusCode, $"bad request: {e.Message}");
        }
        catch (Exception e)
        {
            log.Error(e, "ops: {0} {1} failed", context.Request.Method, context.Request.Path);
            response = OpsResponse.Error(500, $"internal error ({e.GetType().Name}); see the node's log");
        }
        await WriteAsync(context, response).ConfigureAwait(false);
    }

    /// <summary>Query string, form fields (a form body) and route values in one dictionary (route values win); null when the body is too large.</summary>
    private static async Task<OpsRequest?> ToOpsRequestAsync(HttpContext context)
    {
        var http = context.Request;
        if (http.ContentLength > MaxBodyBytes) return null;
        var parameters = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in http.Query) parameters[key] = value.ToString();
        string? body = null;
        if (http.HasFormContentType)
        {
            var form = await http.ReadFormAsync(context.RequestAborted).ConfigureAwait(false);
            foreach (var (key, value) in form) parameters[key] = value.ToString();
        }
        else if (http.ContentLength is > 0 || http.Headers.TransferEncoding.Count > 0)
        {
            using var reader = new StreamReader(http.Body, Encoding.UTF8);
            body = await reader.ReadToEndAsync(context.RequestAborted).ConfigureAwait(false);
        }
        foreach (var (key, value) in http.RouteValues)
            if (value is string text) parameters[key] = Uri.UnescapeDataString(text);
        var remote = context.Connection.RemoteIpAddress is { } ip ? $"{ip}:{context.Connection.RemotePort}" : "unknown";
        return new OpsRequest(http.Method.ToUpperInvariant(), http.Path.Value ?? "/", parameters, http.Headers.Authorization.ToString() is { Length: > 0 } auth ? auth : null, remote, body);
    }

    public static async Task WriteAsync(HttpContext context, OpsResponse response)
    {
        context.Response.StatusCode = response.Status;
        if (response.Headers is not null)
            foreach (var (name, value) in response.Headers)
                context.Response.Headers[name] = value;
        context.Response.ContentType = response.ContentType;
        var bytes = Encoding.UTF8.GetBytes(response.Body);
        context.Response.ContentLength = bytes.Length;
        if (!HttpMethods.IsHead(context.Request.Method))
            await context.Response.Body.WriteAsync(bytes, context.RequestAborted).ConfigureAwait(false);
    }
}
