using System.Diagnostics;

namespace ClawKeeper.Actors.Checks;

/// <summary>Runs checks concurrently, each under its own timeout; a slow or crashing check becomes an <c>error</c> line.</summary>
public static class CheckRunner
{
    public static async Task<IReadOnlyList<CheckResult>> RunAllAsync(IReadOnlyList<IPlatformCheck> checks, CheckContext context, CancellationToken cancellationToken)
    {
        var results = await Task.WhenAll(checks.Select(c => RunOneAsync(c, context, cancellationToken))).ConfigureAwait(false);
        return results;
    }

    public static async Task<CheckResult> RunOneAsync(IPlatformCheck check, CheckContext context, CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // The check's own timeout, or the round's deadline when that comes first: past it nobody reads the answer,
        // so the token cancels the check's queries on the server (Npgsql sends a cancel request) instead of leaving them running.
        var limit = context.Deadline is { } deadline && deadline < check.Timeout ? deadline : check.Timeout;
        timeout.CancelAfter(limit);
        CheckOutcome outcome;
        try
        {
            var running = Task.Run(() => check.RunAsync(context, timeout.Token), CancellationToken.None);
            // A check that ignores its token must not hold the heartbeat: stop waiting at the timeout.
            var finished = await Task.WhenAny(running, Task.Delay(Timeout.InfiniteTimeSpan, timeout.Token)).ConfigureAwait(false);
            if (finished == running)
            {
                outcome = await running.ConfigureAwait(false);
            }
            else
            {
                _ = running.ContinueWith(t => _ = t.Exception, TaskScheduler.Default); // observe a late failure
                outcome = TimedOut(check, limit);
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            outcome = TimedOut(check, limit);
        }
        catch (Exception ex)
        {
            outcome = CheckOutcome.Error("evaluated without exception", $"{ex.GetType().Name}: {FirstLine(ex.Message)}");
        }
        return new CheckResult(check.Id, outcome.Status, outcome.Observed, outcome.Threshold, outcome.Detail, stopwatch.ElapsedMilliseconds)
        {
            // A warn may carry progress too: a round on another database warns and its positions replace the old ones.
            Progress = outcome.Status is CheckStatus.Pass or CheckStatus.Warn ? outcome.Progress : null,
        };
    }

    private static CheckOutcome TimedOut(IPlatformCheck check, TimeSpan limit) =>
        new(CheckStatus.Error, $"no answer after {limit.TotalMilliseconds:0} ms", $"answer within {limit.TotalMilliseconds:0} ms",
            limit < check.Timeout
                ? $"{check.Id} did not finish by the round's deadline ({limit.TotalMilliseconds:0} ms): cancelled, its queries stopped on the server"
                : $"{check.Id} did not finish within its timeout of {check.Timeout.TotalMilliseconds:0} ms: cancelled, its queries stopped on the server");

    private static string FirstLine(string message)
    {
        var index = message.IndexOfAny(new[] { '\r', '\n' });
        return index < 0 ? message : message[..index];
    }
}
