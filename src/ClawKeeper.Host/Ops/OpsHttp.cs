using System.Net;
using System.Text.Json;
using ClawKeeper.Actors.Heartbeat;

namespace ClawKeeper.Host.Ops;

/// <summary>What a route sees of an HTTP request (ASP.NET Core stays at the edge, so routes are plain functions of it).</summary>
public sealed record OpsRequest(
    string Method,
    string Path,
    IReadOnlyDictionary<string, string?> Query,
    string? Authorization,
    string Remote,
    string? Body = null)
{
    /// <summary>Set by the read gate: tenant ids, task ids, error texts and addresses may be shown (read token presented, or exposed by configuration).</summary>
    public bool Details { get; init; }

    /// <summary>Set by the token gates: who the credential says made the request (<c>ops</c> or <c>super_admin</c>).</summary>
    public string? Principal { get; init; }
}

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

/// <summary>What the ops server needs; carried into the ActorSystem as a <see cref="Akka.Actor.Setup.Setup"/> (so <c>OpsBaseUri()</c> finds it).</summary>
public sealed class OpsSetup : Akka.Actor.Setup.Setup
{
    public OpsSetup(OpsSettings settings, Npgsql.NpgsqlDataSource platform, OpsWriteSettings? writes = null)
    {
        ConfiguredSettings = settings;
        Platform = platform;
        Writes = writes ?? OpsWriteSettings.Disabled;
    }

    /// <summary>What <c>POST /writes/unblock</c> needs: the super_admin credential's hash and the integrity checks' settings.</summary>
    public OpsWriteSettings Writes { get; }

    private int _boundPort;

    /// <summary>The settings; with <see cref="OpsSettings.Port"/> = the port actually bound once the server listens (a free one when configured as 0).</summary>
    public OpsSettings Settings => _boundPort == 0 ? ConfiguredSettings : ConfiguredSettings with { Port = _boundPort };

    public OpsSettings ConfiguredSettings { get; }

    /// <summary>The server's health cache once it listens (for measurements).</summary>
    internal OpsHealthCache? Health { get; set; }

    /// <summary>Called by the server once it listens.</summary>
    internal void Bound(int port) => Volatile.Write(ref _boundPort, port);

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
