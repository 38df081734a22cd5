using System.Collections.Immutable;
using ClawKeeper.Actors.Checks;

namespace ClawKeeper.Actors.Checks.DataIntegrity;

/// <summary>A verified position in a tenant's audit chain: the entry <paramref name="Seq"/> had this hash.</summary>
public sealed record AuditPosition(long Seq, string Hash);

/// <summary>
/// What the data-integrity checks have verified so far, persisted by the supervisor so a steady
/// heartbeat reads only what was written since. A full verification ignores them.
/// </summary>
public sealed record IntegrityWatermarks(
    ImmutableDictionary<string, AuditPosition> Audit,
    long LedgerLineId,
    DateTimeOffset? LastFullVerificationAt)
{
    public static readonly IntegrityWatermarks None = new(ImmutableDictionary<string, AuditPosition>.Empty, 0, null);

    public bool IsEmpty => Audit.IsEmpty && LedgerLineId == 0;

    public IntegrityWatermarks Advance(IEnumerable<ICheckProgress> progress, bool fullVerification, DateTimeOffset at)
    {
        var next = this;
        foreach (var item in progress)
            next = item switch
            {
                AuditProgress audit => next with { Audit = next.Audit.SetItems(audit.Positions) },
                LedgerProgress ledger => next with { LedgerLineId = Math.Max(next.LedgerLineId, ledger.LastLineId) },
                _ => next,
            };
        return fullVerification ? next with { LastFullVerificationAt = at } : next;
    }
}

/// <summary>The audit chains verified up to these positions.</summary>
public sealed record AuditProgress(ImmutableDictionary<string, AuditPosition> Positions) : ICheckProgress;

/// <summary>Journal lines verified up to this id.</summary>
public sealed record LedgerProgress(long LastLineId) : ICheckProgress;
