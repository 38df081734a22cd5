using System.Diagnostics;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Platform;
using Npgsql;

namespace ClawKeeper.Actors.Checks.SystemHealth;

/// <summary><c>database_connection</c>: a round trip to the platform database succeeds.</summary>
public sealed class DatabaseConnectionCheck : IPlatformCheck
{
    private readonly NpgsqlDataSource? _platform;
    private readonly SystemHealthSettings _settings;

    public DatabaseConnectionCheck(NpgsqlDataSource? platform, SystemHealthSettings settings)
    {
        _platform = platform;
        _settings = settings;
    }

    public string Id => "database_connection";
    public TimeSpan Timeout => _settings.DatabaseTimeout;

    public async Task<CheckOutcome> RunAsync(CheckContext context, CancellationToken cancellationToken)
    {
        var threshold = $"a round trip succeeds within {Timeout.TotalMilliseconds:0} ms";
        if (_platform is null)
            return CheckOutcome.Fail("no database configured", threshold,
                "clawkeeper.platform-db.connection-string (CLAWKEEPER_PLATFORM_DB) is empty: the platform database cannot be monitored");
        var target = ConnectionStrings.Describe(_platform.ConnectionString);
        var stopwatch = Stopwatch.StartNew();
        try
        {
            await using var connection = await _platform.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand("select current_setting('server_version')", connection);
            var version = (string?)await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            return CheckOutcome.Pass($"round trip in {stopwatch.Elapsed.TotalMilliseconds:0} ms", threshold, $"{target}, PostgreSQL {version}");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return CheckOutcome.Fail("no answer", threshold, $"{target} did not answer within {Timeout.TotalMilliseconds:0} ms");
        }
        catch (Exception ex) when (ex is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
        {
            return CheckOutcome.Fail("connection failed", threshold, $"{target}: {ex.Message}");
        }
    }
}
