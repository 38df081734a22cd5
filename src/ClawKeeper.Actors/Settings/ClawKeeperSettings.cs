using Akka.Configuration;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Actors.Orchestrators;
using Npgsql;

namespace ClawKeeper.Actors.Settings;

/// <summary>Typed, validated view of the <c>clawkeeper { ... }</c> configuration.</summary>
public sealed record ClawKeeperSettings(
    NodeSettings Node,
    LoggingSettings Logging,
    string PlatformConnectionString,
    JournalSettings Journal,
    HeartbeatSettings Heartbeat,
    SystemHealthSettings SystemHealth,
    TaskQueueSettings TaskQueue,
    DataIntegritySettings DataIntegrity,
    Checks.SecurityPosture.SecurityPostureSettings SecurityPosture,
    Checks.IntegrationHealth.IntegrationHealthSettings IntegrationHealth,
    SecuritySettings Security,
    Alerts.AlertSettings Alerts,
    IReadOnlyList<OrchestratorDefinition> Orchestrators,
    FleetSettings Fleet,
    IReadOnlyList<ProviderSettings> Integrations)
{
    public const string Root = "clawkeeper";

    /// <summary>Reads and validates; throws <see cref="InvalidSettingsException"/> naming every bad key.</summary>
    public static ClawKeeperSettings FromConfig(Config config)
    {
        var r = new SettingsReader(config);
        const string k = Root;

        var node = new NodeSettings(
            Hostname: r.String($"{k}.node.hostname", "127.0.0.1"),
            Port: r.Int($"{k}.node.port", 4053, 0, 65535),
            SeedNodes: r.StringList($"{k}.node.seed-nodes"));
        foreach (var seed in node.SeedNodes)
            if (!seed.StartsWith("akka.tcp://", StringComparison.Ordinal) || !seed.Contains('@'))
                r.AddError($"{k}.node.seed-nodes", $"'{seed}' is not an Akka address like akka.tcp://clawkeeper@host:4053");
        if (string.IsNullOrWhiteSpace(node.Hostname))
            r.AddError($"{k}.node.hostname", "must not be empty");

        var logging = new LoggingSettings(
            Format: r.OneOf($"{k}.logging.format", "text", "text", "json"),
            Level: r.OneOf($"{k}.logging.level", "Information", "Verbose", "Debug", "Information", "Warning", "Error"));

        var platform = r.String($"{k}.platform-db.connection-string");
        ValidateConnectionString(r, $"{k}.platform-db.connection-string", platform);

        var journalCs = r.String($"{k}.journal.connection-string");
        ValidateConnectionString(r, $"{k}.journal.connection-string", journalCs);
        var journal = new JournalSettings(journalCs, r.String($"{k}.journal.sqlite-path", ".clawkeeper/journal.db"));
        if (journal.ConnectionString.Length == 0 && string.IsNullOrWhiteSpace(journal.SqlitePath))
            r.AddError($"{k}.journal.sqlite-path", "must name a file when no journal connection string is set");

        var interval = r.Duration($"{k}.heartbeat.interval", TimeSpan.FromHours(4), min: TimeSpan.FromSeconds(1));
        var heartbeat = new HeartbeatSettings(
            Interval: interval,
            InitialDelay: r.Duration($"{k}.heartbeat.initial-delay", TimeSpan.FromSeconds(15), min: TimeSpan.Zero),
            GroupTimeout: r.Duration($"{k}.heartbeat.group-timeout", TimeSpan.FromSeconds(30), min: TimeSpan.FromMilliseconds(10)),
            EscalateAfterFailures: r.Int($"{k}.heartbeat.escalate-after-failures", 3, 1, 1000),
            SnapshotEvery: r.Int($"{k}.heartbeat.snapshot-every", 50, 1, 100_000),
            Retry: new RetryPolicy(
                r.Duration($"{k}.heartbeat.retry.interval", RetryPolicy.Default.Interval, min: TimeSpan.FromMilliseconds(10)),
                r.Int($"{k}.heartbeat.retry.max-attempts", RetryPolicy.Default.MaxAttempts, 1, 100)),
            Flapping: new FlappingPolicy(
                r.Ratio($"{k}.heartbeat.flapping.low", FlappingPolicy.Default.Low),
                r.Ratio($"{k}.heartbeat.flapping.high", FlappingPolicy.Default.High),
                r.Int($"{k}.heartbeat.flapping.window", FlappingPolicy.Default.Window, 3, 100)),
            SpoolPath: r.String($"{k}.heartbeat.spool-path", HeartbeatSettings.DefaultSpoolPath).Trim());
        ValidateSpoolPath(r, $"{k}.heartbeat.spool-path", heartbeat.SpoolPath);
        if (heartbeat.GroupTimeout >= heartbeat.Interval)
            r.AddError($"{k}.heartbeat.group-timeout", $"must be shorter than clawkeeper.heartbeat.interval ({heartbeat.Interval})");
        if (heartbeat.RetryPolicy.MaxAttempts > 1 && heartbeat.RetryPolicy.Interval >= heartbeat.Interval)
            r.AddError($"{k}.heartbeat.retry.interval", $"must be shorter than clawkeeper.heartbeat.interval ({heartbeat.Interval}): retries confirm a failure before the next heartbeat");
        if (heartbeat.FlappingPolicy.Low > heartbeat.FlappingPolicy.High)
            r.AddError($"{k}.heartbeat.flapping.low", $"must not be above clawkeeper.heartbeat.flapping.high ({heartbeat.FlappingPolicy.High})");

        const string sh = $"{k}.checks.system-health";
        var systemHealth = new SystemHealthSettings(
            ApiUrl: r.AbsoluteHttpUrl($"{sh}.api-server.url"),
            ApiMaxResponseTime: r.Duration($"{sh}.api-server.max-response-time", TimeSpan.FromMilliseconds(100)),
            ApiTimeout: r.Duration($"{sh}.api-server.timeout", TimeSpan.FromSeconds(2)),
            DatabaseTimeout: r.Duration($"{sh}.database.timeout", TimeSpan.FromSeconds(5)),
            OrchestratorPingTimeout: r.Duration($"{sh}.orchestrators.ping-timeout", TimeSpan.FromSeconds(2)),
            WorkerPoolWarnBelowFreeRatio: r.Ratio($"{sh}.worker-pool.warn-below-free-ratio", 0.2),
            WorkerPoolTimeout: r.Duration($"{sh}.worker-pool.timeout", TimeSpan.FromSeconds(3)),
            CircuitBreakersTimeout: r.Duration($"{sh}.circuit-breakers.timeout", TimeSpan.FromSeconds(1)));

        const string tq = $"{k}.checks.task-queue";
        var taskQueue = new TaskQueueSettings(
            Timeout: r.Duration($"{tq}.timeout", TimeSpan.FromSeconds(10)),
            MaxPending: r.Int($"{tq}.max-pending", 100, 1),
            StuckAfter: r.Duration($"{tq}.stuck-after", TimeSpan.FromHours(1), min: TimeSpan.FromSeconds(1)),
            Window: r.Duration($"{tq}.window", TimeSpan.FromHours(1), min: TimeSpan.FromSeconds(1)),
            MaxErrorRate: r.Ratio($"{tq}.max-error-rate", 0.05),
            MaxAverageLatency: r.Duration($"{tq}.max-average-latency", TimeSpan.FromSeconds(60)),
            SampleSize: r.Int($"{tq}.sample-size", 5, 1, 100));

        const string di = $"{k}.checks.data-integrity";
        var dataIntegrity = new DataIntegritySettings(
            Timeout: r.Duration($"{di}.timeout", TimeSpan.FromMinutes(15)),
            FullVerificationEvery: r.Duration($"{di}.full-verification-every", TimeSpan.FromHours(24), min: TimeSpan.FromSeconds(1)),
            SampleSize: r.Int($"{di}.sample-size", 5, 1, 100),
            ApplicationRole: r.String($"{di}.application-role", "clawkeeper_app"),
            BlockWrites: r.Boolean($"{di}.block-writes", true));
        if (string.IsNullOrWhiteSpace(dataIntegrity.ApplicationRole))
            r.AddError($"{di}.application-role", "must name the role the application connects as");

        var tokenHash = r.String($"{k}.security.super-admin-token-sha256").Trim().ToLowerInvariant();
        if (tokenHash.Length > 0 && !System.Text.RegularExpressions.Regex.IsMatch(tokenHash, "^[0-9a-f]{64}$"))
            r.AddError($"{k}.security.super-admin-token-sha256", "must be the lower-hex SHA-256 of the token (64 hex digits), e.g. from `printf %s \"$TOKEN\" | sha256sum`");
        var security = new SecuritySettings(tokenHash);
        var alerts = ClawKeeper.Actors.Alerts.AlertSettings.Read(r, $"{k}.alerts");
        var fleet = FleetSettings.Read(r, $"{k}.fleet");
        var securityPosture = Checks.SecurityPosture.SecurityPostureSettings.Read(r, $"{k}.checks.security-posture");
        var integrationHealth = Checks.IntegrationHealth.IntegrationHealthSettings.Read(r, $"{k}.checks.integration-health", $"{k}.integrations");

        var orchestrators = new List<OrchestratorDefinition>();
        foreach (var name in OrchestratorCatalog.Names)
        {
            var key = $"{k}.orchestrators.{name}.workers";
            if (!r.Has(key)) r.AddError(key, "is required (the worker-pool size of this orchestrator)");
            orchestrators.Add(new OrchestratorDefinition(name, r.Int(key, 1, 1, 10_000)));
        }
        var orchestratorSection = r.Section($"{k}.orchestrators");
        if (orchestratorSection is not null)
            foreach (var name in orchestratorSection.AsEnumerable().Select(kv => kv.Key.Split('.')[0]).Distinct())
                if (!OrchestratorCatalog.Names.Contains(name))
                    r.AddError($"{k}.orchestrators.{name}", $"is not a ClawKeeper orchestrator (known: {string.Join(", ", OrchestratorCatalog.Names)})");

        var providers = new List<ProviderSettings>();
        foreach (var provider in ProviderSettings.KnownProviders)
        {
            var p = $"{k}.integrations.{provider}.breaker";
            providers.Add(new ProviderSettings(provider,
                MaxFailures: r.Int($"{p}.max-failures", 5, 1, 1000),
                CallTimeout: r.Duration($"{p}.call-timeout", TimeSpan.FromSeconds(10)),
                ResetTimeout: r.Duration($"{p}.reset-timeout", TimeSpan.FromSeconds(60))));
        }

        if (r.Errors.Count > 0) throw new InvalidSettingsException(r.Errors);
        return new ClawKeeperSettings(node, logging, platform, journal, heartbeat, systemHealth, taskQueue, dataIntegrity, securityPosture, integrationHealth, security, alerts, orchestrators, fleet, providers);
    }

    private static void ValidateSpoolPath(SettingsReader r, string key, string? path)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            r.AddError(key, "must name a file: the heartbeat keeps its state there while the journal cannot be written");
            return;
        }
        string full;
        try
        {
            full = Path.GetFullPath(path);
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
        {
            r.AddError(key, $"'{path}' is not a valid file path: {ex.Message}");
            return;
        }
        if (Directory.Exists(full))
            r.AddError(key, $"'{path}' is a directory; name a file such as {HeartbeatSettings.DefaultSpoolPath}");
        else if (Path.GetDirectoryName(full) is { } dir && File.Exists(dir))
            r.AddError(key, $"'{path}': its folder '{dir}' is a file");
    }

    private static void ValidateConnectionString(SettingsReader r, string key, string value)
    {
        if (value.Length == 0) return;
        try
        {
            var builder = new NpgsqlConnectionStringBuilder(value);
            if (string.IsNullOrWhiteSpace(builder.Host))
                r.AddError(key, "names no Host");
        }
        catch (Exception)
        {
            // The value may hold a password: never echo it.
            r.AddError(key, "is not a valid Npgsql connection string (value not shown: it may contain a password)");
        }
    }
}

public sealed record NodeSettings(string Hostname, int Port, IReadOnlyList<string> SeedNodes);

public sealed record LoggingSettings(string Format, string Level);

public sealed record JournalSettings(string ConnectionString, string SqlitePath)
{
    public bool UsesPostgres => ConnectionString.Length > 0;
}

/// <param name="Retry">Soft/hard states: a problem is re-checked this often, this many attempts, before it is confirmed (hard). Null = <see cref="Heartbeat.RetryPolicy.Default"/>.</param>
/// <param name="Flapping">Flap detection thresholds. Null = <see cref="Heartbeat.FlappingPolicy.Default"/>.</param>
public sealed record HeartbeatSettings(
    TimeSpan Interval,
    TimeSpan InitialDelay,
    TimeSpan GroupTimeout,
    int EscalateAfterFailures,
    int SnapshotEvery,
    RetryPolicy? Retry = null,
    FlappingPolicy? Flapping = null,
    string? SpoolPath = null)
{
    /// <summary>The heartbeat's local durable spool (state kept while the journal cannot be written).</summary>
    public const string DefaultSpoolPath = ".clawkeeper/heartbeat-spool.db";

    public RetryPolicy RetryPolicy => Retry ?? RetryPolicy.Default;

    public FlappingPolicy FlappingPolicy => Flapping ?? FlappingPolicy.Default;
}

public sealed record SystemHealthSettings(
    Uri? ApiUrl,
    TimeSpan ApiMaxResponseTime,
    TimeSpan ApiTimeout,
    TimeSpan DatabaseTimeout,
    TimeSpan OrchestratorPingTimeout,
    double WorkerPoolWarnBelowFreeRatio,
    TimeSpan WorkerPoolTimeout,
    TimeSpan CircuitBreakersTimeout);

public sealed record TaskQueueSettings(
    TimeSpan Timeout,
    int MaxPending,
    TimeSpan StuckAfter,
    TimeSpan Window,
    double MaxErrorRate,
    TimeSpan MaxAverageLatency,
    int SampleSize);

/// <param name="Timeout">Bound of one data-integrity check (a full verification of a large platform takes minutes).</param>
/// <param name="FullVerificationEvery">Cadence of the full re-verification; rounds in between read only what is new.</param>
public sealed record DataIntegritySettings(TimeSpan Timeout, TimeSpan FullVerificationEvery, int SampleSize, string ApplicationRole, bool BlockWrites);

/// <param name="SuperAdminTokenSha256">Lower-hex SHA-256 of the super_admin token; empty = super_admin operations disabled.</param>
public sealed record SecuritySettings(string SuperAdminTokenSha256)
{
    public bool SuperAdminConfigured => SuperAdminTokenSha256.Length == 64;
}

public sealed record ProviderSettings(string Provider, int MaxFailures, TimeSpan CallTimeout, TimeSpan ResetTimeout)
{
    public static readonly IReadOnlyList<string> KnownProviders = new[] { "plaid", "stripe", "quickbooks", "xero" };
}
