using Microsoft.Data.Sqlite;

namespace ClawKeeper.Actors.Hosting;

/// <summary>
/// The local durable SQLite files beside a node (the heartbeat's spool, the API's submission buffer):
/// every connection commits with <c>synchronous = FULL</c> (a commit is on the disk before it returns)
/// and waits for another writer instead of failing at once.
/// </summary>
public static class DurableSqlite
{
    public static SqliteConnection Open(string connectionString)
    {
        var connection = new SqliteConnection(connectionString);
        connection.Open();
        Execute(connection, "PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;");
        return connection;
    }

    public static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
