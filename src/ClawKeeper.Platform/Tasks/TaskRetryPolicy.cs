namespace ClawKeeper.Platform.Tasks;

/// <summary>
/// How failed attempts are retried. <c>tasks.attempts</c> counts claims, so a task fails for good
/// when an attempt fails and <c>attempts &gt;= MaxAttempts</c>; before that it goes back to
/// <c>pending</c>, claimable from <c>now() + Delay(attempt)</c>.
/// </summary>
/// <param name="MaxAttempts">Claims a task gets before a failure is final (1 = never retried).</param>
/// <param name="BaseDelay">Delay after the first failed attempt; doubles per attempt.</param>
/// <param name="MaxDelay">Cap of the delay.</param>
/// <param name="Jitter">0..1: the delay is reduced by up to this fraction at random (0 = exact, for tests).</param>
public sealed record TaskRetryPolicy(int MaxAttempts, TimeSpan BaseDelay, TimeSpan MaxDelay, double Jitter = 0.2)
{
    public static readonly TaskRetryPolicy Default = new(3, TimeSpan.FromSeconds(10), TimeSpan.FromMinutes(10));

    public TimeSpan Delay(int failedAttempt, Random? random = null) =>
        Backoff.Exponential(BaseDelay, MaxDelay, failedAttempt, Jitter, random);
}

/// <summary>Capped exponential backoff with jitter.</summary>
public static class Backoff
{
    /// <summary>
    /// <c>min(max, initial · 2^(n-1))</c>, then reduced by a random fraction of up to <paramref name="jitter"/>
    /// (so many clients that failed together do not come back together). <paramref name="n"/> &lt; 1 counts as 1.
    /// </summary>
    public static TimeSpan Exponential(TimeSpan initial, TimeSpan max, int n, double jitter, Random? random = null)
    {
        var exponent = Math.Clamp(n - 1, 0, 30);
        var ticks = Math.Min((double)max.Ticks, initial.Ticks * Math.Pow(2, exponent));
        var fraction = Math.Clamp(jitter, 0, 1) * (random ?? Random.Shared).NextDouble();
        return TimeSpan.FromTicks((long)Math.Max(0, ticks * (1 - fraction)));
    }
}
