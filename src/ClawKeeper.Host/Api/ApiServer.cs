using System.Diagnostics;
using System.Net;
using System.Threading.RateLimiting;
using ClawKeeper.Actors.Checks.SecurityPosture;
using ClawKeeper.Actors.Repairs;
using ClawKeeper.Platform.Api;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using ILogger = Serilog.ILogger;

namespace ClawKeeper.Host.Api;

/// <summary>
/// The ClawKeeper API server hosted by a node: its own Kestrel <see cref="WebApplication"/>, so the
/// listener can be stopped and started again at run time (the heartbeat's repair for
/// <c>api_server_responding</c>) while the submission buffer and its flusher keep running.
/// A restart binds the same port again (with <c>port = 0</c>, the one chosen at the first start).
/// </summary>
public sealed class ApiServer : IApiServerControl, IRateLimitProbeSource, IHostedService, IAsyncDisposable
{
    private static readonly ILogger Log = Serilog.Log.ForContext("SourceContext", "ClawKeeper.Api");
    private static readonly HttpClient SelfProbe = new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromSeconds(30) }) { Timeout = TimeSpan.FromSeconds(5) };

    private readonly SemaphoreSlim _lifecycle = new(1, 1);
    private WebApplication? _app;
    private Uri? _baseUrl;
    private int? _boundPort;
    private bool _flusherStarted;
    private int _disposed;
    private bool _lifecycleDisposed;

    /// <param name="ownsDataSource">True: <paramref name="platform"/> is the API's own pool (<see cref="CreateDataSource"/>), disposed with the server.</param>
    /// <param name="warmUpClient">The client the warm-up goes through: the node's own (the one <c>api_server_responding</c> uses), so the
    /// check's first request finds its handler and a kept-alive connection warm; null = a private client.</param>
    public ApiServer(ApiSettings settings, NpgsqlDataSource platform, string applicationRole, ApiRequestMetrics? metrics = null, bool ownsDataSource = false, HttpClient? warmUpClient = null)
    {
        _warmUpClient = warmUpClient ?? SelfProbe;
        Settings = settings;
        Gate = new DatabaseGate();
        Keys = new ApiKeyStore(platform, settings.CommandTimeout);
        Tasks = new ApiTaskStore(platform, applicationRole, settings.CommandTimeout);
        try
        {
            Buffer = new SubmissionBuffer(settings.BufferPath, settings.BufferCapacity);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or Microsoft.Data.Sqlite.SqliteException)
        {
            throw new Configuration.ConfigurationProblemException(
                $"{ApiSettings.DefaultPrefix}.submission-buffer.path: cannot open the submission buffer '{settings.BufferPath}': {ex.Message}");
        }
        Authenticator = new ApiAuthenticator(Keys, Gate, settings.KeyCacheTtl);
        Flusher = new SubmissionFlusher(Buffer, Tasks, platform, Gate, settings);
        Metrics = metrics ?? new ApiRequestMetrics();
        Metrics.TrackKeyLookups(() => Keys.Lookups);
        RefusalEvents = RefusalEventThrottle.For(Keys, settings.RefusalEventWindow);
        AddressLimiter = PartitionedRateLimiter.Create<string, string>(address => RateLimitPartition.GetFixedWindowLimiter(address, _ => new FixedWindowRateLimiterOptions
        {
            PermitLimit = settings.AddressPermits,
            Window = settings.RateWindow,
            QueueLimit = 0,
            AutoReplenishment = true,
        }));
        _ownedDataSource = ownsDataSource ? platform : null;
        Endpoints = new ApiEndpoints(this);
    }

    private readonly NpgsqlDataSource? _ownedDataSource;

    /// <summary>
    /// The API's own pool to the platform database (<c>clawkeeper.api.database.max-pool-size</c>, waits at most
    /// <c>pool-timeout</c> for a connection), apart from the pool of the heartbeat and the fleet, so a flood of
    /// API requests cannot take their connections. The connection string is the node's platform connection.
    /// </summary>
    public static NpgsqlDataSource CreateDataSource(string connectionString, ApiSettings settings)
    {
        var builder = new NpgsqlDataSourceBuilder(connectionString);
        builder.ConnectionStringBuilder.MaxPoolSize = settings.MaxPoolSize;
        builder.ConnectionStringBuilder.MinPoolSize = Math.Min(builder.ConnectionStringBuilder.MinPoolSize, settings.MaxPoolSize);
        builder.ConnectionStringBuilder.Timeout = (int)Math.Ceiling(settings.PoolTimeout.TotalSeconds);
        builder.ConnectionStringBuilder.ApplicationName ??= "clawkeeper-api";
        return builder.Build();
    }

    /// <summary>Refused requests, counted and written to <c>security_events</c> once per source and reason per window.</summary>
    public RefusalEventThrottle RefusalEvents { get; }

    /// <summary>The per-address limit that runs before any key lookup.</summary>
    public PartitionedRateLimiter<string> AddressLimiter { get; }

    public ApiSettings Settings { get; }
    public DatabaseGate Gate { get; }
    public ApiKeyStore Keys { get; }
    public ApiTaskStore Tasks { get; }
    public SubmissionBuffer Buffer { get; }
    public ApiAuthenticator Authenticator { get; }
    public SubmissionFlusher Flusher { get; }
    public ApiRequestMetrics Metrics { get; }
    internal ApiEndpoints Endpoints { get; }

    /// <summary>The base URL the listener answers on now (<c>http://127.0.0.1:5080/</c>); null while it is stopped.</summary>
    public Uri? BaseUrl => Volatile.Read(ref _baseUrl);

    /// <summary>The port bound at the first start (kept for restarts); null before.</summary>
    public int? Port => _boundPort;

    /// <summary>The hosted API's <c>GET /api/ping</c> with this process's probe key and the configured limit.</summary>
    public RateLimitProbe? CurrentRateLimitProbe() =>
        BaseUrl is { } url ? new RateLimitProbe(new Uri(url, "api/ping"), Authenticator.ProbeKey, Settings.RatePermits) : null;

    async Task IHostedService.StartAsync(CancellationToken cancellationToken) => await StartAsync(cancellationToken).ConfigureAwait(false);

    async Task IHostedService.StopAsync(CancellationToken cancellationToken) => await StopAsync().ConfigureAwait(false);

    /// <summary>Starts the flusher and the listener; throws when the port cannot be bound (the node does not start then).</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await _lifecycle.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!_flusherStarted)
            {
                Flusher.Start();
                RefusalEvents.Start();
                _flusherStarted = true;
            }
            if (_app is null)
            {
                try
                {
                    await StartListenerLockedAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (IOException ex) when (_boundPort is null)
                {
                    throw new Configuration.ConfigurationProblemException(
                        $"{ApiSettings.DefaultPrefix}.port: the API server cannot listen on {Settings.Hostname}:{Settings.Port} ({ex.Message}); " +
                        "choose another port (CLAWKEEPER_API_PORT, 0 = any free port) or set clawkeeper.api.enabled = false");
                }
            }
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>Stops the listener only (the flusher keeps writing buffered tasks): what an operator or a test does to take the API down.</summary>
    public async Task StopListenerAsync()
    {
        await _lifecycle.WaitAsync().ConfigureAwait(false);
        try
        {
            await StopListenerLockedAsync().ConfigureAwait(false);
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    public async Task<ApiRestartResult> RestartAsync(CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        await _lifecycle.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var wasListening = _app is not null;
            await StopListenerLockedAsync().ConfigureAwait(false);
            Exception? last = null;
            for (var attempt = 1; attempt <= 5; attempt++)
            {
                try
                {
                    await StartListenerLockedAsync(cancellationToken).ConfigureAwait(false);
                    last = null;
                    break;
                }
                catch (Exception ex) when (ex is IOException or InvalidOperationException or System.Net.Sockets.SocketException && !cancellationToken.IsCancellationRequested)
                {
                    last = ex;
                    await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), cancellationToken).ConfigureAwait(false);
                }
            }
            if (last is not null || _baseUrl is null)
            {
                Log.Error("API server restart failed: {Error}", last?.Message);
                return new ApiRestartResult(false,
                    $"API server restart failed after {stopwatch.ElapsedMilliseconds} ms: could not listen on {Settings.Hostname}:{_boundPort ?? Settings.Port} ({last?.Message})");
            }
            var health = await ProbeHealthAsync(_baseUrl, cancellationToken).ConfigureAwait(false);
            var detail = $"API server {(wasListening ? "was listening but not answering; stopped and" : "was not listening;")} started again on {_baseUrl} in {stopwatch.ElapsedMilliseconds} ms; {health}";
            Log.Warning("API server restarted: {Detail}", detail);
            return new ApiRestartResult(true, detail);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex)
        {
            Log.Error(ex, "API server restart failed");
            return new ApiRestartResult(false, $"API server restart failed: {ex.GetType().Name}: {ex.Message}");
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    private static async Task<string> ProbeHealthAsync(Uri baseUrl, CancellationToken ct)
    {
        try
        {
            using var response = await SelfProbe.GetAsync(new Uri(baseUrl, "health"), ct).ConfigureAwait(false);
            return $"GET /health answered {(int)response.StatusCode}";
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            return $"GET /health did not answer yet ({ex.Message})";
        }
    }

    public async Task StopAsync()
    {
        if (Volatile.Read(ref _lifecycleDisposed)) return; // stopped and disposed already
        await _lifecycle.WaitAsync().ConfigureAwait(false);
        try
        {
            await StopListenerLockedAsync().ConfigureAwait(false);
        }
        finally
        {
            _lifecycle.Release();
        }
        await Flusher.DisposeAsync().ConfigureAwait(false);
        await RefusalEvents.DisposeAsync().ConfigureAwait(false);
    }

    private async Task StartListenerLockedAsync(CancellationToken ct)
    {
        var port = _boundPort ?? Settings.Port;
        var app = Build(port);
        try
        {
            await app.StartAsync(ct).ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        var address = new Uri(app.Urls.Single());
        _boundPort = address.Port;
        _app = app;
        var host = Settings.BindAddress.Equals(IPAddress.Any) ? "127.0.0.1" : Settings.BindAddress.Equals(IPAddress.IPv6Any) ? "[::1]" : address.Host;
        Volatile.Write(ref _baseUrl, new UriBuilder(address.Scheme, host, address.Port, "/").Uri);
        Log.Information("ClawKeeper API listening on {Url}", _baseUrl);
        await WarmUpAsync(_baseUrl, ct).ConfigureAwait(false);
    }

    /// <summary>Marks this process's own warm-up requests (a fresh secret per process, so no caller can hide a request from the metrics).</summary>
    internal const string WarmUpHeader = "X-ClawKeeper-Warm-Up";

    private readonly HttpClient _warmUpClient;
    private readonly string _warmUpToken = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));

    /// <summary>True for a request of <see cref="WarmUpAsync"/>: served through the whole pipeline, but not counted in the request metrics.</summary>
    internal bool IsWarmUp(HttpContext context) =>
        context.Request.Headers.TryGetValue(WarmUpHeader, out var token) && token.Count == 1
        && System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(
            System.Text.Encoding.ASCII.GetBytes(token.ToString()), System.Text.Encoding.ASCII.GetBytes(_warmUpToken));

    /// <summary>
    /// The first answer of a cold listener takes 200–500 ms (JIT of Kestrel, the middleware, routing, JSON and the
    /// client's handler), against the 100 ms of <c>api_server_responding</c>: a healthy node's first heartbeat would
    /// fail. A few <c>GET /health</c> through the real listener and pipeline before the node's first heartbeat pay
    /// that cost; they are marked, so the request metrics do not count them (and no heartbeat ran: uptime is untouched).
    /// Best effort: a warm-up that fails is logged and start-up goes on.
    /// </summary>
    private async Task WarmUpAsync(Uri baseUrl, CancellationToken ct)
    {
        var stopwatch = Stopwatch.StartNew();
        var durations = new List<long>();
        // Bounded: a listener that does not answer must not hold the node's start for long (a loaded machine takes seconds).
        using var budget = CancellationTokenSource.CreateLinkedTokenSource(ct);
        budget.CancelAfter(TimeSpan.FromSeconds(20));
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var one = Stopwatch.StartNew();
                using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(baseUrl, "health"));
                request.Headers.Add(WarmUpHeader, _warmUpToken);
                using var response = await _warmUpClient.SendAsync(request, budget.Token).ConfigureAwait(false);
                durations.Add(one.ElapsedMilliseconds);
            }
            Log.Information("API warmed up in {ElapsedMs} ms (GET /health took {Durations} ms)", stopwatch.ElapsedMilliseconds, string.Join(", ", durations));
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            Log.Warning("API warm-up did not complete ({Error}); the first heartbeat may find it slow", ex.Message);
        }
    }

    private async Task StopListenerLockedAsync()
    {
        var app = _app;
        if (app is null) return;
        Volatile.Write(ref _baseUrl, null);
        _app = null;
        try
        {
            // A hung listener must not hang the restart: in-flight requests get 5 s, then their connections are aborted.
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await app.StopAsync(grace.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // the grace period ended; DisposeAsync below releases the port
        }
        finally
        {
            await app.DisposeAsync().ConfigureAwait(false);
        }
        Log.Warning("ClawKeeper API listener stopped");
    }

    private WebApplication Build(int port)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel =>
        {
            kestrel.Listen(Settings.BindAddress, port);
            kestrel.Limits.MaxRequestBodySize = Settings.MaxBodyBytes;
            kestrel.AddServerHeader = false;
        });
        builder.Services.AddRateLimiter(options =>
        {
            options.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            options.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(context =>
            {
                // /health is not limited: a flood of refused requests must not make the API look down.
                if (context.Request.Path.Equals("/health", StringComparison.OrdinalIgnoreCase))
                    return RateLimitPartition.GetNoLimiter("health");
                var partition = ApiEndpoints.CallerOf(context) is ApiCaller.Authenticated caller
                    ? "key:" + caller.KeyId
                    : "addr:" + (context.Connection.RemoteIpAddress?.ToString() ?? "unknown");
                return RateLimitPartition.GetFixedWindowLimiter(partition, _ => new FixedWindowRateLimiterOptions
                {
                    PermitLimit = Settings.RatePermits,
                    Window = Settings.RateWindow,
                    QueueLimit = 0,
                    AutoReplenishment = true,
                });
            });
            options.OnRejected = (context, ct) => Endpoints.RateLimitedAsync(context, ct);
        });
        var app = builder.Build();
        app.Use(Endpoints.MeasureAsync);
        app.Use(Endpoints.PreAuthLimitAsync);
        app.Use(Endpoints.AuthenticateAsync);
        app.UseRateLimiter();
        app.Use(Endpoints.RequireCallerAsync);
        Endpoints.Map(app);
        return app;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        await StopAsync().ConfigureAwait(false);
        Buffer.Dispose();
        AddressLimiter.Dispose();
        if (_ownedDataSource is not null) await _ownedDataSource.DisposeAsync().ConfigureAwait(false);
        Volatile.Write(ref _lifecycleDisposed, true);
        _lifecycle.Dispose();
    }
}
