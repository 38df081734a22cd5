using System.Net;
using ClawKeeper.Actors.Checks.SecurityPosture;
using ClawKeeper.Actors.Settings;
using AkkaConfig = Akka.Configuration.Config;

namespace ClawKeeper.Host.Api;

/// <summary>
/// The ClawKeeper API server hosted by a node (<c>clawkeeper.api</c>; defaults and comments in
/// <c>hocon/clawkeeper.conf</c>).
/// </summary>
/// <param name="Enabled">False = the node hosts no API (the checks then need configured URLs or are skipped).</param>
/// <param name="Hostname">Interface to bind: an IP address, or <c>localhost</c> (= 127.0.0.1). "0.0.0.0" = every interface.</param>
/// <param name="Port">TCP port; 0 = a free port chosen at the first start and kept across restarts (demo, tests).</param>
/// <param name="RatePermits">Requests one API key (or one remote address without a valid key) may make per window.</param>
/// <param name="RateWindow">The fixed window of the rate limiter.</param>
/// <param name="BufferPath">SQLite file of the durable submission buffer (tasks accepted while the database is unreachable).</param>
/// <param name="BufferCapacity">Most tasks the buffer holds; past it POST /api/tasks answers 503 with Retry-After.</param>
/// <param name="RetryAfter">Retry-After given with a 503 (buffer full, database unreachable for an unverifiable key, writes blocked).</param>
/// <param name="KeyCacheTtl">While the database is unreachable, a key validated against it within this span is still accepted.</param>
/// <param name="CommandTimeout">Deadline of one SQL statement of a request.</param>
/// <param name="ReconnectMinBackoff">First delay of the flusher's reconnect backoff (doubles, with jitter) while the database is down.</param>
/// <param name="ReconnectMaxBackoff">Largest delay of that backoff.</param>
/// <param name="MaxBodyBytes">Largest request body accepted (413 beyond).</param>
/// <param name="AddressPermits">Requests one remote address may make per <paramref name="RateWindow"/> before any key is looked up (keys validated recently and the heartbeat's probe are not counted): bounds the key lookups a flood of random keys causes.</param>
/// <param name="RefusalEventWindow">Refused requests are recorded in <c>security_events</c> once per source and reason per window, with their count.</param>
/// <param name="MaxPoolSize">Most connections the API's own pool opens to the platform database (the heartbeat and the fleet use another pool).</param>
/// <param name="PoolTimeout">How long a request waits for a connection of that pool; then 503 with Retry-After (the database is not considered down).</param>
public sealed record ApiSettings(
    bool Enabled,
    string Hostname,
    int Port,
    int RatePermits,
    TimeSpan RateWindow,
    string BufferPath,
    int BufferCapacity,
    TimeSpan RetryAfter,
    TimeSpan KeyCacheTtl,
    TimeSpan CommandTimeout,
    TimeSpan ReconnectMinBackoff,
    TimeSpan ReconnectMaxBackoff,
    int MaxBodyBytes,
    int AddressPermits = 600,
    TimeSpan RefusalEventWindow = default,
    int MaxPoolSize = 20,
    TimeSpan PoolTimeout = default)
{
    /// <summary>The window, 60 s when unset.</summary>
    public TimeSpan RefusalEventWindow { get; init; } = RefusalEventWindow == default ? TimeSpan.FromSeconds(60) : RefusalEventWindow;

    /// <summary>The pool wait, 3 s when unset.</summary>
    public TimeSpan PoolTimeout { get; init; } = PoolTimeout == default ? TimeSpan.FromSeconds(3) : PoolTimeout;

    public const string DefaultPrefix = "clawkeeper.api";

    public static readonly ApiSettings Defaults = new(
        Enabled: true,
        Hostname: "127.0.0.1",
        Port: 5080,
        RatePermits: 60,
        RateWindow: TimeSpan.FromMinutes(1),
        BufferPath: ".clawkeeper/api-submissions.db",
        BufferCapacity: 10_000,
        RetryAfter: TimeSpan.FromSeconds(30),
        KeyCacheTtl: TimeSpan.FromMinutes(10),
        CommandTimeout: TimeSpan.FromSeconds(5),
        ReconnectMinBackoff: TimeSpan.FromMilliseconds(500),
        ReconnectMaxBackoff: TimeSpan.FromSeconds(30),
        MaxBodyBytes: 64 * 1024);

    /// <summary>The address Kestrel binds.</summary>
    public IPAddress BindAddress =>
        string.Equals(Hostname, "localhost", StringComparison.OrdinalIgnoreCase) ? IPAddress.Loopback : IPAddress.Parse(Hostname);

    /// <summary>Reads and validates the keys under <paramref name="prefix"/>; problems go to <paramref name="r"/>, each naming its key.</summary>
    public static ApiSettings Read(SettingsReader r, string prefix = DefaultPrefix)
    {
        var d = Defaults;
        var hostname = r.String($"{prefix}.hostname", d.Hostname).Trim();
        if (!string.Equals(hostname, "localhost", StringComparison.OrdinalIgnoreCase) && !IPAddress.TryParse(hostname, out _))
        {
            r.AddError($"{prefix}.hostname", $"must be an IP address (e.g. 127.0.0.1, 0.0.0.0 for every interface) or localhost; got '{hostname}'");
            hostname = d.Hostname;
        }
        var bufferPath = r.String($"{prefix}.submission-buffer.path", d.BufferPath).Trim();
        if (bufferPath.Length == 0)
        {
            r.AddError($"{prefix}.submission-buffer.path", "must name a file (the durable buffer of tasks accepted while the database is down)");
            bufferPath = d.BufferPath;
        }
        var minBackoff = r.Duration($"{prefix}.database.reconnect-min-backoff", d.ReconnectMinBackoff, min: TimeSpan.FromMilliseconds(10), max: TimeSpan.FromMinutes(5));
        var maxBackoff = r.Duration($"{prefix}.database.reconnect-max-backoff", d.ReconnectMaxBackoff, min: TimeSpan.FromMilliseconds(10), max: TimeSpan.FromHours(1));
        if (maxBackoff < minBackoff)
        {
            r.AddError($"{prefix}.database.reconnect-max-backoff", $"must be at least reconnect-min-backoff ({minBackoff.TotalMilliseconds:0}ms)");
            maxBackoff = minBackoff;
        }
        return new ApiSettings(
            Enabled: r.Boolean($"{prefix}.enabled", d.Enabled),
            Hostname: hostname,
            Port: r.Int($"{prefix}.port", d.Port, 0, 65535),
            // The heartbeat's burst is limit + 1 requests and is capped at SecurityPostureSettings.MaxRateLimit.
            RatePermits: r.Int($"{prefix}.rate-limit.permits", d.RatePermits, 1, SecurityPostureSettings.MaxRateLimit - 1),
            RateWindow: r.Duration($"{prefix}.rate-limit.window", d.RateWindow, min: TimeSpan.FromMilliseconds(100), max: TimeSpan.FromHours(1)),
            BufferPath: bufferPath,
            BufferCapacity: r.Int($"{prefix}.submission-buffer.capacity", d.BufferCapacity, 1, 10_000_000),
            RetryAfter: r.Duration($"{prefix}.retry-after", d.RetryAfter, min: TimeSpan.FromSeconds(1), max: TimeSpan.FromHours(1)),
            KeyCacheTtl: r.Duration($"{prefix}.database.key-cache-ttl", d.KeyCacheTtl, min: TimeSpan.Zero, max: TimeSpan.FromHours(24)),
            CommandTimeout: r.Duration($"{prefix}.database.command-timeout", d.CommandTimeout, min: TimeSpan.FromSeconds(1), max: TimeSpan.FromMinutes(5)),
            ReconnectMinBackoff: minBackoff,
            ReconnectMaxBackoff: maxBackoff,
            MaxBodyBytes: r.Int($"{prefix}.max-body-bytes", d.MaxBodyBytes, 1024, 16 * 1024 * 1024),
            AddressPermits: r.Int($"{prefix}.rate-limit.address-permits", d.AddressPermits, 1, 1_000_000),
            RefusalEventWindow: r.Duration($"{prefix}.refusal-events.window", d.RefusalEventWindow, min: TimeSpan.FromSeconds(1), max: TimeSpan.FromHours(1)),
            MaxPoolSize: r.Int($"{prefix}.database.max-pool-size", d.MaxPoolSize, 1, 1000),
            PoolTimeout: r.Duration($"{prefix}.database.pool-timeout", d.PoolTimeout, min: TimeSpan.FromSeconds(1), max: TimeSpan.FromMinutes(1)));
    }

    /// <summary>Reads <c>clawkeeper.api</c>; throws <see cref="InvalidSettingsException"/> naming every bad key.</summary>
    public static ApiSettings FromConfig(AkkaConfig config)
    {
        var r = new SettingsReader(config);
        var api = Read(r);
        if (r.Errors.Count > 0) throw new InvalidSettingsException(r.Errors);
        return api;
    }
}
