using System.Text.RegularExpressions;
using ClawKeeper.Actors.Settings;
using AkkaConfig = Akka.Configuration.Config;

namespace ClawKeeper.Host.Ops;

/// <summary>
/// The ops surface: an ASP.NET Core (Kestrel) app on its own port (<c>clawkeeper.ops</c>).
/// </summary>
/// <param name="Hostname">Advertised host of the management endpoint (and the interface it binds unless <paramref name="BindHostname"/> is set).</param>
/// <param name="BindHostname">Interface to bind; empty = <paramref name="Hostname"/>. "0.0.0.0" for every interface (containers).</param>
/// <param name="Port">TCP port; 0 = a free port chosen at start (tests).</param>
/// <param name="TokenSha256">Lower-hex SHA-256 of the ops bearer token; empty = every mutating route is refused.</param>
/// <param name="AskTimeout">How long a route waits for the heartbeat supervisor.</param>
/// <param name="HeartbeatInterval"><c>clawkeeper.heartbeat.interval</c>: ready means a heartbeat completed within two of them.</param>
public sealed record OpsSettings(
    string Hostname,
    string BindHostname,
    int Port,
    string TokenSha256,
    TimeSpan AskTimeout,
    TimeSpan HeartbeatInterval)
{
    public const string DefaultPrefix = "clawkeeper.ops";
    public const string MaxSilenceKey = "clawkeeper.alerts.max-silence";
    public static readonly TimeSpan DefaultMaxSilence = TimeSpan.FromDays(7);
    public static readonly TimeSpan DefaultHealthCache = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Lower-hex SHA-256 of the read token (<c>read-token-sha256</c>); empty = the GET routes are
    /// open, with tenant details hidden unless <see cref="ExposeTenantDetails"/>. When set, every GET
    /// route but the health and metrics routes needs it (or the super_admin token), and shows details.
    /// </summary>
    public string ReadTokenSha256 { get; init; } = "";

    /// <summary><c>expose-tenant-details</c>: without a read token, show tenant ids, task ids, error texts and addresses to anyone.</summary>
    public bool ExposeTenantDetails { get; init; }

    /// <summary><c>health-cache</c>: how long a health report (and the status page's figures) is reused; zero = every request runs the probes.</summary>
    public TimeSpan HealthCache { get; init; } = DefaultHealthCache;

    /// <summary><c>clawkeeper.alerts.max-silence</c>: the longest silence window anyone may set.</summary>
    public TimeSpan MaxSilence { get; init; } = DefaultMaxSilence;

    public bool ReadTokenConfigured => ReadTokenSha256.Length == 64;
    public const int DefaultPort = 8558;
    public static readonly TimeSpan DefaultHeartbeatInterval = TimeSpan.FromHours(4);
    public static readonly TimeSpan DefaultAskTimeout = TimeSpan.FromSeconds(3);

    public static readonly OpsSettings Default = new("127.0.0.1", "", DefaultPort, "", DefaultAskTimeout, DefaultHeartbeatInterval);

    /// <summary>The configuration block with every key, its default and what it means.</summary>
    public const string Hocon = """
        clawkeeper {
          ops {
            # The ops surface (ASP.NET Core on Kestrel): /health/live, /health/ready, /cluster/members
            # (Akka Management's Cluster HTTP shape), /heartbeat/latest, /heartbeat/history, /metrics
            # and the status page at /.
            # Advertised host of the endpoint (and the interface it binds unless bind-hostname is set).
            hostname = "127.0.0.1"
            # Interface to bind; empty = hostname. "0.0.0.0" listens on every interface (containers).
            bind-hostname = ""
            # 0 = a free port chosen at start (tests).
            port = 8558
            # Lower-hex SHA-256 of the ops bearer token (printf %s "$TOKEN" | sha256sum).
            # Empty = every POST route is refused (401). POST /writes/unblock takes the super_admin
            # token instead (clawkeeper.security.super-admin-token-sha256).
            token-sha256 = ""
            # How long a route waits for the heartbeat supervisor (the cluster singleton); also the
            # limit of each readiness probe of /health/ready.
            ask-timeout = 3s
            # Lower-hex SHA-256 of a read token. Empty = GET routes open, tenant details hidden
            # (unless expose-tenant-details = on). Set = every GET route but /health/* and /metrics
            # needs it (Authorization: Bearer <token>, or Basic with the token as password).
            read-token-sha256 = ""
            # Without a read token: show tenant ids, task ids, error texts and source addresses anyway.
            expose-tenant-details = off
            # Health reports (and the status page's figures) are reused this long; 0 = never.
            health-cache = 1s
          }
          # The longest silence window (ops surface and CLI).
          alerts.max-silence = 7d
        }
        """;

    private static readonly Regex LowerHexSha256 = new("^[0-9a-f]{64}$", RegexOptions.CultureInvariant);

    public bool TokenConfigured => TokenSha256.Length == 64;

    public string EffectiveBindHostname => string.IsNullOrWhiteSpace(BindHostname) ? Hostname : BindHostname;

    /// <summary>A node is ready only when a heartbeat completed within this span.</summary>
    public TimeSpan HeartbeatFreshWithin => HeartbeatInterval * 2;

    /// <summary>
    /// Reads the keys under <paramref name="prefix"/> (normally <c>clawkeeper.ops</c>); problems are
    /// added to <paramref name="r"/> with their key. <paramref name="heartbeatInterval"/> is
    /// <c>ClawKeeperSettings.Heartbeat.Interval</c> (default 4 h when not given).
    /// </summary>
    public static OpsSettings Read(SettingsReader r, string prefix, TimeSpan? heartbeatInterval = null)
    {
        var hostname = r.String($"{prefix}.hostname", Default.Hostname).Trim();
        if (hostname.Length == 0)
            r.AddError($"{prefix}.hostname", "must not be empty");
        var bindHostname = r.String($"{prefix}.bind-hostname", "").Trim();
        var port = r.Int($"{prefix}.port", DefaultPort, 0, 65535);
        var token = r.String($"{prefix}.token-sha256").Trim().ToLowerInvariant();
        if (token.Length > 0 && !LowerHexSha256.IsMatch(token))
        {
            // Never echo the value: someone may have pasted the token itself.
            r.AddError($"{prefix}.token-sha256", "must be the lower-hex SHA-256 of the ops token (64 hex digits, value not shown), e.g. from `printf %s \"$TOKEN\" | sha256sum`");
            token = "";
        }
        var askTimeout = r.Duration($"{prefix}.ask-timeout", DefaultAskTimeout, min: TimeSpan.FromMilliseconds(50), max: TimeSpan.FromMinutes(1));
        var readToken = r.String($"{prefix}.read-token-sha256").Trim().ToLowerInvariant();
        if (readToken.Length > 0 && !LowerHexSha256.IsMatch(readToken))
        {
            r.AddError($"{prefix}.read-token-sha256", "must be the lower-hex SHA-256 of the read token (64 hex digits, value not shown), e.g. from `printf %s \"$TOKEN\" | sha256sum`");
            readToken = "";
        }
        var expose = r.Boolean($"{prefix}.expose-tenant-details", false);
        var healthCache = r.Duration($"{prefix}.health-cache", DefaultHealthCache, min: TimeSpan.Zero, max: TimeSpan.FromMinutes(1));
        var maxSilence = r.Duration(MaxSilenceKey, DefaultMaxSilence, min: TimeSpan.FromMinutes(1), max: TimeSpan.FromDays(90));
        return new OpsSettings(hostname.Length == 0 ? Default.Hostname : hostname, bindHostname, port, token, askTimeout,
            heartbeatInterval ?? DefaultHeartbeatInterval)
        {
            ReadTokenSha256 = readToken,
            ExposeTenantDetails = expose,
            HealthCache = healthCache,
            MaxSilence = maxSilence,
        };
    }

    /// <summary>
    /// Reads <c>clawkeeper.ops</c> from the node's configuration with the heartbeat interval of its
    /// settings; throws <see cref="InvalidSettingsException"/> naming every bad key.
    /// </summary>
    public static OpsSettings FromConfig(AkkaConfig config, ClawKeeperSettings settings)
    {
        var r = new SettingsReader(config);
        var ops = Read(r, DefaultPrefix, settings.Heartbeat.Interval);
        if (r.Errors.Count > 0) throw new InvalidSettingsException(r.Errors);
        return ops;
    }
}
