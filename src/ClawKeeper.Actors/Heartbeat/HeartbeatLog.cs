using Akka.Event;
using ClawKeeper.Actors.Checks;

namespace ClawKeeper.Actors.Heartbeat;

/// <summary>Structured log lines of a heartbeat: one summary, one line per check (problems louder).</summary>
public static class HeartbeatLog
{
    public static void Write(ILoggingAdapter log, HeartbeatReport report)
    {
        var problems = report.Problems().Select(p => $"{p.Group}/{p.Check.Check}").ToList();
        var summaryLevel = report.Status == HeartbeatStatus.Pass ? LogLevel.InfoLevel : LogLevel.WarningLevel;
        Write(log, summaryLevel,
            "Heartbeat {HeartbeatId} {HeartbeatStatus} in {DurationMs} ms: {CheckCount} checks, {ProblemCount} failed or errored{Problems}; consecutive failures {ConsecutiveFailures}{DryRun}",
            report.Id, report.Status.ToString().ToLowerInvariant(), report.DurationMs, report.AllChecks().Count(), problems.Count,
            problems.Count == 0 ? "" : " (" + string.Join(", ", problems) + ")", report.ConsecutiveFailures, report.DryRun ? " (dry run: nothing persisted)" : "");
        foreach (var (group, check) in report.AllChecks())
        {
            var level = check.Status switch
            {
                CheckStatus.Fail or CheckStatus.Error => LogLevel.WarningLevel,
                _ => LogLevel.InfoLevel,
            };
            var state = (check.Status.IsProblem() && check.State is not null ? $" ({check.State} {check.Attempt})" : "")
                        + (check.Flapping == true ? " (flapping)" : "") + (check.CarriedFrom is null ? "" : $" (carried from {check.CarriedFrom})");
            Write(log, level, "  {Group}/{Check} {CheckStatus} observed={Observed} threshold={Threshold} {DurationMs} ms {Detail}{CheckState}",
                group, check.Check, check.Status.ToWire(), check.Observed, check.Threshold, check.DurationMs, check.Detail, state);
        }
        foreach (var action in report.Actions)
            log.Warning("Action {Action}: {Detail} -> {Outcome}{Recheck}", action.Action, action.Detail, action.Outcome,
                action.Recheck is null ? "" : $"; re-check: {action.Recheck}");
        foreach (var alert in report.Alerts)
            log.Warning("Alert for {Audience} via {Channels} [{DedupKey}] {Severity}: {Summary} ({Delivery})",
                alert.Audience, string.Join("+", alert.Channels), alert.DedupKey, alert.Severity, alert.Summary, alert.Delivery);
    }

    private static void Write(ILoggingAdapter log, LogLevel level, string template, params object[] args)
    {
        if (level == LogLevel.WarningLevel) log.Warning(template, args);
        else log.Info(template, args);
    }
}
