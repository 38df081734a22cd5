using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using ClawKeeper.Platform.LocalServer;
using ClawKeeper.Testing;
using Npgsql;

namespace ClawKeeper.Benchmarks;

/// <summary>
/// The PostgreSQL server of one benchmark run and its database:
/// <list type="bullet">
/// <item>with <c>CLAWKEEPER_TEST_PG</c>: that server, a fresh database that is dropped at the end;
/// server settings are left alone (work_mem is set on the database only);</item>
/// <item>otherwise a throwaway <see cref="LocalPostgresServer"/> in a temp directory. Its command line
/// fixes shared_buffers=64MB (command-line settings win over ALTER SYSTEM), so when a larger
/// shared_buffers is asked for, the cluster is stopped and started again by this class on the
/// same data directory, port and password with the benchmark's settings. Stopped and deleted by
/// <see cref="DisposeAsync"/>; a detached watchdog removes it if this process is killed.</item>
/// </list>
/// </summary>
public sealed class BenchServer : IAsyncDisposable
{
    public const string DatabaseName = "clawkeeper_bench";

    private readonly LocalPostgresServer? _local;
    private readonly string? _workDirectory;
    private readonly string? _ownSocketDirectory;
    private readonly string? _externalAdmin;
    private readonly string _database;
    private bool _restarted;
    private bool _keepDatabase;
    private int _disposed;

    private BenchServer(LocalPostgresServer? local, string? workDirectory, string? ownSocketDirectory, string? externalAdmin, string database)
    {
        _local = local;
        _workDirectory = workDirectory;
        _ownSocketDirectory = ownSocketDirectory;
        _externalAdmin = externalAdmin;
        _database = database;
    }

    public string Description { get; private set; } = "";

    /// <summary>Server settings applied by this run (name → value), for the report.</summary>
    public List<(string Name, string Value)> AppliedSettings { get; } = [];

    /// <summary>The server log, when the server is ours (auto_explain writes plans there).</summary>
    public string? ServerLogPath => _local?.ServerLogPath;

    public bool IsThrowaway => _local is not null;

    /// <summary>Superuser connection string to the benchmark database (contains the password).</summary>
    public string ConnectionString => _local is not null
        ? new NpgsqlConnectionStringBuilder(_local.ConnectionStringFor(_database)) { CommandTimeout = 0, MaxPoolSize = 20 }.ConnectionString
        : new NpgsqlConnectionStringBuilder(_externalAdmin!) { Database = _database, CommandTimeout = 0, MaxPoolSize = 20 }.ConnectionString;

    private string AdminConnectionString => _local is not null
        ? _local.AdminConnectionString
        : _externalAdmin!;

    public static async Task<BenchServer> StartAsync(BenchOptions options, Action<string> log, CancellationToken ct)
    {
        if (TestPostgres.ExternalAdmin() is { } admin)
        {
            var database = DatabaseName + "_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
            var server = new BenchServer(null, null, null, admin.ConnectionString, database)
            {
                _keepDatabase = options.KeepDatabase,
                Description = $"external server from {TestPostgres.ServerVariable} ({admin.Host}:{admin.Port}), database {database}",
            };
            await server.CreateDatabaseAsync(options, ct);
            return server;
        }

        var workDirectory = Path.Combine(Path.GetTempPath(), $"clawkeeper-bench-{Environment.ProcessId}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3))}");
        Directory.CreateDirectory(workDirectory);
        LocalPostgresServer? local = null;
        BenchServer? bench = null;
        try
        {
            log($"starting a throwaway PostgreSQL in {workDirectory} ...");
            local = await LocalPostgresServer.StartAsync(Path.Combine(workDirectory, "data"), ct);
            var socketDirectory = Path.Combine(workDirectory, "sock");
            bench = new BenchServer(local, workDirectory, socketDirectory, null, DatabaseName)
            {
                Description = $"throwaway LocalPostgresServer, PostgreSQL {local.Binaries.Version} on 127.0.0.1:{local.Port}",
            };
            PostgresWatchdog.Start(local, workDirectory, "clawkeeper-bench-watchdog");
            if (options.SharedBuffers is not null)
            {
                await bench.RestartWithSettingsAsync(options, log, ct);
            }
            else
            {
                bench.AppliedSettings.Add(("shared_buffers", "64MB (LocalPostgresServer's command line)"));
            }

            await bench.CreateDatabaseAsync(options, ct);
            return bench;
        }
        catch
        {
            if (bench is not null) await bench.DisposeAsync();
            else if (local is not null) await local.DisposeAsync();
            TryDelete(workDirectory);
            throw;
        }
    }

    /// <summary>Settings that need a restart (shared_buffers, wal_level) or that the server's command
    /// line fixes: stop LocalPostgresServer's postmaster and start our own on the same cluster.</summary>
    private async Task RestartWithSettingsAsync(BenchOptions options, Action<string> log, CancellationToken ct)
    {
        var local = _local!;
        var settings = new List<(string, string)>
        {
            ("shared_buffers", options.SharedBuffers!),
            ("fsync", "off"),
            ("synchronous_commit", "off"),
            ("full_page_writes", "off"),
            // Bulk load: COPY into a table truncated in the same transaction writes no WAL.
            ("wal_level", "minimal"),
            ("max_wal_senders", "0"),
            ("max_wal_size", "16GB"),
            ("checkpoint_timeout", "1h"),
            ("max_connections", "100"),
        };
        log($"restarting it with {string.Join(", ", settings.Select(s => s.Item1 + "=" + s.Item2))} ...");
        await local.StopAsync();
        Directory.CreateDirectory(_ownSocketDirectory!);
        if (Environment.IsPrivilegedProcess) await RunAsync("chown", ["postgres:", _ownSocketDirectory!], asPostgres: false, ct);

        var serverOptions = string.Join(' ', new[]
        {
            "-p", local.Port.ToString(CultureInfo.InvariantCulture), "-k", _ownSocketDirectory!, "-c", "listen_addresses=127.0.0.1",
        }.Concat(settings.SelectMany(s => new[] { "-c", s.Item1 + "=" + s.Item2 })));
        var (exit, output) = await RunAsync(
            Path.Combine(local.Binaries.BinDirectory, "pg_ctl"),
            ["start", "-D", local.DataDirectory, "-w", "-t", "120", "-l", local.ServerLogPath, "-o", serverOptions],
            asPostgres: Environment.IsPrivilegedProcess, ct);
        if (exit != 0)
            throw new InvalidOperationException($"pg_ctl start with the benchmark settings failed (exit {exit}): {output.Trim()}\n{TailOfLog(local.ServerLogPath)}");
        _restarted = true;
        AppliedSettings.AddRange(settings);
        Description = $"throwaway LocalPostgresServer, PostgreSQL {local.Binaries.Version} on 127.0.0.1:{local.Port}, restarted with the benchmark settings";
    }

    private async Task CreateDatabaseAsync(BenchOptions options, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync(ct);
        await using (var create = new NpgsqlCommand($"CREATE DATABASE {_database}", connection))
            await create.ExecuteNonQueryAsync(ct);
        if (options.WorkMem is not null)
        {
            await using var set = new NpgsqlCommand($"ALTER DATABASE {_database} SET work_mem = '{options.WorkMem}'", connection);
            await set.ExecuteNonQueryAsync(ct);
            AppliedSettings.Add(("work_mem", options.WorkMem + " (ALTER DATABASE)"));
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        if (_externalAdmin is not null && _keepDatabase)
        {
            NpgsqlConnection.ClearAllPools();
            Console.Error.WriteLine($"--keep-database: the benchmark database {_database} is left on the server");
            return;
        }

        if (_externalAdmin is not null)
        {
            try
            {
                NpgsqlConnection.ClearAllPools();
                await using var connection = new NpgsqlConnection(_externalAdmin);
                await connection.OpenAsync();
                await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)", connection);
                await drop.ExecuteNonQueryAsync();
            }
            catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException)
            {
                Console.Error.WriteLine($"could not drop the benchmark database {_database}: {ex.Message}");
            }

            return;
        }

        NpgsqlConnection.ClearAllPools();
        var local = _local!;
        try
        {
            if (_restarted)
            {
                var (exit, output) = await RunAsync(
                    Path.Combine(local.Binaries.BinDirectory, "pg_ctl"), ["stop", "-D", local.DataDirectory, "-m", "fast", "-w", "-t", "120"],
                    asPostgres: Environment.IsPrivilegedProcess, CancellationToken.None);
                if (exit != 0)
                {
                    await RunAsync(Path.Combine(local.Binaries.BinDirectory, "pg_ctl"), ["stop", "-D", local.DataDirectory, "-m", "immediate", "-w", "-t", "60"],
                        asPostgres: Environment.IsPrivilegedProcess, CancellationToken.None);
                    Console.Error.WriteLine($"pg_ctl stop -m fast failed (exit {exit}): {output.Trim()}; stopped with -m immediate");
                }
            }
            else
            {
                await local.StopAsync();
            }
        }
        finally
        {
            TryDelete(_workDirectory!);
        }
    }

    private static void TryDelete(string directory)
    {
        try
        {
            if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"could not delete {directory}: {ex.Message}");
        }
    }

    private static string TailOfLog(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            var lines = reader.ReadToEnd().TrimEnd().Split('\n');
            return string.Join('\n', lines.Skip(Math.Max(0, lines.Length - 20)));
        }
        catch (IOException)
        {
            return "(no server log)";
        }
    }

    private static async Task<(int Exit, string Output)> RunAsync(string program, IReadOnlyList<string> arguments, bool asPostgres, CancellationToken ct)
    {
        var startInfo = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = "/",
        };
        if (asPostgres)
        {
            startInfo.FileName = File.Exists("/usr/sbin/runuser") ? "/usr/sbin/runuser" : "runuser";
            foreach (var a in new[] { "-u", "postgres", "--", program }) startInfo.ArgumentList.Add(a);
        }
        else
        {
            startInfo.FileName = program;
        }

        foreach (var argument in arguments) startInfo.ArgumentList.Add(argument);
        startInfo.Environment["LC_MESSAGES"] = "C";
        using var process = Process.Start(startInfo) ?? throw new InvalidOperationException($"cannot run {program}");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        await process.WaitForExitAsync(ct);
        return (process.ExitCode, await stdout + await stderr);
    }
}
