namespace ClawKeeper.Actors.Checks;

/// <summary>
/// One check of the heartbeat table (ARCHITECTURE.md §1). A check measures, compares with its
/// threshold and returns evidence a person can act on; it never throws for a finding.
/// </summary>
public interface IPlatformCheck
{
    /// <summary>The contract id, e.g. <c>queue_depth</c>.</summary>
    string Id { get; }

    /// <summary>After this the check is reported as <c>error</c> and the group moves on.</summary>
    TimeSpan Timeout { get; }

    Task<CheckOutcome> RunAsync(CheckContext context, CancellationToken cancellationToken);
}
