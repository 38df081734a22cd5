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
        timeout.CancelAfter(check.Timeout);
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
                outcome = TimedOut(check);
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            outcome = TimedOut(check);
        }
        catch (Exception ex)
        {
            outcome = CheckOutcome.Error("evaluated without exception", $"{ex.GetType().Name}: {FirstLine(ex.Message)}");
        }
        return new CheckResult(check.Id, outcome.Status, outcome.Observed, outcome.Threshold, outcome.Detail, stopwatch.ElapsedMilliseconds)
        {
            Progress = outcome.Status == CheckStatus.Pass ? outcome.Progress : null,
        };
    }

    private static CheckOutcome TimedOut(IPlatformCheck check) =>
        new(CheckStatus.Error, $"no answer after {check.Timeout.TotalMilliseconds:0} ms", $"answer within {check.Timeout.TotalMilliseconds:0} ms",
            $"{check.Id} did not finish within its timeout of {check.Timeout.TotalMilliseconds:0} ms");

    private static string FirstLine(string message)
    {
        var index = message.IndexOfAny(new[] { '\r', '\n' });
        return index < 0 ? message : message[..index];
    }
}
