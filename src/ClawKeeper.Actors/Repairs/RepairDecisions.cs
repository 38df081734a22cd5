using System.Collections.Immutable;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;

namespace ClawKeeper.Actors.Repairs;

/// <summary>Which repairs a round calls for (only checks that ran this round: a carried result is not new evidence).</summary>
public sealed record RepairPlan(bool RestartOrchestrators, bool RestartApiServer, string? ApiObserved)
{
    public static readonly RepairPlan None = new(false, false, null);

    public bool Any => RestartOrchestrators || RestartApiServer;
}

/// <summary>
/// Pure: the repairs of ARCHITECTURE.md §1 that the heartbeat carries out itself. They run at the
/// first (soft) failure, like Icinga event handlers — repair early, confirm with the retries, alert
/// when it is hard — except that restarting the API server always tells admin: a restart is an event
/// people must know about, even when it fixed things.
/// </summary>
public static class RepairDecisions
{
    public const string ApiServerCheck = "api_server_responding";
    public const string OrchestratorsCheck = "orchestrators_reachable";

    /// <summary>The admin's incident for API restarts: resolved (with a notice) when <c>api_server_responding</c> passes again.</summary>
    public static readonly string ApiRestartDedupKey = $"check:{CheckGroups.SystemHealth}/{ApiServerCheck}:admin";

    public static RepairPlan Plan(IReadOnlyList<GroupReport> ranThisRound, bool apiServerControlled)
    {
        var health = ranThisRound.FirstOrDefault(g => g.Group == CheckGroups.SystemHealth);
        if (health is null) return RepairPlan.None;
        var orchestrators = health.Checks.FirstOrDefault(c => c.Check == OrchestratorsCheck);
        var api = health.Checks.FirstOrDefault(c => c.Check == ApiServerCheck);
        var restartApi = apiServerControlled && api is not null && Checks.SystemHealth.ApiServerRespondingCheck.IsDown(api);
        return new RepairPlan(
            orchestrators is not null && orchestrators.Status == CheckStatus.Fail,
            restartApi,
            restartApi ? $"{api!.Status.ToWire()}: {api.Observed}. {api.Detail}".Trim() : null);
    }

    /// <summary>
    /// The admin alert after an API restart: one per incident (an open incident is reminded, not re-raised),
    /// held back while the check is flapping (its flapping notice speaks for it).
    /// </summary>
    public static AlertReport? ApiRestartAlert(ActionReport restart, bool recovered, ImmutableHashSet<string> openAlerts, bool flapping)
    {
        if (openAlerts.Contains(ApiRestartDedupKey) || flapping) return null;
        return new AlertReport("admin", new[] { "email", "discord" }, ApiRestartDedupKey, recovered ? "warning" : "critical",
            // The first sentence (up to ';' or '.') becomes the e-mail subject and Discord title: it names the restart.
            (recovered ? "the heartbeat restarted the API server, /health answers again" : "the heartbeat could not bring the API server back, /health does not answer")
            + $"; it had failed: {restart.Detail}; {restart.Outcome}; re-check: {restart.Recheck ?? "not run"}",
            "recorded");
    }
}
