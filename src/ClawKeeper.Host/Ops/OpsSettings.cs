using System.Text.RegularExpressions;
using ClawKeeper.Actors.Settings;
using AkkaConfig = Akka.Configuration.Config;

namespace ClawKeeper.Host.Ops;

/// <summary>
/// The ops surface on the Akka.Management HTTP port (<c>clawkeeper.ops</c>).
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
    public const int DefaultPort = 8558;
    public static readonly TimeSpan DefaultHeartbeatInterval = TimeSpan.FromHours(4);
    public static readonly TimeSpan DefaultAskTimeout = TimeSpan.FromSeconds(3);

    public static readonly OpsSettings Default = new("127.0.0.1", "", DefaultPort, "", DefaultAskTimeout, DefaultHeartbeatInterval);

    /// <summary>The configuration block with every key, its default and what it means.</summary>
    public const string Hocon = """
        clawkeeper {
          ops {
            # The ops surface on the Akka.Management HTTP port: /health/live, /health/ready,
            # /cluster/members, /heartbeat/latest, /heartbeat/history, /metrics and the status page at /.
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
          }
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
        return new OpsSettings(hostname.Length == 0 ? Default.Hostname : hostname, bindHostname, port, token, askTimeout,
            heartbeatInterval ?? DefaultHeartbeatInterval);
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
