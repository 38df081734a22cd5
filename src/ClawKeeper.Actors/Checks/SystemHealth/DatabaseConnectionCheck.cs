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
    // The runner's timeout is a safety net; the database's own deadline below turns a hang into a `fail`.
    public TimeSpan Timeout => _settings.DatabaseTimeout + TimeSpan.FromSeconds(1);

    public async Task<CheckOutcome> RunAsync(CheckContext context, CancellationToken cancellationToken)
    {
        var threshold = $"a round trip succeeds within {_settings.DatabaseTimeout.TotalMilliseconds:0} ms";
        if (_platform is null)
            return CheckOutcome.Fail("no database configured", threshold,
                "clawkeeper.platform-db.connection-string (CLAWKEEPER_PLATFORM_DB) is empty: the platform database cannot be monitored");
        var target = ConnectionStrings.Describe(_platform.ConnectionString);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_settings.DatabaseTimeout);
        var stopwatch = Stopwatch.StartNew();
        try
        {
            await using var connection = await _platform.OpenConnectionAsync(deadline.Token).ConfigureAwait(false);
            await using var command = new NpgsqlCommand("select current_setting('server_version')", connection);
            var version = (string?)await command.ExecuteScalarAsync(deadline.Token).ConfigureAwait(false);
            return CheckOutcome.Pass($"round trip in {stopwatch.Elapsed.TotalMilliseconds:0} ms", threshold, $"{target}, PostgreSQL {version}");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return CheckOutcome.Fail("no answer", threshold, $"{target} did not answer within {_settings.DatabaseTimeout.TotalMilliseconds:0} ms");
        }
        catch (Exception ex) when (ex is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
        {
            return CheckOutcome.Fail("connection failed", threshold, $"{target}: {ex.Message}");
        }
    }
}
