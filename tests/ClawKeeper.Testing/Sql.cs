using Npgsql;

namespace ClawKeeper.Testing;

/// <summary>Tiny helpers for tests that talk SQL directly. Parameters are positional (<c>$1</c>, <c>$2</c>, ...).</summary>
public static class Sql
{
    public static async Task<T> ScalarAsync<T>(string connectionString, string sql, params object?[] parameters)
    {
        await using var connection = await OpenAsync(connectionString);
        return await ScalarAsync<T>(connection, sql, parameters);
    }

    public static async Task<T> ScalarAsync<T>(NpgsqlConnection connection, string sql, params object?[] parameters)
    {
        await using var command = Command(connection, sql, parameters);
        return await command.ExecuteScalarAsync() switch
        {
            null or DBNull => default!,
            T typed => typed,
            var other => (T)Convert.ChangeType(other, Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T), System.Globalization.CultureInfo.InvariantCulture),
        };
    }

    public static async Task<int> ExecuteAsync(string connectionString, string sql, params object?[] parameters)
    {
        await using var connection = await OpenAsync(connectionString);
        return await ExecuteAsync(connection, sql, parameters);
    }

    public static async Task<int> ExecuteAsync(NpgsqlConnection connection, string sql, params object?[] parameters)
    {
        await using var command = Command(connection, sql, parameters);
        return await command.ExecuteNonQueryAsync();
    }

    /// <summary>All rows, each as an array of column values (DBNull becomes null).</summary>
    public static async Task<IReadOnlyList<object?[]>> RowsAsync(string connectionString, string sql, params object?[] parameters)
    {
        await using var connection = await OpenAsync(connectionString);
        return await RowsAsync(connection, sql, parameters);
    }

    public static async Task<IReadOnlyList<object?[]>> RowsAsync(NpgsqlConnection connection, string sql, params object?[] parameters)
    {
        await using var command = Command(connection, sql, parameters);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<object?[]>();
        while (await reader.ReadAsync())
        {
            var row = new object?[reader.FieldCount];
            for (var i = 0; i < row.Length; i++)
            {
                row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            }

            rows.Add(row);
        }

        return rows;
    }

    public static async Task<NpgsqlConnection> OpenAsync(string connectionString)
    {
        var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        return connection;
    }

    private static NpgsqlCommand Command(NpgsqlConnection connection, string sql, object?[] parameters)
    {
        var command = new NpgsqlCommand(sql, connection);
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = parameter ?? DBNull.Value });
        }

        return command;
    }
}
