using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Npgsql;

namespace ClawKeeper.Platform.LocalServer;

/// <summary>Where the PostgreSQL server programs (<c>initdb</c>, <c>pg_ctl</c>, <c>postgres</c>) are.</summary>
public sealed record PostgresBinaries(string BinDirectory, string Version);

/// <summary>No PostgreSQL server programs on this machine.</summary>
public sealed class PostgresBinariesNotFoundException() : Exception(
    "PostgreSQL server programs (initdb, pg_ctl) were not found on PATH nor under /usr/lib/postgresql/*/bin. " +
    "Install them (Debian/Ubuntu: `apt-get install postgresql`) or run a server yourself " +
    "(`docker compose up postgres`) and point CLAWKEEPER_PLATFORM_DB at it.");

/// <summary>The throwaway server failed to initialise, start or stop. The message carries the
/// tail of the server log, never the password.</summary>
public sealed class LocalPostgresServerException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// A private, throwaway PostgreSQL cluster for <c>demo</c> and tests: <c>initdb</c> into a data
/// directory (wiped first), then <c>postgres</c> on a free loopback port with a random password
/// for the superuser <c>clawkeeper</c>. Durability is off (<c>fsync=off</c>): never keep data in it.
/// When the current process is root, the server programs run as the <c>postgres</c> system user,
/// because <c>initdb</c> and <c>postgres</c> refuse to run as root.
/// </summary>
public sealed partial class LocalPostgresServer : IAsyncDisposable
{
    public const string SuperuserName = "clawkeeper";
    public const string ServerLogFileName = "clawkeeper-server.log";
    private const string ServiceUser = "postgres";
    private const int StartAttempts = 3;

    private readonly PostgresBinaries _binaries;
    private readonly string _socketDirectory;
    private readonly bool _runAsServiceUser;
    private readonly string _password;
    private int _stopped;

    private LocalPostgresServer(
        PostgresBinaries binaries, string dataDirectory, string socketDirectory, bool runAsServiceUser, string password, int port)
    {
        _binaries = binaries;
        DataDirectory = dataDirectory;
        _socketDirectory = socketDirectory;
        _runAsServiceUser = runAsServiceUser;
        _password = password;
        Port = port;
    }

    public string DataDirectory { get; }

    /// <summary>The server's private unix-socket directory (under /tmp), removed by <see cref="StopAsync"/>.</summary>
    public string SocketDirectory => _socketDirectory;

    public int Port { get; }

    public PostgresBinaries Binaries => _binaries;

    public string ServerLogPath => Path.Combine(DataDirectory, ServerLogFileName);

    /// <summary>Superuser connection to the <c>postgres</c> database (contains the password: do not log it;
    /// use <see cref="ConnectionStrings.Describe"/>).</summary>
    public string AdminConnectionString => ConnectionStringFor("postgres");

    public string ConnectionStringFor(string database)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(database);
        return new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = Port,
            Username = SuperuserName,
            Password = _password,
            Database = database,
        }.ConnectionString;
    }

    /// <summary><c>pg_ctl</c>/<c>initdb</c> on PATH first, else the highest version under
    /// <c>/usr/lib/postgresql/*/bin</c>; null when there are none.</summary>
    public static PostgresBinaries? FindBinaries()
    {
        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator))
        {
            if (directory.Length == 0 || !HasServerPrograms(directory))
            {
                continue;
            }

            // Follow symlinks (/usr/local/bin/pg_ctl -> /usr/lib/postgresql/15/bin/pg_ctl) so that
            // BinDirectory is where postgres itself lives too.
            var pgCtl = new FileInfo(Path.Combine(directory, "pg_ctl"));
            var resolved = pgCtl.LinkTarget is null ? pgCtl : pgCtl.ResolveLinkTarget(returnFinalTarget: true) as FileInfo;
            var binDirectory = resolved?.DirectoryName is { } resolvedDirectory && HasServerPrograms(resolvedDirectory)
                ? resolvedDirectory
                : Path.GetFullPath(directory);
            return new PostgresBinaries(binDirectory, ReadVersion(binDirectory));
        }

        const string debianRoot = "/usr/lib/postgresql";
        if (!Directory.Exists(debianRoot))
        {
            return null;
        }

        var best = Directory.EnumerateDirectories(debianRoot)
            .Select(directory => (Directory: Path.Combine(directory, "bin"), Major: ParseMajor(Path.GetFileName(directory))))
            .Where(candidate => candidate.Major is not null && HasServerPrograms(candidate.Directory))
            .OrderByDescending(candidate => candidate.Major)
            .FirstOrDefault();
        return best.Directory is null ? null : new PostgresBinaries(best.Directory, ReadVersion(best.Directory));
    }

    /// <summary>
    /// Stops a server left running on <paramref name="dataDirectory"/>, wipes the directory,
    /// initialises a new cluster there and starts it on a free loopback port.
    /// </summary>
    public static async Task<LocalPostgresServer> StartAsync(string dataDirectory, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(dataDirectory);
        var binaries = FindBinaries() ?? throw new PostgresBinariesNotFoundException();
        var fullDataDirectory = Path.GetFullPath(dataDirectory);
        var runAsServiceUser = IsRoot();

        await StopIfRunningAsync(fullDataDirectory, binaries, runAsServiceUser, ct);
        WipeDirectory(fullDataDirectory);
        Directory.CreateDirectory(fullDataDirectory);

        // Unix socket paths are limited to ~107 bytes: keep the socket directory short.
        var socketDirectory = Path.Combine(OperatingSystem.IsWindows() ? Path.GetTempPath() : "/tmp", "ck-pg-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
        // Private to the server's user (0700, created so): nobody else reaches the socket or the password file in it.
        if (OperatingSystem.IsWindows()) Directory.CreateDirectory(socketDirectory);
        else Directory.CreateDirectory(socketDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        var password = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));
        try
        {
            if (runAsServiceUser)
            {
                EnsureTraversableByOthers(fullDataDirectory);
                await ChownToServiceUserAsync([fullDataDirectory, socketDirectory], ct);
            }

            await InitDbAsync(binaries, fullDataDirectory, socketDirectory, runAsServiceUser, password, ct);

            LocalPostgresServerException? lastFailure = null;
            for (var attempt = 1; attempt <= StartAttempts; attempt++)
            {
                var port = FindFreeLoopbackPort();
                var server = new LocalPostgresServer(binaries, fullDataDirectory, socketDirectory, runAsServiceUser, password, port);
                try
                {
                    await server.StartProcessAsync(ct);
                    await server.WaitUntilAnsweringAsync(ct);
                    return server;
                }
                catch (LocalPostgresServerException ex)
                {
                    // Most likely the port was taken between probing and binding: try another one.
                    lastFailure = ex;
                    await server.StopCoreAsync(deleteSocketDirectory: false);
                }
            }

            throw lastFailure!;
        }
        catch
        {
            TryDeleteDirectory(socketDirectory);
            throw;
        }
    }

    /// <summary>Stops a server that a previous run left on <paramref name="dataDirectory"/> (no-op when none).</summary>
    public static Task StopIfRunningAsync(string dataDirectory, CancellationToken ct = default)
    {
        var binaries = FindBinaries() ?? throw new PostgresBinariesNotFoundException();
        return StopIfRunningAsync(Path.GetFullPath(dataDirectory), binaries, IsRoot(), ct);
    }

    public async Task CreateDatabaseAsync(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE {QuoteIdentifier(name)}", connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary><c>pg_ctl stop -m fast</c>. The data directory is kept (the next start wipes it).</summary>
    public Task StopAsync() => StopCoreAsync(deleteSocketDirectory: true);

    /// <summary>
    /// An outage on purpose: <c>pg_ctl stop -m fast</c> (every session is cut, connections are refused),
    /// keeping the data directory, the socket directory, the port and the password, so that
    /// <see cref="StartAgainAsync"/> brings the same cluster back where its clients expect it.
    /// </summary>
    public Task StopKeepingDataAsync()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _stopped) == 1, this);
        return StopCoreAsync(deleteSocketDirectory: false);
    }

    /// <summary>Starts the cluster stopped by <see cref="StopKeepingDataAsync"/> again on the same port and
    /// data directory; returns when it answers. Fails (with the server log) when the port was taken meanwhile.</summary>
    public async Task StartAgainAsync(CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _stopped) == 1, this);
        if (ReadPostmasterPid(DataDirectory) is { Port: var running } && running == Port
            && (await RunAsync(_binaries, "pg_ctl", ["status", "-D", DataDirectory], _runAsServiceUser, ct)).ExitCode == 0)
        {
            return; // it runs already
        }

        await StartProcessAsync(ct);
        await WaitUntilAnsweringAsync(ct);
    }

    public async ValueTask DisposeAsync() => await StopAsync();

    public override string ToString() => $"PostgreSQL {_binaries.Version} on 127.0.0.1:{Port} (data {DataDirectory})";

    private async Task StopCoreAsync(bool deleteSocketDirectory)
    {
        if (deleteSocketDirectory && Interlocked.Exchange(ref _stopped, 1) == 1)
        {
            return;
        }

        try
        {
            // Only our own postmaster: after a restart on this data directory the pid file may
            // belong to a newer server.
            if (ReadPostmasterPid(DataDirectory) is { } running && running.Port == Port)
            {
                var result = await RunAsync(
                    _binaries, "pg_ctl", ["stop", "-D", DataDirectory, "-m", "fast", "-w", "-t", "60"],
                    _runAsServiceUser, CancellationToken.None);
                if (result.ExitCode != 0 && File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
                {
                    throw Failure($"pg_ctl stop failed (exit {result.ExitCode}): {result.Output.Trim()}", DataDirectory);
                }
            }
        }
        finally
        {
            using var pooled = new NpgsqlConnection(AdminConnectionString);
            NpgsqlConnection.ClearPool(pooled);
            if (deleteSocketDirectory)
            {
                TryDeleteDirectory(_socketDirectory);
            }
        }
    }

    private async Task StartProcessAsync(CancellationToken ct)
    {
        var serverOptions = string.Join(' ',
            "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-k", _socketDirectory,
            "-c", "listen_addresses=127.0.0.1",
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
            "-c", "max_connections=300",
            "-c", "shared_buffers=64MB");
        var result = await RunAsync(
            _binaries,
            "pg_ctl",
            ["start", "-D", DataDirectory, "-w", "-t", "60", "-l", ServerLogPath, "-o", serverOptions],
            _runAsServiceUser,
            ct);
        if (result.ExitCode != 0)
        {
            throw Failure($"pg_ctl start on port {Port} failed (exit {result.ExitCode}): {result.Output.Trim()}", DataDirectory);
        }
    }

    private async Task WaitUntilAnsweringAsync(CancellationToken ct)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                var builder = new NpgsqlConnectionStringBuilder(AdminConnectionString) { Pooling = false, Timeout = 5 };
                await using var connection = new NpgsqlConnection(builder.ConnectionString);
                await connection.OpenAsync(ct);
                await using var command = new NpgsqlCommand("SELECT 1", connection);
                await command.ExecuteScalarAsync(ct);
                return;
            }
            catch (NpgsqlException ex) when (DateTime.UtcNow < deadline)
            {
                _ = ex;
                await Task.Delay(100, ct);
            }
            catch (NpgsqlException ex)
            {
                throw Failure($"the server on port {Port} started but does not answer: {ex.Message}", DataDirectory, ex);
            }
        }
    }

    private static async Task InitDbAsync(
        PostgresBinaries binaries, string dataDirectory, string socketDirectory, bool runAsServiceUser, string password, CancellationToken ct)
    {
        // The password goes through a file only the server user can read, never a command line.
        var passwordFile = Path.Combine(socketDirectory, "initdb.pw");
        // Created with mode 600 (never readable by others, not even between creation and a chmod).
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        await using (var stream = new FileStream(passwordFile, options))
        await using (var writer = new StreamWriter(stream))
            await writer.WriteAsync(password + "\n");
        try
        {

            if (runAsServiceUser)
            {
                await ChownToServiceUserAsync([passwordFile], ct);
            }

            var result = await RunAsync(
                binaries,
                "initdb",
                [
                    "-D", dataDirectory,
                    "-U", SuperuserName,
                    "--pwfile=" + passwordFile,
                    "--auth-host=scram-sha-256",
                    // Password auth on the unix socket too: nobody on the machine gets in without it.
                    "--auth-local=scram-sha-256",
                    "-E", "UTF8",
                    "--no-locale",
                    "--no-sync",
                ],
                runAsServiceUser,
                ct);
            if (result.ExitCode != 0)
            {
                throw new LocalPostgresServerException(
                    $"initdb into {dataDirectory} failed (exit {result.ExitCode}):{Environment.NewLine}{Tail(result.Output, 30)}");
            }
        }
        finally
        {
            File.Delete(passwordFile);
        }
    }

    private static async Task StopIfRunningAsync(string dataDirectory, PostgresBinaries binaries, bool runAsServiceUser, CancellationToken ct)
    {
        var previous = ReadPostmasterPid(dataDirectory);
        if (previous is null)
        {
            return;
        }

        try
        {
            await StopPreviousServerAsync(dataDirectory, binaries, runAsServiceUser, ct);
        }
        finally
        {
            // The previous server's socket directory, when it is one of ours.
            if (previous.SocketDirectory is { } socketDirectory
                && Path.GetFileName(socketDirectory).StartsWith("ck-pg-", StringComparison.Ordinal)
                && ReadPostmasterPid(dataDirectory) is null)
            {
                TryDeleteDirectory(socketDirectory);
            }
        }
    }

    private sealed record PostmasterPid(int? Port, string? SocketDirectory);

    /// <summary>postmaster.pid: pid, data directory, start time, port, socket directory, ...; null when absent.</summary>
    private static PostmasterPid? ReadPostmasterPid(string dataDirectory)
    {
        var path = Path.Combine(dataDirectory, "postmaster.pid");
        if (!File.Exists(path))
        {
            return null;
        }

        var lines = ReadShared(path).Split('\n');
        int? port = lines.Length > 3 && int.TryParse(lines[3].Trim(), out var parsed) ? parsed : null;
        var socketDirectory = lines.Length > 4 && lines[4].Trim() is { Length: > 0 } directory ? directory : null;
        return new PostmasterPid(port, socketDirectory);
    }

    private static async Task StopPreviousServerAsync(string dataDirectory, PostgresBinaries binaries, bool runAsServiceUser, CancellationToken ct)
    {

        var status = await RunAsync(binaries, "pg_ctl", ["status", "-D", dataDirectory], runAsServiceUser, ct);
        if (status.ExitCode != 0)
        {
            return; // a stale pid file: nothing runs there (the wipe removes it)
        }

        var stop = await RunAsync(
            binaries, "pg_ctl", ["stop", "-D", dataDirectory, "-m", "fast", "-w", "-t", "60"], runAsServiceUser, ct);
        if (stop.ExitCode != 0)
        {
            stop = await RunAsync(
                binaries, "pg_ctl", ["stop", "-D", dataDirectory, "-m", "immediate", "-w", "-t", "30"], runAsServiceUser, ct);
        }

        if (stop.ExitCode != 0)
        {
            throw Failure(
                $"a server from a previous run is still running on {dataDirectory} and pg_ctl stop failed (exit {stop.ExitCode}): {stop.Output.Trim()}",
                dataDirectory);
        }
    }

    private sealed record ProcessResult(int ExitCode, string Output);

    private static async Task<ProcessResult> RunAsync(
        PostgresBinaries binaries, string program, IReadOnlyList<string> arguments, bool runAsServiceUser, CancellationToken ct)
    {
        var executable = Path.Combine(binaries.BinDirectory, program);
        var startInfo = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            // The server user must be able to stay in the working directory.
            WorkingDirectory = "/",
        };
        if (runAsServiceUser)
        {
            startInfo.FileName = FindOnPath("runuser") ?? "/usr/sbin/runuser";
            startInfo.ArgumentList.Add("-u");
            startInfo.ArgumentList.Add(ServiceUser);
            startInfo.ArgumentList.Add("--");
            startInfo.ArgumentList.Add(executable);
        }
        else
        {
            startInfo.FileName = executable;
        }

        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        // Keep the server's messages in English and independent of the caller's libpq settings.
        startInfo.Environment["LC_MESSAGES"] = "C";
        foreach (var variable in new[] { "PGDATA", "PGPORT", "PGHOST", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGOPTIONS" })
        {
            startInfo.Environment.Remove(variable);
        }

        using var process = new Process { StartInfo = startInfo };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new LocalPostgresServerException($"cannot run {startInfo.FileName}: {ex.Message}", ex);
        }

        process.StandardInput.Close();
        var output = new StringBuilder();
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        try
        {
            await process.WaitForExitAsync(ct);
        }
        catch (OperationCanceledException)
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }

            throw;
        }

        output.Append(await stdout).Append(await stderr);
        return new ProcessResult(process.ExitCode, output.ToString());
    }

    private static async Task ChownToServiceUserAsync(IEnumerable<string> paths, CancellationToken ct)
    {
        foreach (var path in paths)
        {
            var startInfo = new ProcessStartInfo
            {
                FileName = FindOnPath("chown") ?? "/bin/chown",
                RedirectStandardError = true,
                RedirectStandardOutput = true,
                UseShellExecute = false,
            };
            startInfo.ArgumentList.Add("-R");
            startInfo.ArgumentList.Add($"{ServiceUser}:");
            startInfo.ArgumentList.Add(path);
            using var process = Process.Start(startInfo)
                ?? throw new LocalPostgresServerException("cannot run chown");
            var error = process.StandardError.ReadToEndAsync(ct);
            await process.WaitForExitAsync(ct);
            if (process.ExitCode != 0)
            {
                throw new LocalPostgresServerException(
                    $"cannot hand {path} to the '{ServiceUser}' system user (initdb and postgres refuse to run as root): {(await error).Trim()}");
            }
        }
    }

    /// <summary>When running the server as the postgres user, every ancestor of the data
    /// directory must be searchable by that user.</summary>
    private static void EnsureTraversableByOthers(string dataDirectory)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        for (var directory = Path.GetDirectoryName(dataDirectory); directory is not null; directory = Path.GetDirectoryName(directory))
        {
            if (!File.GetUnixFileMode(directory).HasFlag(UnixFileMode.OtherExecute))
            {
                throw new LocalPostgresServerException(
                    $"The '{ServiceUser}' system user, which runs the server because this process is root, cannot reach " +
                    $"{dataDirectory}: {directory} is not searchable by others. Use a data directory under /tmp, or `chmod o+x {directory}`.");
            }
        }
    }

    private static bool IsRoot() => (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS() || OperatingSystem.IsFreeBSD())
                                    && Environment.IsPrivilegedProcess;

    private static int FindFreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private static bool HasServerPrograms(string directory) =>
        File.Exists(Path.Combine(directory, "pg_ctl")) && File.Exists(Path.Combine(directory, "initdb"));

    private static int? ParseMajor(string name) =>
        int.TryParse(name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var major)
            ? major
            : null;

    private static string ReadVersion(string binDirectory)
    {
        try
        {
            var startInfo = new ProcessStartInfo(Path.Combine(binDirectory, "pg_ctl"), "--version")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            using var process = Process.Start(startInfo);
            if (process is null)
            {
                return "unknown";
            }

            var output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            var match = VersionNumber().Match(output);
            return match.Success ? match.Value : "unknown";
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "unknown";
        }
    }

    [GeneratedRegex(@"\d+(\.\d+)*", RegexOptions.CultureInvariant)]
    private static partial Regex VersionNumber();

    private static string? FindOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(directory => Path.Combine(directory, program))
            .FirstOrDefault(File.Exists);

    private static LocalPostgresServerException Failure(string what, string dataDirectory, Exception? inner = null)
    {
        var logPath = Path.Combine(dataDirectory, ServerLogFileName);
        var log = File.Exists(logPath) ? Tail(ReadShared(logPath), 30) : "(no server log)";
        return new LocalPostgresServerException(
            $"{what}{Environment.NewLine}--- last lines of {logPath} ---{Environment.NewLine}{log}", inner);
    }

    private static string ReadShared(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd();
        }
        catch (IOException ex)
        {
            return $"(cannot read the server log: {ex.Message})";
        }
    }

    private static string Tail(string text, int lines)
    {
        var all = text.TrimEnd().Split('\n');
        return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
    }

    /// <summary>Deletes a previous cluster; refuses to delete a non-empty directory that is not one
    /// (a mistyped path must not cost anybody their files).</summary>
    private static void WipeDirectory(string directory)
    {
        if (!Directory.Exists(directory) || !Directory.EnumerateFileSystemEntries(directory).Any())
        {
            return;
        }

        var looksLikeOurCluster = File.Exists(Path.Combine(directory, "PG_VERSION"))
                                  || File.Exists(Path.Combine(directory, ServerLogFileName));
        if (!looksLikeOurCluster)
        {
            throw new LocalPostgresServerException(
                $"Refusing to wipe {directory}: it is not empty and is not a PostgreSQL data directory. " +
                "Give the throwaway server a directory of its own.");
        }

        Directory.Delete(directory, recursive: true);
    }

    private static void TryDeleteDirectory(string directory)
    {
        try
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static string QuoteIdentifier(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
