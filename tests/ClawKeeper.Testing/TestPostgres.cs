using ClawKeeper.Platform.LocalServer;
using Npgsql;

namespace ClawKeeper.Testing;

/// <summary>
/// The PostgreSQL server the tests of this process use, shared by every test:
/// <list type="bullet">
/// <item>the server named by <c>CLAWKEEPER_TEST_PG</c> (a superuser connection string) when it is set;</item>
/// <item>otherwise ONE throwaway <see cref="LocalPostgresServer"/>, started on first use in a temp
/// directory and stopped when the process exits.</item>
/// </list>
/// </summary>
public static class TestPostgres
{
    public const string ServerVariable = "CLAWKEEPER_TEST_PG";

    private static readonly Lazy<Task<SharedServer>> Server = new(StartAsync, LazyThreadSafetyMode.ExecutionAndPublication);

    private sealed record SharedServer(string AdminConnectionString, LocalPostgresServer? Local, string? WorkDirectory);

    /// <summary>A superuser connection string to the server's maintenance database.</summary>
    public static async Task<string> AdminConnectionStringAsync() => (await Server.Value).AdminConnectionString;

    /// <summary>The superuser connection string for <paramref name="database"/> on the shared server.</summary>
    public static async Task<string> ConnectionStringForAsync(string database) =>
        new NpgsqlConnectionStringBuilder(await AdminConnectionStringAsync()) { Database = database }.ConnectionString;

    /// <summary>True when the tests use an external server (<c>CLAWKEEPER_TEST_PG</c>).</summary>
    public static bool UsesExternalServer => !string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(ServerVariable));

    /// <summary>The superuser connection string of <c>CLAWKEEPER_TEST_PG</c> (maintenance database <c>postgres</c> unless it names one), or null when unset.</summary>
    public static NpgsqlConnectionStringBuilder? ExternalAdmin()
    {
        var external = Environment.GetEnvironmentVariable(ServerVariable);
        if (string.IsNullOrWhiteSpace(external))
        {
            return null;
        }

        var builder = new NpgsqlConnectionStringBuilder(external);
        if (string.IsNullOrWhiteSpace(builder.Database))
        {
            builder.Database = "postgres";
        }

        return builder;
    }

    private static async Task<SharedServer> StartAsync()
    {
        if (ExternalAdmin() is { } external)
        {
            return new SharedServer(external.ConnectionString, null, null);
        }

        var root = Path.Combine(Path.GetTempPath(), "clawkeeper-test-pg");
        Directory.CreateDirectory(root);
        await StopServersOfDeadProcessesAsync(root);

        var workDirectory = Path.Combine(root, $"{Environment.ProcessId}-{Guid.NewGuid():N}"[..24]);
        var server = await LocalPostgresServer.StartAsync(Path.Combine(workDirectory, "data"));
        // The test host may be killed a few milliseconds after ProcessExit starts (vstest does so),
        // so a detached watchdog makes sure the server goes when this process goes.
        PostgresWatchdog.Start(server, workDirectory, "clawkeeper-test-pg-watchdog");
        await File.WriteAllTextAsync(Path.Combine(workDirectory, SocketDirectoryNote), server.SocketDirectory);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => StopAtExit(server, workDirectory);
        return new SharedServer(server.AdminConnectionString, server, workDirectory);
    }

    private static void StopAtExit(LocalPostgresServer server, string workDirectory)
    {
        try
        {
            server.StopAsync().GetAwaiter().GetResult();
            Directory.Delete(workDirectory, recursive: true);
        }
        catch (Exception ex) when (ex is LocalPostgresServerException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"ClawKeeper.Testing: could not stop the test PostgreSQL server cleanly: {ex.Message}");
        }
    }

    private const string SocketDirectoryNote = "socket-directory.txt";

    /// <summary>A test process that was killed leaves its server running: stop and remove those
    /// (directories are named "&lt;pid&gt;-...").</summary>
    private static async Task StopServersOfDeadProcessesAsync(string root)
    {
        foreach (var directory in Directory.EnumerateDirectories(root))
        {
            var name = Path.GetFileName(directory);
            var dash = name.IndexOf('-', StringComparison.Ordinal);
            if (dash <= 0 || !int.TryParse(name[..dash], out var pid) || IsProcessAlive(pid))
            {
                continue;
            }

            try
            {
                await LocalPostgresServer.StopIfRunningAsync(Path.Combine(directory, "data"));
                var socketNote = Path.Combine(directory, SocketDirectoryNote);
                if (File.Exists(socketNote) && File.ReadAllText(socketNote).Trim() is { Length: > 0 } socketDirectory
                    && Directory.Exists(socketDirectory))
                {
                    Directory.Delete(socketDirectory, recursive: true);
                }

                Directory.Delete(directory, recursive: true);
            }
            catch (Exception ex) when (ex is LocalPostgresServerException or IOException or UnauthorizedAccessException)
            {
                // Leave it; it does not stop this run.
            }
        }
    }

    internal static bool IsProcessAlive(int pid)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }
}
