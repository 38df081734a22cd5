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

    [DockerComposeFact]
    public async Task The_compose_file_describes_postgres_an_smtp_sink_and_three_seeded_nodes_with_healthchecks()
    {
        var start = new ProcessStartInfo(Binary!, "-f docker-compose.yml config")
        {
            WorkingDirectory = RepositoryRoot(), RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        var errors = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, errors);

        foreach (var service in new[] { "postgres", "smtp", "build", "migrate", "node1", "node2", "node3" })
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
