using ClawKeeper.Platform.LocalServer;

namespace ClawKeeper.Testing;

/// <summary>
/// A detached shell (its own session, so it outlives a killed test host or benchmark) that waits
/// for this process to end, then shuts a throwaway PostgreSQL down at once (SIGQUIT to whatever
/// postmaster runs on its data directory, so also one restarted by other means) and removes its
/// work and socket directories. Used by <see cref="TestPostgres"/> and the benchmark's server.
/// </summary>
public static class PostgresWatchdog
{
    private const string Script = """
        exec </dev/null >/dev/null 2>&1
        while kill -0 "$1" 2>/dev/null; do sleep 1; done
        if [ -f "$2/postmaster.pid" ]; then
            kill -QUIT "$(head -n 1 "$2/postmaster.pid")" 2>/dev/null
            i=0
            while [ -f "$2/postmaster.pid" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
        fi
        rm -rf "$3" "$4"
        """;

    /// <summary>Starts the watchdog of <paramref name="server"/>; <paramref name="name"/> shows in the process list. No-op on Windows.</summary>
    public static void Start(LocalPostgresServer server, string workDirectory, string name)
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
                     "-c", Script, name, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture),
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
            Console.Error.WriteLine($"{name}: no watchdog for the throwaway PostgreSQL server: {ex.Message}");
        }
    }
}
