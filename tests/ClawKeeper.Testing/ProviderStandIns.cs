using ClawKeeper.Actors.Settings;

namespace ClawKeeper.Testing;

/// <summary>Configuration that points every external provider at a loopback stand-in (<see cref="LoopbackHttpServer"/>).</summary>
public static class ProviderStandIns
{
    /// <summary>
    /// HOCON setting <c>clawkeeper.integrations.{provider}</c> of every known provider to
    /// <c>{standIn}/{provider}/</c> with health path <c>health</c>.
    /// </summary>
    public static string Hocon(Uri standIn) =>
        string.Join("\n", ProviderSettings.KnownProviders.Select(p =>
            $"clawkeeper.integrations.{p} {{ base-url = \"{new Uri(standIn, p + "/")}\", health-path = \"health\" }}"));
}
