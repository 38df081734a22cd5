using System.Diagnostics;
using Xunit;

namespace ClawKeeper.Host.Tests.Deployment;

/// <summary>Skipped, with the reason, only when Debian's docker-compose is not installed (no engine is needed for `config`).</summary>
public sealed class DockerComposeFactAttribute : FactAttribute
{
    public DockerComposeFactAttribute()
    {
        if (DockerComposeSpec.Binary is null)
            Skip = "docker-compose is not installed (apt-get install -y docker-compose; .ci/setup --with-test-tools does it)";
    }
}

/// <summary>docker-compose.yml as `docker-compose config` resolves it: the services, seeds, healthchecks and restart policies the README promises.</summary>
public class DockerComposeSpec
{
    public static string? Binary => (Environment.GetEnvironmentVariable("PATH") ?? "")
        .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
        .Select(dir => Path.Combine(dir, "docker-compose"))
        .FirstOrDefault(File.Exists);

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "ClawKeeper.Actors.sln"))) directory = directory.Parent;
        return directory?.FullName ?? throw new DirectoryNotFoundException("repository root not found");
    }

    public const string OwnerPassword = "owner-pw-for-the-spec";
    public const string NodePassword = "node-pw-for-the-spec";
    public const string JournalPassword = "journal-pw-for-the-spec";

    /// <summary><c>docker-compose config</c> with the given variables (null = unset; the caller's own are removed).</summary>
    private static async Task<(int ExitCode, string Output, string Errors)> ConfigAsync(string? owner = OwnerPassword, string? node = NodePassword, string? journal = JournalPassword)
    {
        var start = new ProcessStartInfo(Binary!, "-f docker-compose.yml config")
        {
            WorkingDirectory = RepositoryRoot(), RedirectStandardOutput = true, RedirectStandardError = true,
        };
        foreach (var (name, value) in new[] { ("POSTGRES_PASSWORD", owner), ("CLAWKEEPER_NODE_DB_PASSWORD", node), ("CLAWKEEPER_JOURNAL_DB_PASSWORD", journal) })
            if (value is null) start.Environment.Remove(name);
            else start.Environment[name] = value;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await output, await errors);
    }

    [DockerComposeFact]
    public async Task The_compose_file_refuses_to_start_without_each_password()
    {
        foreach (var (owner, node, journal, named) in new[]
                 {
                     ((string?)null, (string?)NodePassword, (string?)JournalPassword, "POSTGRES_PASSWORD"),
                     (OwnerPassword, null, JournalPassword, "CLAWKEEPER_NODE_DB_PASSWORD"),
                     (OwnerPassword, NodePassword, null, "CLAWKEEPER_JOURNAL_DB_PASSWORD"),
                 })
        {
            var (exitCode, _, errors) = await ConfigAsync(owner, node, journal);
            Assert.NotEqual(0, exitCode);
            Assert.Contains(named, errors);
        }
    }

    [DockerComposeFact]
    public async Task The_nodes_connect_as_the_monitoring_role_and_only_migrate_and_roles_hold_the_owner_password()
    {
        var (exitCode, output, errors) = await ConfigAsync();
        Assert.True(exitCode == 0, errors);
        Assert.Equal(3, CountOf(output, $"CLAWKEEPER_PLATFORM_DB: Host=postgres;Port=5432;Database=clawkeeper;Username=clawkeeper_node;Password={NodePassword}"));
        Assert.Equal(3, CountOf(output, $"CLAWKEEPER_JOURNAL_DB: Host=postgres;Port=5432;Database=clawkeeper_journal;Username=clawkeeper_journal;Password={JournalPassword}"));
        // postgres itself, migrate and roles: nowhere else (no node holds the owner's password).
        Assert.Equal(3, CountOf(output, OwnerPassword));
        Assert.Contains("\n  roles:\n", output);
        Assert.Contains("/roles.sql", output);
        Assert.DoesNotContain("clawkeeper-dev", output);
    }

    [DockerComposeFact]
    public async Task The_compose_file_describes_postgres_an_smtp_sink_and_three_seeded_nodes_with_healthchecks()
    {
        var (exitCode, output, errors) = await ConfigAsync();
        Assert.True(exitCode == 0, errors);

        foreach (var service in new[] { "postgres", "smtp", "build", "migrate", "roles", "node1", "node2", "node3" })
            Assert.Contains($"\n  {service}:\n", output);
        Assert.Equal(3, CountOf(output, "CLAWKEEPER_SEED_NODES: akka.tcp://clawkeeper@node1:4053,akka.tcp://clawkeeper@node2:4053"));
        foreach (var node in new[] { "node1", "node2", "node3" })
            Assert.Contains($"CLAWKEEPER_NODE_HOSTNAME: {node}", output);
        Assert.Equal(3, CountOf(output, "http://127.0.0.1:8558/health/live"));
        Assert.True(CountOf(output, "restart: unless-stopped") >= 5, "postgres, smtp and the three nodes restart");
        Assert.Contains("pg_isready", output);
    }

    private static int CountOf(string text, string value)
    {
        var count = 0;
        for (var i = text.IndexOf(value, StringComparison.Ordinal); i >= 0; i = text.IndexOf(value, i + value.Length, StringComparison.Ordinal)) count++;
        return count;
    }
}
