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
    DateTimeOffset? LastFullVerificationAt,
    string? PlatformFingerprint = null)
{
    public static readonly IntegrityWatermarks None = new(ImmutableDictionary<string, AuditPosition>.Empty, 0, null);

    public bool IsEmpty => Audit.IsEmpty && LedgerLineId == 0;

    /// <summary>
    /// Positions only mean something for the database they were verified on: pointed at another
    /// database (or another cluster), the checks start from nothing, with a full verification.
    /// </summary>
    public IntegrityWatermarks For(string fingerprint) =>
        PlatformFingerprint is null || PlatformFingerprint == fingerprint ? this : None;

    public IntegrityWatermarks Advance(IEnumerable<ICheckProgress> progress, bool fullVerification, DateTimeOffset at)
    {
        var items = progress.ToList();
        var fingerprint = items.OfType<IFingerprinted>().Select(p => p.PlatformFingerprint).FirstOrDefault(f => f is not null);
        var next = fingerprint is not null && PlatformFingerprint is not null && fingerprint != PlatformFingerprint ? None : this;
        if (fingerprint is not null) next = next with { PlatformFingerprint = fingerprint };
        foreach (var item in items)
            next = item switch
            {
                AuditProgress audit => next with { Audit = next.Audit.SetItems(audit.Positions) },
                LedgerProgress ledger => next with { LedgerLineId = Math.Max(next.LedgerLineId, ledger.LastLineId) },
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

/// <summary>The audit chains verified up to these positions.</summary>
public sealed record AuditProgress(ImmutableDictionary<string, AuditPosition> Positions, string? PlatformFingerprint = null) : ICheckProgress, IFingerprinted;

/// <summary>Journal lines verified up to this id.</summary>
public sealed record LedgerProgress(long LastLineId, string? PlatformFingerprint = null) : ICheckProgress, IFingerprinted;

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
