using Akka.Actor;
using ClawKeeper.Actors.Orchestrators;
using ClawKeeper.Actors.Settings;

namespace ClawKeeper.Actors.Checks.SystemHealth;

/// <summary>Pings every orchestrator through the fleet actor; used by two checks.</summary>
public sealed class OrchestratorPinger
{
    private readonly IActorRef _fleet;
    private readonly IReadOnlyList<OrchestratorDefinition> _expected;

    public OrchestratorPinger(IActorRef fleet, IReadOnlyList<OrchestratorDefinition> expected)
    {
        _fleet = fleet;
        _expected = expected;
    }

    public IReadOnlyList<OrchestratorDefinition> Expected => _expected;

    /// <summary>Every expected orchestrator with its pong, or null when it did not answer in time.</summary>
    public async Task<IReadOnlyList<(string Name, OrchestratorPong? Pong)>> PingAllAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var answers = await AnswersAsync(_expected.Select(o => o.Name), timeout, cancellationToken).ConfigureAwait(false);
        return answers.Select(a => (a.Name, a.Answer as OrchestratorPong)).ToList();
    }

    /// <summary>
    /// Pings the named orchestrators at once; each answer as it came (a pong, <see cref="OrchestratorRestarting"/>,
    /// <see cref="UnknownOrchestrator"/>), or null when none came in time.
    /// </summary>
    public async Task<IReadOnlyList<(string Name, object? Answer)>> AnswersAsync(IEnumerable<string> names, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var pings = names.Select(async name =>
        {
            try
            {
                return (name, (object?)await _fleet.Ask<object>(new PingOrchestrator(name), timeout, cancellationToken).ConfigureAwait(false));
            }
            catch (Exception ex) when (ex is AskTimeoutException or TaskCanceledException or OperationCanceledException)
            {
                return (name, null);
            }
        });
        return await Task.WhenAll(pings).ConfigureAwait(false);
    }
}

/// <summary><c>orchestrators_reachable</c>: all nine orchestrators answer a ping in time.</summary>
public sealed class OrchestratorsReachableCheck : IPlatformCheck
{
    private readonly OrchestratorPinger _pinger;
    private readonly SystemHealthSettings _settings;

    public OrchestratorsReachableCheck(OrchestratorPinger pinger, SystemHealthSettings settings)
    {
        _pinger = pinger;
        _settings = settings;
    }

    public string Id => "orchestrators_reachable";
    public TimeSpan Timeout => _settings.OrchestratorPingTimeout + TimeSpan.FromSeconds(1);

    public async Task<CheckOutcome> RunAsync(CheckContext context, CancellationToken cancellationToken)
    {
        var pongs = await _pinger.PingAllAsync(_settings.OrchestratorPingTimeout, cancellationToken).ConfigureAwait(false);
        return Evaluate(pongs, _pinger.Expected.Count, _settings.OrchestratorPingTimeout);
    }

    public static CheckOutcome Evaluate(IReadOnlyList<(string Name, OrchestratorPong? Pong)> pongs, int expected, TimeSpan pingTimeout)
    {
        var threshold = $"all {expected} answer a ping within {pingTimeout.TotalMilliseconds:0} ms";
        if (expected == 0)
            return CheckOutcome.Error(threshold, "no orchestrator is configured: nothing was pinged");
        var silent = pongs.Where(p => p.Pong is null).Select(p => p.Name).ToList();
        var observed = $"{expected - silent.Count}/{expected} answered";
        return silent.Count == 0
            ? CheckOutcome.Pass(observed, threshold)
            : CheckOutcome.Fail(observed, threshold, $"no answer from: {string.Join(", ", silent)}");
    }
}
