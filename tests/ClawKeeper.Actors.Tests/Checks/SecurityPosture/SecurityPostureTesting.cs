using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.SecurityPosture;

namespace ClawKeeper.Actors.Tests.Checks.SecurityPosture;

internal static class SecurityPostureTesting
{
    /// <summary>Generous timeout: the machine is shared by parallel builds and test runs.</summary>
    public static readonly SecurityPostureSettings Posture = SecurityPostureSettings.Defaults with { Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>Whole seconds, so a boundary event stored by PostgreSQL (µs) equals the window bound exactly.</summary>
    public static DateTimeOffset Now() => DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds());

    public static CheckContext Context(DateTimeOffset startedAt, DateTimeOffset? previousCompletedAt, string id = "heartbeat-test") =>
        new(id, startedAt, previousCompletedAt);

    public static Task<CheckResult> RunAsync(IPlatformCheck check, CheckContext? context = null) =>
        CheckRunner.RunOneAsync(check, context ?? Context(Now(), Now().AddHours(-4)), CancellationToken.None);
}
