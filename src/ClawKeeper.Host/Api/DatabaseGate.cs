namespace ClawKeeper.Host.Api;

/// <summary>
/// Whether the API believes the platform database is reachable. A request that meets an outage
/// closes the gate; while it is closed, submissions go straight to the buffer (no request waits
/// for a dead connection) and only the flusher, with backoff, tries the database, reopening the
/// gate when a write succeeds.
/// </summary>
public sealed class DatabaseGate
{
    private volatile string? _outage;
    private long _downSinceTicks;

    public bool Available => _outage is null;

    /// <summary>Why the database is considered unreachable (no connection string, no password); null when it is reachable.</summary>
    public string? Outage => _outage;

    public DateTimeOffset? DownSince => _outage is null ? null : new DateTimeOffset(Interlocked.Read(ref _downSinceTicks), TimeSpan.Zero);

    /// <summary>Raised (outside any lock) when the gate closes, so the flusher wakes up.</summary>
    public event Action? Closed;

    public void MarkUnavailable(string reason)
    {
        var wasOpen = _outage is null;
        if (wasOpen) Interlocked.Exchange(ref _downSinceTicks, DateTimeOffset.UtcNow.UtcTicks);
        _outage = reason;
        if (wasOpen) Closed?.Invoke();
    }

    public void MarkAvailable() => _outage = null;
}

/// <summary>Exponential backoff with jitter for reconnecting to the database.</summary>
public static class ReconnectBackoff
{
    /// <summary>
    /// Pure: the delay before retry number <paramref name="attempt"/> (0-based): the base doubles from
    /// <paramref name="min"/> up to <paramref name="max"/>, and the delay is drawn uniformly from
    /// [base/2, base] (<paramref name="jitter"/> in [0, 1)), so many nodes do not retry in step.
    /// </summary>
    public static TimeSpan Delay(int attempt, TimeSpan min, TimeSpan max, double jitter)
    {
        var exponent = Math.Clamp(attempt, 0, 30);
        var ceiling = Math.Min(max.TotalMilliseconds, min.TotalMilliseconds * Math.Pow(2, exponent));
        var delay = ceiling / 2 + ceiling / 2 * Math.Clamp(jitter, 0, 1);
        return TimeSpan.FromMilliseconds(Math.Max(min.TotalMilliseconds / 2, delay));
    }
}
