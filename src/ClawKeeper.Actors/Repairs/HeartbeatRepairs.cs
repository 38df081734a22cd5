using System.Diagnostics;
using Akka.Actor;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Actors.Orchestrators;

namespace ClawKeeper.Actors.Repairs;

/// <summary>How the repairs probe: the orchestrator ping timeout and the API's <c>/health</c> re-check.</summary>
public sealed record RepairOptions(TimeSpan PingTimeout, TimeSpan ApiTimeout, HttpClient? Http = null)
{
    public static readonly RepairOptions Default = new(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(2));
}

/// <summary>What the API restart did, with its re-check.</summary>
public sealed record ApiRepairResult(ActionReport Action, bool Recovered);

/// <summary>
/// Carries out the heartbeat's repairs, off the supervisor's thread; never throws (a failed repair is an
/// outcome in the report). Each repair confirms, acts, and re-checks right after.
/// </summary>
public sealed class HeartbeatRepairs
{
    private static readonly Lazy<HttpClient> SharedHttp = new(() => new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(2) }));

    private readonly IActorRef _fleet;
    private readonly Checks.SystemHealth.OrchestratorPinger _pinger;
    private readonly RepairOptions _options;
    private readonly IApiServerControl? _api;

    public HeartbeatRepairs(IActorRef fleet, IReadOnlyList<OrchestratorDefinition> orchestrators, RepairOptions options, IApiServerControl? api)
    {
        _fleet = fleet;
        _pinger = new Checks.SystemHealth.OrchestratorPinger(fleet, orchestrators);
        _options = options;
        _api = api;
    }

    private HttpClient Http => _options.Http ?? SharedHttp.Value;

    /// <summary>
    /// <c>restart_orchestrator</c>: a fresh ping finds the orchestrators that are silent (hung: a crashed one is
    /// restarted by the fleet's strategy and answers "restarting"), the fleet abandons and restarts them (their
    /// tasks go back to the queue), and a re-ping checks that the new incarnations answer.
    /// </summary>
    public async Task<IReadOnlyList<ActionReport>> RestartHungOrchestratorsAsync(string reason)
    {
        try
        {
            var pings = await PingAsync(_pinger.Expected.Select(o => o.Name)).ConfigureAwait(false);
            var silent = pings.Where(p => p.Answer is null).Select(p => p.Name).ToList();
            var actions = pings.Where(p => p.Answer is OrchestratorRestarting).Select(p =>
            {
                var restarting = (OrchestratorRestarting)p.Answer!;
                return new ActionReport("restart_orchestrator", $"{p.Name}: crashed {restarting.Crashes} times; the fleet restarts it at {restarting.RestartAt:u} (backoff)",
                    "left to the fleet's restart backoff");
            }).ToList();
            if (silent.Count == 0)
            {
                if (actions.Count == 0)
                    actions.Add(new ActionReport("restart_orchestrator", "orchestrators_reachable failed, but every orchestrator answered the confirming ping", "not needed"));
                return actions;
            }

            var restarted = await _fleet.Ask<OrchestratorsRestarted>(new RestartOrchestrators(silent, reason), _options.PingTimeout + TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            var started = restarted.Outcomes.Where(o => o.Restarted).Select(o => o.Orchestrator).ToList();
            var recheck = started.Count == 0 ? new List<(string Name, object? Answer)>() : await PingAsync(started).ConfigureAwait(false);
            foreach (var outcome in restarted.Outcomes)
            {
                var answer = recheck.FirstOrDefault(r => r.Name == outcome.Orchestrator);
                actions.Add(new ActionReport("restart_orchestrator",
                    $"{outcome.Orchestrator}: no answer to a ping within {_options.PingTimeout.TotalMilliseconds:0} ms (hung); its tasks went back to the queue",
                    outcome.Outcome)
                {
                    Recheck = !outcome.Restarted ? "not run: no new incarnation yet"
                        : answer.Answer is OrchestratorPong pong ? $"answered a ping ({pong.Workers} workers)"
                        : $"no answer within {_options.PingTimeout.TotalMilliseconds:0} ms",
                });
            }
            return actions;
        }
        catch (Exception ex)
        {
            return new[] { new ActionReport("restart_orchestrator", "restarting the silent orchestrators", $"failed: {ex.GetBaseException().Message}") };
        }
    }

    /// <summary><c>restart_api_server</c>: restart the hosted listener, then re-check <c>GET {url}/health</c>.</summary>
    public async Task<ApiRepairResult?> RestartApiServerAsync(string observed)
    {
        if (_api is null) return null;
        ApiRestartResult restart;
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            restart = await _api.RestartAsync(cts.Token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            restart = new ApiRestartResult(false, $"restart threw {ex.GetType().Name}: {ex.Message}");
        }

        var (healthy, recheck) = await RecheckApiAsync().ConfigureAwait(false);
        var action = new ActionReport("restart_api_server", observed,
            restart.Listening ? $"restarted: {restart.Detail}" : $"restart failed: {restart.Detail}")
        {
            Recheck = recheck,
        };
        return new ApiRepairResult(action, restart.Listening && healthy);
    }

    private async Task<(bool Healthy, string Detail)> RecheckApiAsync()
    {
        if (_api?.BaseUrl is not { } baseUrl) return (false, "no URL: the API server is not listening");
        var url = new Uri(baseUrl, "health");
        var watch = Stopwatch.StartNew();
        try
        {
            using var cts = new CancellationTokenSource(_options.ApiTimeout);
            using var response = await Http.GetAsync(url, cts.Token).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            return response.IsSuccessStatusCode
                ? (true, $"GET /health answered {status} in {watch.ElapsedMilliseconds} ms")
                : (false, $"GET /health answered {status} in {watch.ElapsedMilliseconds} ms");
        }
        catch (Exception ex)
        {
            return (false, $"GET /health failed after {watch.ElapsedMilliseconds} ms: {ex.GetBaseException().Message}");
        }
    }

    private Task<IReadOnlyList<(string Name, object? Answer)>> PingAsync(IEnumerable<string> names) =>
        _pinger.AnswersAsync(names, _options.PingTimeout, CancellationToken.None);
}
