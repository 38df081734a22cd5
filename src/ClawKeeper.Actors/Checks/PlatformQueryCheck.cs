using Npgsql;

namespace ClawKeeper.Actors.Checks;

/// <summary>
/// Base of the checks that query the platform database: opens a connection, makes sure it sees
/// every tenant, and turns an outage or a failed query into an <c>error</c> line that says why.
/// </summary>
public abstract class PlatformQueryCheck : IPlatformCheck
{
    private readonly NpgsqlDataSource? _platform;

    protected PlatformQueryCheck(NpgsqlDataSource? platform) => _platform = platform;

    /// <summary>The platform database (for checks that open more connections than the one they are given).</summary>
    protected NpgsqlDataSource? Platform => _platform;

    public abstract string Id { get; }
    public abstract TimeSpan Timeout { get; }
    protected abstract string Threshold { get; }

    public async Task<CheckOutcome> RunAsync(CheckContext context, CancellationToken cancellationToken)
    {
        if (_platform is null)
            return CheckOutcome.Error(Threshold, "no platform database configured (clawkeeper.platform-db.connection-string)");
        try
        {
            await using var connection = await _platform.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            var invisible = await PlatformVisibility.WhyNotAllTenantsVisibleAsync(connection, cancellationToken).ConfigureAwait(false);
            if (invisible is not null) return CheckOutcome.Error(Threshold, invisible);
            return await EvaluateAsync(connection, context, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException ex)
        {
            return CheckOutcome.Error(Threshold, $"platform database query failed: {ex.SqlState} {ex.MessageText}");
        }
        catch (Exception ex) when (ex is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException && !cancellationToken.IsCancellationRequested)
        {
            return CheckOutcome.Error(Threshold, $"platform database unavailable: {ex.Message}");
        }
    }

    protected abstract Task<CheckOutcome> EvaluateAsync(NpgsqlConnection connection, CheckContext context, CancellationToken cancellationToken);

    protected static NpgsqlCommand Command(NpgsqlConnection connection, string sql, params (string Name, object Value)[] parameters)
    {
        var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 };
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value);
        return command;
    }

    protected static string Duration(TimeSpan span) => span.TotalSeconds >= 3600 && span.TotalSeconds % 3600 == 0
        ? $"{span.TotalHours:0} h"
        : span.TotalSeconds >= 60 && span.TotalSeconds % 60 == 0 ? $"{span.TotalMinutes:0} min" : $"{span.TotalSeconds:0.#} s";
}
