using Akka.Serialization;
using ClawKeeper.Actors.Hosting;
using Microsoft.Data.Sqlite;

namespace ClawKeeper.Actors.Heartbeat.Journal;

/// <summary>A batch of heartbeat events waiting in the spool for the journal.</summary>
public sealed record SpooledBatch(long Seq, IReadOnlyList<IHeartbeatEvent> Events);

/// <summary>
/// The heartbeat's local durable spool: a SQLite file beside the node (WAL, <c>synchronous = FULL</c>).
/// Every batch of heartbeat events is written here before it is handed to the journal and stays until the
/// journal confirmed it, together with the last full state, so that a journal (or database) outage loses
/// nothing the supervisor decided, also when the node restarts during the outage. Events are stored with
/// the project's serializer manifests. One file may hold several persistence ids (node and <c>check --once</c>).
/// Not thread-safe: used by one actor. Rows are keyed by persistence id and journal (see the supervisor).
/// </summary>
public sealed class HeartbeatSpool
{
    private const string StateManifestKey = "state";
    private readonly string _connectionString;
    private readonly string _persistenceId;
    private readonly SerializerWithStringManifest _serializer;

    private HeartbeatSpool(string path, string persistenceId, SerializerWithStringManifest serializer)
    {
        Path = path;
        _persistenceId = persistenceId;
        _serializer = serializer;
        _connectionString = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true }.ToString();
    }

    public string Path { get; }

    /// <summary>Identifies this spool in the journal's <see cref="SpoolReconciled"/> markers (created once per file and persistence id).</summary>
    public string SpoolId { get; private set; } = "";

    /// <summary>Opens (creating it if needed) the spool file; throws with the path named when it cannot be used.</summary>
    public static HeartbeatSpool Open(string path, string persistenceId, SerializerWithStringManifest serializer)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var full = System.IO.Path.GetFullPath(path);
        try
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
            var spool = new HeartbeatSpool(full, persistenceId, serializer);
            spool.Initialize();
            return spool;
        }
        catch (Exception ex) when (ex is SqliteException or IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"cannot open the heartbeat spool '{full}': {ex.Message}", ex);
        }
    }

    private void Initialize()
    {
        using var connection = OpenConnection();
        DurableSqlite.Execute(connection, """
            PRAGMA journal_mode = WAL;
            CREATE TABLE IF NOT EXISTS spool_meta (
                persistence_id TEXT    NOT NULL PRIMARY KEY,
                spool_id       TEXT    NOT NULL,
                last_seq       INTEGER NOT NULL DEFAULT 0,
                state_manifest TEXT,
                state          BLOB,
                state_at       TEXT
            );
            CREATE TABLE IF NOT EXISTS spool_events (
                persistence_id TEXT    NOT NULL,
                seq            INTEGER NOT NULL,
                idx            INTEGER NOT NULL,
                manifest       TEXT    NOT NULL,
                payload        BLOB    NOT NULL,
                PRIMARY KEY (persistence_id, seq, idx)
            );
            """);
        using (var insert = connection.CreateCommand())
        {
            insert.CommandText = "INSERT INTO spool_meta (persistence_id, spool_id) VALUES ($pid, $sid) ON CONFLICT (persistence_id) DO NOTHING";
            insert.Parameters.AddWithValue("$pid", _persistenceId);
            insert.Parameters.AddWithValue("$sid", Guid.NewGuid().ToString("N"));
            insert.ExecuteNonQuery();
        }
        using var select = connection.CreateCommand();
        select.CommandText = "SELECT spool_id FROM spool_meta WHERE persistence_id = $pid";
        select.Parameters.AddWithValue("$pid", _persistenceId);
        SpoolId = (string)select.ExecuteScalar()!;
    }

    /// <summary>Writes a batch and the state after it in one transaction; returns the batch's sequence number.</summary>
    public long Append(IReadOnlyList<IHeartbeatEvent> events, HeartbeatState stateAfter)
    {
        using var connection = OpenConnection();
        using var tx = connection.BeginTransaction();
        long seq;
        using (var next = connection.CreateCommand())
        {
            next.Transaction = tx;
            next.CommandText = "UPDATE spool_meta SET last_seq = last_seq + 1 WHERE persistence_id = $pid RETURNING last_seq";
            next.Parameters.AddWithValue("$pid", _persistenceId);
            seq = (long)next.ExecuteScalar()!;
        }
        for (var i = 0; i < events.Count; i++)
        {
            using var insert = connection.CreateCommand();
            insert.Transaction = tx;
            insert.CommandText = "INSERT INTO spool_events (persistence_id, seq, idx, manifest, payload) VALUES ($pid, $seq, $idx, $m, $p)";
            insert.Parameters.AddWithValue("$pid", _persistenceId);
            insert.Parameters.AddWithValue("$seq", seq);
            insert.Parameters.AddWithValue("$idx", i);
            insert.Parameters.AddWithValue("$m", _serializer.Manifest(events[i]));
            insert.Parameters.AddWithValue("$p", _serializer.ToBinary(events[i]));
            insert.ExecuteNonQuery();
        }
        WriteState(connection, tx, stateAfter);
        tx.Commit();
        return seq;
    }

    private void WriteState(SqliteConnection connection, SqliteTransaction tx, HeartbeatState state)
    {
        using var update = connection.CreateCommand();
        update.Transaction = tx;
        update.CommandText = "UPDATE spool_meta SET state_manifest = $m, state = $s, state_at = $at WHERE persistence_id = $pid";
        update.Parameters.AddWithValue("$pid", _persistenceId);
        update.Parameters.AddWithValue("$m", _serializer.Manifest(state));
        update.Parameters.AddWithValue("$s", _serializer.ToBinary(state));
        update.Parameters.AddWithValue("$at", DateTimeOffset.UtcNow.ToString("O"));
        update.ExecuteNonQuery();
    }

    /// <summary>The last known full state and when it was written, or null when the spool never held one.</summary>
    public (HeartbeatState State, DateTimeOffset WrittenAt)? LastState()
    {
        using var connection = OpenConnection();
        using var select = connection.CreateCommand();
        select.CommandText = "SELECT state_manifest, state, state_at FROM spool_meta WHERE persistence_id = $pid AND state IS NOT NULL";
        select.Parameters.AddWithValue("$pid", _persistenceId);
        using var reader = select.ExecuteReader();
        if (!reader.Read()) return null;
        var state = (HeartbeatState)_serializer.FromBinary((byte[])reader.GetValue(1), reader.GetString(0));
        return (state, DateTimeOffset.Parse(reader.GetString(2), System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>The batches not yet confirmed by the journal, oldest first.</summary>
    public IReadOnlyList<SpooledBatch> Pending()
    {
        using var connection = OpenConnection();
        using var select = connection.CreateCommand();
        select.CommandText = "SELECT seq, manifest, payload FROM spool_events WHERE persistence_id = $pid ORDER BY seq, idx";
        select.Parameters.AddWithValue("$pid", _persistenceId);
        using var reader = select.ExecuteReader();
        var batches = new List<SpooledBatch>();
        List<IHeartbeatEvent>? current = null;
        long currentSeq = -1;
        while (reader.Read())
        {
            var seq = reader.GetInt64(0);
            if (seq != currentSeq)
            {
                current = new List<IHeartbeatEvent>();
                batches.Add(new SpooledBatch(seq, current));
                currentSeq = seq;
            }
            current!.Add((IHeartbeatEvent)_serializer.FromBinary((byte[])reader.GetValue(2), reader.GetString(1)));
        }
        return batches;
    }

    /// <summary>The journal holds every batch up to <paramref name="seq"/>: they leave the spool.</summary>
    public void DeleteUpTo(long seq)
    {
        using var connection = OpenConnection();
        using var delete = connection.CreateCommand();
        delete.CommandText = "DELETE FROM spool_events WHERE persistence_id = $pid AND seq <= $seq";
        delete.Parameters.AddWithValue("$pid", _persistenceId);
        delete.Parameters.AddWithValue("$seq", seq);
        delete.ExecuteNonQuery();
    }

    private SqliteConnection OpenConnection() => DurableSqlite.Open(_connectionString);
}
