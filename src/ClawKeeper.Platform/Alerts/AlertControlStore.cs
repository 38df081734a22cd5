using Npgsql;

namespace ClawKeeper.Platform.Alerts;

/// <summary>An operator control of the alerts (table <c>alert_controls</c>).</summary>
public sealed record AlertControl(long Id, string Kind, string Target, DateTimeOffset? Until, string CreatedBy, string Reason, DateTimeOffset CreatedAt)
{
    public bool IsAck => Kind == "ack";
    public bool IsSilence => Kind == "silence";
}

/// <summary>Acknowledgements and silences, persisted in the platform database.</summary>
public sealed class AlertControlStore
{
    private readonly NpgsqlDataSource _platform;

    public AlertControlStore(NpgsqlDataSource platform) => _platform = platform;

    /// <summary>Acks not revoked, and silences whose window has not ended.</summary>
    public async Task<IReadOnlyList<AlertControl>> ActiveAsync(DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        await using var command = _platform.CreateCommand("""
            select id, kind, target, until, created_by, reason, created_at from alert_controls
            where revoked_at is null and (kind = 'ack' or until > $1)
            order by id
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = now.UtcDateTime });
        var controls = new List<AlertControl>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
            controls.Add(new AlertControl(reader.GetInt64(0), reader.GetString(1), reader.GetString(2),
                reader.IsDBNull(3) ? null : reader.GetFieldValue<DateTimeOffset>(3), reader.GetString(4), reader.GetString(5),
                reader.GetFieldValue<DateTimeOffset>(6)));
        return controls;
    }

    public async Task<long> AddAsync(string kind, string target, DateTimeOffset? until, string createdBy, string reason, CancellationToken cancellationToken = default)
    {
        await using var command = _platform.CreateCommand(
            "insert into alert_controls (kind, target, until, created_by, reason) values ($1, $2, $3, $4, $5) returning id");
        command.Parameters.Add(new NpgsqlParameter { Value = kind });
        command.Parameters.Add(new NpgsqlParameter { Value = target });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)until?.UtcDateTime ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new NpgsqlParameter { Value = createdBy });
        command.Parameters.Add(new NpgsqlParameter { Value = reason });
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }
}
