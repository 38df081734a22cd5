namespace ClawKeeper.Host.Cli;

/// <summary>The documented exit codes (ARCHITECTURE.md §3).</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int ChecksFailed = 1;
    public const int UsageOrConfiguration = 2;
}
