using ClawKeeper.Platform.Alerts;
using Npgsql;

namespace ClawKeeper.Actors.Alerts;

/// <summary>The operator controls (acks, silences) in force for a heartbeat.</summary>
public interface IAlertControlSource
{
    Task<IReadOnlyList<AlertControl>> ActiveAsync(DateTimeOffset now, CancellationToken cancellationToken);
}

/// <summary>Controls persisted in the platform database (<c>alert_controls</c>), written by the CLI.</summary>
public sealed class PlatformAlertControlSource(NpgsqlDataSource platform) : IAlertControlSource
{
    private readonly AlertControlStore _store = new(platform);

    public Task<IReadOnlyList<AlertControl>> ActiveAsync(DateTimeOffset now, CancellationToken cancellationToken) =>
        _store.ActiveAsync(now, cancellationToken);
}
