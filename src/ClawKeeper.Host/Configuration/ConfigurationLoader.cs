using System.Collections;
using System.Text.Json;
using Akka.Configuration;

namespace ClawKeeper.Host.Configuration;

/// <summary>A configuration problem the operator can fix: exit 2, the message names the key or file.</summary>
public sealed class ConfigurationProblemException(string message) : Exception(message);

/// <summary>
/// Builds the effective HOCON: <c>hocon/clawkeeper.conf</c> and <c>hocon/akka.conf</c>, then overlays
/// (e.g. <c>hocon/demo.conf</c>), then <c>--config FILE</c>, then the environment (highest).
/// </summary>
public static class ConfigurationLoader
{
    public const string PlatformDbVariable = "CLAWKEEPER_PLATFORM_DB";
    public const string JournalDbVariable = "CLAWKEEPER_JOURNAL_DB";

    /// <summary>Environment variable → setting (the environment wins over every file).</summary>
    public static readonly IReadOnlyList<(string Variable, string Key)> EnvironmentOverrides = new[]
    {
        (PlatformDbVariable, "clawkeeper.platform-db.connection-string"),
        (JournalDbVariable, "clawkeeper.journal.connection-string"),
        ("CLAWKEEPER_NODE_HOSTNAME", "clawkeeper.node.hostname"),
        ("CLAWKEEPER_NODE_PORT", "clawkeeper.node.port"),
        ("CLAWKEEPER_SUPER_ADMIN_TOKEN_SHA256", "clawkeeper.security.super-admin-token-sha256"),
        ("CLAWKEEPER_OPS_PORT", "clawkeeper.ops.port"),
        ("CLAWKEEPER_OPS_BIND_HOSTNAME", "clawkeeper.ops.bind-hostname"),
        ("CLAWKEEPER_OPS_TOKEN_SHA256", "clawkeeper.ops.token-sha256"),
        ("CLAWKEEPER_API_PORT", "clawkeeper.api.port"),
        ("CLAWKEEPER_API_HOSTNAME", "clawkeeper.api.hostname"),
        ("CLAWKEEPER_API_ENABLED", "clawkeeper.api.enabled"),
        ("CLAWKEEPER_API_SUBMISSION_BUFFER", "clawkeeper.api.submission-buffer.path"),
        ("CLAWKEEPER_SMTP_HOST", "clawkeeper.alerts.smtp.host"),
        ("CLAWKEEPER_SMTP_PORT", "clawkeeper.alerts.smtp.port"),
        ("CLAWKEEPER_SMTP_TLS", "clawkeeper.alerts.smtp.tls"),
        ("CLAWKEEPER_SMTP_USERNAME", "clawkeeper.alerts.smtp.username"),
        ("CLAWKEEPER_SMTP_PASSWORD", "clawkeeper.alerts.smtp.password"),
        ("CLAWKEEPER_SMTP_FROM", "clawkeeper.alerts.smtp.from"),
        ("CLAWKEEPER_DISCORD_WEBHOOK_SUPER_ADMIN", "clawkeeper.alerts.audiences.super_admin.discord-webhook"),
        ("CLAWKEEPER_DISCORD_WEBHOOK_ADMIN", "clawkeeper.alerts.audiences.admin.discord-webhook"),
    };

    /// <summary>Environment variables holding a comma-separated list.</summary>
    public static readonly IReadOnlyList<(string Variable, string Key)> EnvironmentListOverrides = new[]
    {
        ("CLAWKEEPER_SEED_NODES", "clawkeeper.node.seed-nodes"),
        ("CLAWKEEPER_ALERT_EMAIL_SUPER_ADMIN", "clawkeeper.alerts.audiences.super_admin.email"),
        ("CLAWKEEPER_ALERT_EMAIL_ADMIN", "clawkeeper.alerts.audiences.admin.email"),
    };

    public static string HoconDirectory => Path.Combine(AppContext.BaseDirectory, "hocon");

    public static Config Load(IEnumerable<string> overlays, FileInfo? configFile, IDictionary environment, IReadOnlyDictionary<string, string>? overrides = null)
    {
        var config = ParseFile(Path.Combine(HoconDirectory, "clawkeeper.conf"), "built-in hocon/clawkeeper.conf")
            .WithFallback(ParseFile(Path.Combine(HoconDirectory, "akka.conf"), "built-in hocon/akka.conf"));
        foreach (var overlay in overlays)
            config = ParseFile(Path.Combine(HoconDirectory, overlay), $"built-in hocon/{overlay}").WithFallback(config);
        if (configFile is not null)
        {
            if (!configFile.Exists)
                throw new ConfigurationProblemException($"--config: file not found: {configFile.FullName}");
            config = ParseFile(configFile.FullName, $"--config {configFile.FullName}").WithFallback(config);
        }

        var fromEnvironment = new List<string>();
        foreach (var (variable, key) in EnvironmentOverrides)
            AddIfSet(environment, variable, key, fromEnvironment);
        foreach (var (variable, key) in EnvironmentListOverrides)
            if (environment[variable] is string list && list.Length > 0)
                fromEnvironment.Add($"{key} = [{string.Join(", ", list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(Quote))}]");
        if (fromEnvironment.Count > 0)
            config = ConfigurationFactory.ParseString(string.Join("\n", fromEnvironment)).WithFallback(config);
        if (overrides is { Count: > 0 })
            config = ConfigurationFactory.ParseString(string.Join("\n", overrides.Select(kv => $"{kv.Key} = {Quote(kv.Value)}"))).WithFallback(config);
        return config;
    }

    /// <summary>A HOCON string literal (JSON escaping is valid HOCON).</summary>
    public static string Quote(string value) => JsonSerializer.Serialize(value);

    private static void AddIfSet(IDictionary environment, string variable, string key, List<string> lines)
    {
        if (environment[variable] is string value && value.Length > 0)
            lines.Add($"{key} = {Quote(value)}");
    }

    private static Config ParseFile(string path, string description)
    {
        if (!File.Exists(path))
            throw new ConfigurationProblemException($"{description}: file not found ({path})");
        var text = File.ReadAllText(path);
        // Akka's parser accepts an unclosed '{' or a stray token and the process would run on defaults: check the shape first.
        if (HoconStructure.Check(text) is { } error)
            throw new ConfigurationProblemException($"{description}: not valid HOCON at {path}:{error.Line}:{error.Column} (line {error.Line}, column {error.Column}): {error.Problem}");
        try
        {
            return ConfigurationFactory.ParseString(text);
        }
        catch (Exception ex)
        {
            throw new ConfigurationProblemException($"{description}: not valid HOCON: {ex.Message}");
        }
    }
}
