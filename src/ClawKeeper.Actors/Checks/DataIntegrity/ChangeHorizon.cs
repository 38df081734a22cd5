using Npgsql;
using NpgsqlTypes;

namespace ClawKeeper.Actors.Checks.DataIntegrity;

/// <summary>
/// Which tuples changed since the last verified round, from PostgreSQL's own transaction ids
/// (docs/integrity.md, "Change detection"). Every INSERT and every UPDATE writes a new tuple whose
/// <c>xmin</c> is the writing transaction's id — whoever writes, with or without triggers, in replica
/// mode or not, whatever the row's id. A verified round records its snapshot's xmin horizon
/// (<c>pg_snapshot_xmin(pg_current_snapshot())</c>, 64-bit <c>xid8</c>): every transaction below it
/// had ended when the round read the tables, so every tuple written since, including those of
/// transactions still open then that commit later, carries an xid at or above the horizon.
/// <para>
/// The tuple's <c>xmin</c> is 32-bit. <c>age(xmin)</c> is its distance below the next transaction id
/// (<c>GetStableLatestTransactionId</c>, fixed for the transaction) and is exact while the distance is
/// below 2^31, which PostgreSQL guarantees for every tuple that is not frozen; freezing keeps the raw
/// xmin (since 9.4), so a frozen tuple still shows the transaction that wrote it. The round therefore
/// selects <c>age(xmin) between 0 and Limit</c> with <c>Limit = next − horizon</c> (64-bit). A limit at or
/// above <see cref="MaxUsableAge"/> (two billion transactions since the last verified round), a
/// horizon in the future (another cluster, <c>pg_resetwal</c>) or no horizon at all makes the round
/// examine every row instead.
/// </para>
/// <para>
/// <c>age()</c> is parallel-restricted, so a scan filtered by it runs in one process. When at most
/// <see cref="MaxListedXids"/> transaction ids were assigned since the horizon (the usual case between two
/// heartbeats), the round lists them instead — every 32-bit id from the horizon to the next id, the three
/// special ids skipped — and selects <c>xmin = any(@changed_xids)</c>: the same tuples (a normal xid's age is
/// between 0 and the limit exactly when it is one of those ids), tested by a hashed lookup that parallel
/// workers can run. The query must then bind <c>@changed_xids</c> with <see cref="Bind"/>.
/// </para>
/// </summary>
/// <param name="Snapshot">This round's snapshot xmin (xid8), the next round's horizon.</param>
/// <param name="Limit">The largest <c>age(xmin)</c> of a tuple written at or after the previous horizon; null = examine every row.</param>
/// <param name="CommitTimestamps">Whether <c>track_commit_timestamp</c> is on (the evidence then says when a row changed).</param>
/// <param name="Why">Why every row is examined (when <paramref name="Limit"/> is null).</param>
public sealed record ChangeHorizon(long Snapshot, long? Limit, bool CommitTimestamps, string? Why)
{
    public const long MaxUsableAge = 2_000_000_000;

    /// <summary>Up to this many transaction ids since the horizon, the predicate lists them (parallel-safe); beyond, it uses <c>age()</c>.</summary>
    public const long MaxListedXids = 250_000;

    /// <summary>The previous horizon (64-bit), when there is a usable one.</summary>
    public long? Previous { get; init; }

    /// <summary>How many transaction ids may be listed (<see cref="MaxListedXids"/>; 0 = always <c>age()</c>).</summary>
    public long ListLimit { get; init; } = MaxListedXids;

    /// <summary>The 32-bit transaction ids from the previous horizon to the next id (special ids skipped), when few enough to list.</summary>
    public uint[]? ChangedXids => Listed ? ListXids(Previous!.Value, Previous.Value + Limit!.Value) : null;

    private bool Listed => Limit is { } limit && Previous is not null && limit <= ListLimit;

    private static uint[] ListXids(long from, long to)
    {
        var xids = new List<uint>((int)(to - from + 1));
        for (var x = from; x <= to; x++)
            if ((uint)x >= 3) xids.Add((uint)x);   // 0, 1 and 2 are the invalid, bootstrap and frozen ids: age() never counts them
        return xids.ToArray();
    }

    /// <summary>The predicate on a table alias: the tuple was written at or after the previous horizon.</summary>
    public string ChangedSql(string alias) => Limit is null ? "true"
        : Listed ? $"({alias}.xmin = any(@changed_xids))"
        : $"(age({alias}.xmin) between 0 and {Limit.Value})";

    /// <summary>Binds <c>@changed_xids</c> (typed <c>xid[]</c>) when <see cref="ChangedSql"/> uses it; returns the command.</summary>
    public NpgsqlCommand Bind(NpgsqlCommand command)
    {
        if (ChangedXids is { } xids && !command.Parameters.Contains("changed_xids"))
            command.Parameters.Add(new NpgsqlParameter("changed_xids", NpgsqlDbType.Array | NpgsqlDbType.Xid) { Value = xids });
        return command;
    }

    /// <summary>The commit time of a tuple's writer as text, or null when the database does not record it.</summary>
    public string CommitTimeSql(string alias) => CommitTimestamps
        ? $"to_char(pg_xact_commit_timestamp({alias}.xmin) at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
        : "null::text";

    /// <summary>How the evidence names when a row changed.</summary>
    public static string Describe(string? xid, string? committedAt, bool commitTimestamps) =>
        $"written by transaction {xid ?? "?"}" + (committedAt is not null ? $", committed {committedAt}"
            : commitTimestamps ? ", commit time unknown" : " (commit time not recorded: track_commit_timestamp is off)");

    /// <summary>
    /// Reads this transaction's snapshot horizon and the limit for <paramref name="previous"/>. Call as the first
    /// statement of a REPEATABLE READ transaction, so that the snapshot is the one every later query reads.
    /// </summary>
    public static async Task<ChangeHorizon> ReadAsync(NpgsqlConnection connection, long? previous, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("""
            select pg_snapshot_xmin(pg_current_snapshot())::text::bigint,
                   pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
                   age('3'::xid),
                   current_setting('track_commit_timestamp') = 'on'
            """, connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var snapshot = reader.GetInt64(0);
        var xmax = reader.GetInt64(1);
        var next32 = (uint)(reader.GetInt32(2) + 3);
        var timestamps = reader.GetBoolean(3);
        // The 64-bit next xid: at or after the snapshot's xmax, less than 2^32 beyond it.
        var next = xmax + (long)(uint)(next32 - (uint)xmax);
        if (previous is not { } horizon)
            return new ChangeHorizon(snapshot, null, timestamps, "no verified round recorded a change horizon yet");
        var limit = next - horizon;
        if (limit < 0)
            return new ChangeHorizon(snapshot, null, timestamps, $"the recorded horizon (xid {horizon}) is ahead of this database's next transaction id ({next}): restored or reset?");
        if (limit >= MaxUsableAge)
            return new ChangeHorizon(snapshot, null, timestamps, $"{limit} transactions since the last verified round: beyond the 32-bit xmin's safe range");
        return new ChangeHorizon(snapshot, limit, timestamps, null) { Previous = horizon };
    }
}
