using Npgsql;

namespace ClawKeeper.Platform.WriteBlocks;

/// <summary>A row of <c>write_blocks</c>.</summary>
public sealed record WriteBlockRow(
    long Id,
    string Reason,
    DateTimeOffset ImposedAt,
    string? ImposedBy,
    DateTimeOffset? LiftedAt,
    string? LiftedBy,
    string? LiftReason)
{
    public bool IsOpen => LiftedAt is null;
}

/// <summary>The open block (if any) and the most recent ones.</summary>
public sealed record WriteBlockStatus(WriteBlockRow? Open, IReadOnlyList<WriteBlockRow> Recent)
{
    public WriteBlockRow? Find(long id) => Recent.FirstOrDefault(b => b.Id == id);
}

/// <summary>
/// The database side of write blocks (migration 0002): while a block is open, triggers refuse
/// every write to the financial tables. Imposing and lifting are audited in the system chain.
/// </summary>
public sealed class WriteBlockStore
{
    /// <summary>SQLSTATE raised by the write-block guard trigger.</summary>
    public const string BlockedSqlState = "CK001";

    private readonly NpgsqlDataSource _platform;

    public WriteBlockStore(NpgsqlDataSource platform) => _platform = platform;

    /// <summary>Opens a block, or returns the id of the one already open.</summary>
    public async Task<long> ImposeAsync(string reason, string imposedBy, CancellationToken cancellationToken = default)
    {
        await using var command = _platform.CreateCommand("select impose_write_block($1, $2)");
        command.Parameters.Add(new NpgsqlParameter { Value = reason });
        command.Parameters.Add(new NpgsqlParameter { Value = imposedBy });
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>Lifts the open block; null when none was open.</summary>
    public async Task<long?> LiftAsync(string liftedBy, string reason, CancellationToken cancellationToken = default)
    {
        await using var command = _platform.CreateCommand("select lift_write_block($1, $2)");
        command.Parameters.Add(new NpgsqlParameter { Value = liftedBy });
        command.Parameters.Add(new NpgsqlParameter { Value = reason });
        var result = await command.ExecuteScalarAsync(cancellationToken);
        return result is long id ? id : null;
    }

    public async Task<WriteBlockStatus> StatusAsync(int recent = 10, CancellationToken cancellationToken = default)
    {
        var open = (await ReadAsync("where lifted_at is null order by id limit 1", null, cancellationToken)).FirstOrDefault();
        var rows = await ReadAsync("order by id desc limit $1", recent, cancellationToken);
        return new WriteBlockStatus(open, rows);
    }

    private async Task<IReadOnlyList<WriteBlockRow>> ReadAsync(string tail, int? limit, CancellationToken cancellationToken)
    {
        await using var command = _platform.CreateCommand(
            "select id, reason, imposed_at, imposed_by, lifted_at, lifted_by, lift_reason from write_blocks " + tail);
        if (limit is { } n) command.Parameters.Add(new NpgsqlParameter { Value = n });
        var rows = new List<WriteBlockRow>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
            rows.Add(new WriteBlockRow(
                reader.GetInt64(0),
                reader.GetString(1),
                reader.GetFieldValue<DateTimeOffset>(2),
                reader.IsDBNull(3) ? null : reader.GetString(3),
                reader.IsDBNull(4) ? null : reader.GetFieldValue<DateTimeOffset>(4),
                reader.IsDBNull(5) ? null : reader.GetString(5),
                reader.IsDBNull(6) ? null : reader.GetString(6)));
        return rows;
    }
}
