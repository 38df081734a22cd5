using System.Globalization;
using System.Text;

namespace ClawKeeper.Platform.Tasks;

/// <summary>
/// The distributions of <see cref="SimulatedTaskExecutor"/>.
/// <list type="bullet">
/// <item><b>Duration</b>: log-uniform between <paramref name="MinDuration"/> and <paramref name="MaxDuration"/>
/// (as many tasks between 0.2 s and 2 s as between 2 s and 20 s: mostly short tasks, a long tail), like
/// LLM agent calls. Equal bounds give a fixed duration; zero gives no delay at all.</item>
/// <item><b>Tokens</b>: uniform integer in [<paramref name="MinTokens"/>, <paramref name="MaxTokens"/>].</item>
/// <item><b>Cost</b>: tokens / 1000 × a price per 1k tokens drawn uniformly in
/// [<paramref name="MinCostPer1kTokens"/>, <paramref name="MaxCostPer1kTokens"/>], rounded to 6 decimals (USD).</item>
/// <item><b>Failures</b>: an attempt fails with probability <paramref name="FailureRatio"/> (0..1), after a
/// random part of its duration and having spent that part of its tokens; the failure is retryable.</item>
/// <item><b>Determinism</b>: every draw comes from a generator seeded with (<paramref name="Seed"/>, task id,
/// attempt), so a given attempt of a given task always gets the same duration, usage and outcome, whatever
/// the concurrency or the order in which tasks run; a retried attempt draws anew.</item>
/// </list>
/// </summary>
public sealed record SimulatedTaskProfile(
    TimeSpan MinDuration,
    TimeSpan MaxDuration,
    long MinTokens,
    long MaxTokens,
    decimal MinCostPer1kTokens,
    decimal MaxCostPer1kTokens,
    double FailureRatio,
    long Seed)
{
    /// <summary>The demo's defaults: 0.2–5 s, 200–4000 tokens at $0.002–0.03 per 1k, 2 % failures.</summary>
    public static readonly SimulatedTaskProfile Default = new(
        TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(5), 200, 4000, 0.002m, 0.03m, 0.02, 42);

    /// <summary>Null when consistent, otherwise what is wrong.</summary>
    public string? Problem() =>
        MinDuration < TimeSpan.Zero || MaxDuration < MinDuration ? "durations: need 0 <= min <= max"
        : MinTokens < 0 || MaxTokens < MinTokens ? "tokens: need 0 <= min <= max"
        : MinCostPer1kTokens < 0 || MaxCostPer1kTokens < MinCostPer1kTokens ? "cost per 1k tokens: need 0 <= min <= max"
        : FailureRatio is < 0 or > 1 || double.IsNaN(FailureRatio) ? "failure ratio: need 0..1"
        : null;
}

/// <summary>
/// A worker that pretends to be an AI agent: waits a while, reports token usage and cost, and
/// sometimes fails — see <see cref="SimulatedTaskProfile"/> for the distributions. Honours
/// cancellation at once. Deterministic per (seed, task, attempt).
/// </summary>
public sealed class SimulatedTaskExecutor : ITaskExecutor
{
    private readonly SimulatedTaskProfile _profile;
    private readonly Func<TimeSpan, CancellationToken, Task> _delay;

    public SimulatedTaskExecutor(SimulatedTaskProfile profile, Func<TimeSpan, CancellationToken, Task>? delay = null)
    {
        if (profile.Problem() is { } problem) throw new ArgumentException($"Invalid simulated task profile: {problem}", nameof(profile));
        _profile = profile;
        _delay = delay ?? ((span, ct) => span <= TimeSpan.Zero ? Task.CompletedTask : Task.Delay(span, ct));
    }

    public SimulatedTaskProfile Profile => _profile;

    /// <summary>The attempt as it will run (pure): duration, outcome, tokens, cost.</summary>
    public SimulatedAttempt Plan(string taskId, int attempt)
    {
        var random = new SplitMix64(StableSeed(_profile.Seed, taskId, attempt));
        var p = _profile;

        var duration = p.MaxDuration <= p.MinDuration || p.MinDuration <= TimeSpan.Zero
            ? TimeSpan.FromTicks(p.MinDuration.Ticks + (long)((p.MaxDuration.Ticks - p.MinDuration.Ticks) * random.NextDouble()))
            : TimeSpan.FromTicks((long)Math.Exp(Math.Log(p.MinDuration.Ticks) + (Math.Log(p.MaxDuration.Ticks) - Math.Log(p.MinDuration.Ticks)) * random.NextDouble()));
        var tokens = p.MinTokens + (long)Math.Floor((p.MaxTokens - p.MinTokens + 1) * random.NextDouble());
        tokens = Math.Min(tokens, p.MaxTokens);
        var pricePer1k = p.MinCostPer1kTokens + (p.MaxCostPer1kTokens - p.MinCostPer1kTokens) * (decimal)random.NextDouble();
        var fails = random.NextDouble() < p.FailureRatio;
        var spent = fails ? random.NextDouble() : 1.0;

        var usedTokens = fails ? (long)Math.Floor(tokens * spent) : tokens;
        var ran = fails ? TimeSpan.FromTicks((long)(duration.Ticks * spent)) : duration;
        var cost = Math.Round(usedTokens / 1000m * pricePer1k, 6, MidpointRounding.AwayFromZero);
        return new SimulatedAttempt(ran, !fails, usedTokens, cost);
    }

    public async Task<TaskExecution> ExecuteAsync(ClaimedTask task, CancellationToken ct)
    {
        var plan = Plan(task.Id, task.Attempt);
        await _delay(plan.Duration, ct).ConfigureAwait(false);
        ct.ThrowIfCancellationRequested();
        var output = $$"""{"simulated":true,"kind":{{System.Text.Json.JsonSerializer.Serialize(task.Kind)}},"durationMs":{{(long)plan.Duration.TotalMilliseconds}}}""";
        return plan.Succeeds
            ? TaskExecution.Completed(plan.TokensUsed, plan.Cost, output)
            : TaskExecution.Failed(
                string.Create(CultureInfo.InvariantCulture, $"simulated failure of {task.Kind} task {task.Id} (attempt {task.Attempt}) after {plan.Duration.TotalMilliseconds:0} ms"),
                plan.TokensUsed, plan.Cost);
    }

    /// <summary>FNV-1a over (seed, task id, attempt): stable across processes and .NET versions (unlike string.GetHashCode).</summary>
    private static ulong StableSeed(long seed, string taskId, int attempt)
    {
        var hash = 14695981039346656037UL;
        foreach (var b in Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{seed}\u001f{taskId}\u001f{attempt}")))
        {
            hash ^= b;
            hash *= 1099511628211UL;
        }

        return hash;
    }

    /// <summary>SplitMix64: tiny, fast, and its sequence is fixed forever by its definition.</summary>
    private struct SplitMix64(ulong state)
    {
        private ulong _state = state;

        public double NextDouble()
        {
            var z = _state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            z ^= z >> 31;
            return (z >> 11) * (1.0 / (1UL << 53));
        }
    }
}

/// <summary>One planned attempt of the simulated executor.</summary>
public sealed record SimulatedAttempt(TimeSpan Duration, bool Succeeds, long TokensUsed, decimal Cost);
