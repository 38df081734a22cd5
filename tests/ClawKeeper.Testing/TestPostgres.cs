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

    private static async Task<SharedServer> StartAsync()
    {
        var external = Environment.GetEnvironmentVariable(ServerVariable);
        if (!string.IsNullOrWhiteSpace(external))
        {
            var builder = new NpgsqlConnectionStringBuilder(external);
            if (string.IsNullOrWhiteSpace(builder.Database))
            {
                builder.Database = "postgres";
            }

            return new SharedServer(builder.ConnectionString, null, null);
        }

        var root = Path.Combine(Path.GetTempPath(), "clawkeeper-test-pg");
        Directory.CreateDirectory(root);
        await StopServersOfDeadProcessesAsync(root);

        var workDirectory = Path.Combine(root, $"{Environment.ProcessId}-{Guid.NewGuid():N}"[..24]);
        var server = await LocalPostgresServer.StartAsync(Path.Combine(workDirectory, "data"));
        // The test host may be killed a few milliseconds after ProcessExit starts (vstest does so),
        // so a detached watchdog makes sure the server goes when this process goes.
        StartWatchdog(server, workDirectory);
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

    private const string WatchdogScript = """
        exec </dev/null >/dev/null 2>&1
        while kill -0 "$1" 2>/dev/null; do sleep 1; done
        if [ -f "$2/postmaster.pid" ]; then
            kill -QUIT "$(head -n 1 "$2/postmaster.pid")" 2>/dev/null
            i=0
            while [ -f "$2/postmaster.pid" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
        fi
        rm -rf "$3" "$4"
        """;

    /// <summary>Waits (detached, in its own session) for this process to end, then shuts the server
    /// down immediately (SIGQUIT to the postmaster) and removes its directories.</summary>
    private static void StartWatchdog(LocalPostgresServer server, string workDirectory)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var setsid = new[] { "/usr/bin/setsid", "/bin/setsid" }.FirstOrDefault(File.Exists);
        var startInfo = new System.Diagnostics.ProcessStartInfo
        {
            FileName = setsid ?? "/bin/sh",
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (setsid is not null)
        {
            startInfo.ArgumentList.Add("-f");
            startInfo.ArgumentList.Add("/bin/sh");
        }

        foreach (var argument in new[]
                 {
                     "-c", WatchdogScript, "clawkeeper-test-pg-watchdog", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     server.DataDirectory, workDirectory, server.SocketDirectory,
                 })
        {
            startInfo.ArgumentList.Add(argument);
        }

        try
        {
            using var watchdog = System.Diagnostics.Process.Start(startInfo);
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            Console.Error.WriteLine($"ClawKeeper.Testing: no watchdog for the test PostgreSQL server: {ex.Message}");
        }
    }

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
