using System.Diagnostics;
using System.Security.Cryptography;
using ClawKeeper.Platform.LocalServer;
using ClawKeeper.Platform.Schema;
using ClawKeeper.Platform.Seeding;
using Npgsql;

namespace ClawKeeper.Testing;

/// <summary>
/// A PostgreSQL server of one test's own that the test can stop (an outage) and start again on the same
/// port with its data: a dedicated throwaway <see cref="LocalPostgresServer"/>, never the shared server of
/// <see cref="TestPostgres"/> nor the one named by <c>CLAWKEEPER_TEST_PG</c>. One database on it,
/// <see cref="DatabaseName"/>, migrated and demo-seeded, holds both the platform and (as in
/// docker-compose) the Akka journal. A detached watchdog stops the server if the test process dies.
/// </summary>
public sealed class StoppablePostgres : IAsyncDisposable
{
    public const string DatabaseName = "clawkeeper";

    private readonly LocalPostgresServer _server;
    private readonly string _workDirectory;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private int _disposed;

    private StoppablePostgres(LocalPostgresServer server, string workDirectory)
    {
        _server = server;
        _workDirectory = workDirectory;
    }

    /// <summary>Superuser connection string of <see cref="DatabaseName"/> (contains the password: do not log it).</summary>
    public string ConnectionString => new NpgsqlConnectionStringBuilder(_server.ConnectionStringFor(DatabaseName))
    {
        // The test's own reads during an outage fail fast instead of waiting for the default 15 s.
        Timeout = 5,
    }.ConnectionString;

    public int Port => _server.Port;

    public bool IsRunning { get; private set; } = true;

    public string ServerLogPath => _server.ServerLogPath;

    public override string ToString() => _server.ToString();

    /// <summary>Starts the server in a fresh directory under /tmp and creates <see cref="DatabaseName"/>,
    /// migrated and (unless <paramref name="seed"/> is false) seeded with the demo platform.</summary>
    public static async Task<StoppablePostgres> StartAsync(bool seed = true)
    {
        var workDirectory = Path.Combine(Path.GetTempPath(), "clawkeeper-outage-pg",
            $"{Environment.ProcessId}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}");
        Directory.CreateDirectory(workDirectory);
        var server = await LocalPostgresServer.StartAsync(Path.Combine(workDirectory, "data"));
        PostgresWatchdog.Start(server, workDirectory, "clawkeeper-outage-pg-watchdog");
        var self = new StoppablePostgres(server, workDirectory);
        try
        {
            await server.CreateDatabaseAsync(DatabaseName);
            await PlatformMigrator.MigrateAsync(self.ConnectionString);
            if (seed) await DemoSeeder.SeedAsync(self.ConnectionString);
            return self;
        }
        catch
        {
            await self.DisposeAsync();
            throw;
        }
    }

    /// <summary>The outage: the server stops (sessions cut, connections refused). Returns when it is down.</summary>
    public async Task<TimeSpan> StopAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await _server.StopKeepingDataAsync();
        IsRunning = false;
        return _clock.Elapsed;
    }

    /// <summary>The end of the outage: the same cluster on the same port. Returns when it answers.</summary>
    public async Task<TimeSpan> StartAsync()
    {
        await _server.StartAgainAsync();
        NpgsqlConnection.ClearAllPools();
        IsRunning = true;
        return _clock.Elapsed;
    }

    /// <summary>The last lines of the server's log, for failure messages.</summary>
    public string LogTail(int lines = 20)
    {
        try
        {
            using var stream = new FileStream(ServerLogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            var all = reader.ReadToEnd().TrimEnd().Split('\n');
            return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
        }
        catch (IOException e)
        {
            return $"(no server log: {e.Message})";
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        NpgsqlConnection.ClearAllPools();
        try
        {
            await _server.StopAsync();
        }
        catch (LocalPostgresServerException e)
        {
            Console.Error.WriteLine($"ClawKeeper.Testing: could not stop the outage PostgreSQL server cleanly: {e.Message}");
        }
        try
        {
            Directory.Delete(_workDirectory, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // the watchdog removes it when this process ends
        }
    }
}
