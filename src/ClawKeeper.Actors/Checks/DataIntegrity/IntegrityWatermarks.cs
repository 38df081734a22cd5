using System.Collections.Immutable;
using ClawKeeper.Actors.Checks;

namespace ClawKeeper.Actors.Checks.DataIntegrity;

/// <summary>A verified position in a tenant's audit chain: the entry <paramref name="Seq"/> had this hash.</summary>
public sealed record AuditPosition(long Seq, string Hash);

/// <summary>
/// What the data-integrity checks have verified so far, persisted by the supervisor so a steady
/// heartbeat reads only what was written since (and every row changed since).
/// </summary>
/// <param name="Audit">The verified audit-chain positions (the anchors: every round, full ones too, compares against them).</param>
/// <param name="LedgerLineId">The highest journal line id of the last verified ledger round.</param>
/// <param name="LastFullVerificationAt">When the last full verification that passed completed.</param>
/// <param name="PlatformFingerprint">The database the positions were verified on (<see cref="PlatformFingerprint"/>).</param>
/// <param name="AuditHorizon">
/// The snapshot xmin (64-bit <c>xid8</c>) of the last audit round that passed: every audit_log tuple written
/// since has a transaction id at or above it, so the next round re-examines exactly those (see docs/integrity.md).
/// </param>
/// <param name="LedgerHorizon">The same for the books (journal_lines, journal_entries, ledger_accounts, ledger_balances).</param>
/// <param name="LedgerLineCounts">Journal lines per tenant in the last verified ledger round (deleted lines show as missing ones).</param>
public sealed record IntegrityWatermarks(
    ImmutableDictionary<string, AuditPosition> Audit,
    long LedgerLineId,
    DateTimeOffset? LastFullVerificationAt,
    string? PlatformFingerprint = null,
    long? AuditHorizon = null,
    long? LedgerHorizon = null,
    ImmutableDictionary<string, long>? LedgerLineCounts = null)
{
    public static readonly IntegrityWatermarks None = new(ImmutableDictionary<string, AuditPosition>.Empty, 0, null);

    public bool IsEmpty => Audit.IsEmpty && LedgerLineId == 0;

    /// <summary>
    /// Positions only mean something for the database they were verified on: pointed at another
    /// database (or another cluster), the checks start from nothing, with a full verification
    /// (and say so: see <see cref="FingerprintChange"/>).
    /// </summary>
    public IntegrityWatermarks For(string fingerprint) =>
        PlatformFingerprint is null || PlatformFingerprint == fingerprint ? this : None;

    /// <summary>
    /// When positions exist but were verified on another database than <paramref name="fingerprint"/>: the sentence
    /// the checks report (as <c>warn</c>) instead of dropping the positions silently; null otherwise.
    /// </summary>
    public string? FingerprintChange(string fingerprint) =>
        PlatformFingerprint is not null && PlatformFingerprint != fingerprint && !IsEmpty
            ? $"the verified positions were recorded on another database ({PlatformFingerprint}); this is {fingerprint}: " +
              "they were not compared, this round verified it from the beginning and its positions replace them"
            : null;

    public IntegrityWatermarks Advance(IEnumerable<ICheckProgress> progress, bool fullVerification, DateTimeOffset at)
    {
        var items = progress.ToList();
        var fingerprint = items.OfType<IFingerprinted>().Select(p => p.PlatformFingerprint).FirstOrDefault(f => f is not null);
        var next = fingerprint is not null && PlatformFingerprint is not null && fingerprint != PlatformFingerprint ? None : this;
        if (fingerprint is not null) next = next with { PlatformFingerprint = fingerprint };
        foreach (var item in items)
            next = item switch
            {
                AuditProgress audit => next with
                {
                    Audit = next.Audit.SetItems(audit.Positions),
                    AuditHorizon = audit.Horizon ?? next.AuditHorizon,
                },
                LedgerProgress ledger => next with
                {
                    LedgerLineId = ledger.Horizon is null ? Math.Max(next.LedgerLineId, ledger.LastLineId) : ledger.LastLineId,
                    LedgerHorizon = ledger.Horizon ?? next.LedgerHorizon,
                    LedgerLineCounts = ledger.LineCounts ?? next.LedgerLineCounts,
                },
                _ => next,
            };
        return fullVerification ? next with { LastFullVerificationAt = at } : next;
    }
}

/// <summary>Progress that names the database it was verified on.</summary>
public interface IFingerprinted
{
    string? PlatformFingerprint { get; }
}

/// <summary>The audit chains verified up to these positions, and every change up to the snapshot horizon.</summary>
public sealed record AuditProgress(ImmutableDictionary<string, AuditPosition> Positions, string? PlatformFingerprint = null, long? Horizon = null) : ICheckProgress, IFingerprinted;

/// <summary>Journal lines verified up to this id, every change up to the snapshot horizon, and the lines per tenant then.</summary>
public sealed record LedgerProgress(long LastLineId, string? PlatformFingerprint = null, long? Horizon = null, ImmutableDictionary<string, long>? LineCounts = null) : ICheckProgress, IFingerprinted;

/// <summary>Which database a connection reaches: the cluster's system identifier and the database's oid and name.</summary>
public static class PlatformFingerprint
{
    public static async Task<string> ReadAsync(Npgsql.NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new Npgsql.NpgsqlCommand("""
            select coalesce((select system_identifier::text from pg_control_system()), 'cluster?') || '/' || d.oid || '/' || d.datname
            from pg_database d where d.datname = current_database()
            """, connection);
        try
        {
            return (string)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }
        catch (Npgsql.PostgresException)
        {
            // pg_control_system() needs pg_monitor or superuser; the database's oid and name still tell databases apart.
            await using var fallback = new Npgsql.NpgsqlCommand("select 'cluster?/' || oid || '/' || datname from pg_database where datname = current_database()", connection);
            return (string)(await fallback.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }
    }
}
