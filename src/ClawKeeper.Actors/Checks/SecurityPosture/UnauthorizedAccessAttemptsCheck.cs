using Npgsql;

namespace ClawKeeper.Actors.Checks.SecurityPosture;

/// <summary>
/// <c>unauthorized_access_attempts</c>: no <c>unauthorized_access</c> security event in this
/// heartbeat's window <c>(watermark, StartedAt]</c> (see <see cref="EventWindow"/>); the detail
/// groups the attempts by tenant and source with counts.
/// </summary>
public sealed class UnauthorizedAccessAttemptsCheck : PlatformQueryCheck
{
    public const string EventKind = "unauthorized_access";

    private readonly SecurityPostureSettings _settings;
    private readonly EventWatermark _watermark;

    /// <param name="watermark">Where the window starts; default: the last completed heartbeat.</param>
    public UnauthorizedAccessAttemptsCheck(NpgsqlDataSource? platform, SecurityPostureSettings settings, EventWatermark? watermark = null) : base(platform)
    {
        _settings = settings;
        _watermark = watermark ?? SecurityEvents.LastCompletedHeartbeat;
    }

    public override string Id => "unauthorized_access_attempts";
    public override TimeSpan Timeout => _settings.Timeout;
    protected override string Threshold => $"0 {EventKind} events since the last heartbeat";

    protected override async Task<CheckOutcome> EvaluateAsync(NpgsqlConnection connection, CheckContext context, CancellationToken cancellationToken)
    {
        var window = EventWindow.For(context.StartedAt, _watermark(context), _settings.FirstRunLookBack);
        var groups = await SecurityEvents.GroupedAsync(connection, EventKind, window, cancellationToken).ConfigureAwait(false);
        var total = groups.Sum(g => g.Count);
        var observed = $"{total} {EventKind} event(s) in {window.Describe()}";
        if (window.IsEmpty)
            return CheckOutcome.Pass(observed, Threshold, $"the window {window.Describe()} is empty (watermark not before this heartbeat's start): nothing to read");
        if (total == 0)
            return CheckOutcome.Pass(observed, Threshold, $"no {EventKind} event recorded in {window.Describe()}");
        var tenants = groups.Select(g => g.Tenant).Distinct().Count();
        return CheckOutcome.Fail(observed, Threshold,
            $"{total} attempt(s) across {tenants} tenant(s), by tenant/source: {SecurityEvents.Describe(groups, _settings.SampleSize)}");
    }
}
