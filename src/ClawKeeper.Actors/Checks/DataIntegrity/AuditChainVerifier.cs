using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Npgsql;

namespace ClawKeeper.Actors.Checks.DataIntegrity;

/// <summary>What a full verification of every audit chain found.</summary>
/// <param name="Anomalies">Gaps, modified entries and broken links, each with its neighbours (at most <c>limit</c>).</param>
/// <param name="Rows">Entries read and recomputed.</param>
/// <param name="Streams">Parallel binary COPY streams used.</param>
public sealed record AuditChainVerification(IReadOnlyList<AuditAnomaly> Anomalies, long Rows, int Streams);

/// <summary>
/// The full verification of <c>audit_log_continuous</c> at scan speed (issue 12): every audit entry
/// is read ONCE by a binary <c>COPY ... TO STDOUT</c> (a sequential scan, split into block ranges read
/// in parallel streams that share one exported snapshot) and verified in .NET:
/// <list type="bullet">
/// <item>each entry's hash is recomputed from its content with <see cref="AuditEntryHasher"/> (SHA-256 in
/// hardware through System.Security.Cryptography, byte for byte <c>audit_entry_hash</c> of migration 0001);</item>
/// <item>the links and the numbering are verified without sorting, whatever order the heap returns rows in:
/// per tenant, the multiset {(0, genesis)} ∪ {(seq, hash)} must equal {(seq - 1, prev_hash)} ∪ {(max seq, its hash)}.
/// With the count equal to the largest seq and the smallest seq 1 (seq is unique per tenant: the primary key),
/// equality holds exactly when the chain is 1..n without gap and every prev_hash is the previous entry's
/// hash. The multisets are compared by a fingerprint keyed with randomness drawn for this run
/// (<see cref="MultisetKey"/>): a difference passes unnoticed with probability below n / 2^60.</item>
/// </list>
/// A tenant that fails either is re-examined in SQL, in the same snapshot, by the windowed query of the
/// check (only that tenant's chain), which names the range and the neighbouring entries exactly as before.
/// Needs a UTF-8 database (binary COPY sends text in the server encoding): otherwise <see cref="VerifyAsync"/>
/// returns null and the caller verifies in SQL.
/// </summary>
public sealed class AuditChainVerifier(NpgsqlDataSource platform, int streams = 2, int limit = 200, int minBlocksPerStream = 64)
{
    private const string Columns = "tenant_id, seq, occurred_at, actor, action, entity_type, entity_id, payload, prev_hash, hash";

    /// <summary>Verifies every chain, in one snapshot: a REPEATABLE READ transaction opened on <paramref name="connection"/>, or the one already open there.</summary>
    public async Task<AuditChainVerification?> VerifyAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using (var encoding = new NpgsqlCommand("select current_setting('server_encoding')", connection))
            if (!string.Equals((string?)await encoding.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), "UTF8", StringComparison.OrdinalIgnoreCase))
                return null;

        var key = new MultisetKey();
        // One snapshot for every stream and the SQL re-check: a REPEATABLE READ transaction of our own, or the
        // caller's if it already opened one (then it is the caller's to end).
        NpgsqlTransaction? transaction = null;
        try
        {
            transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
        }
        catch (InvalidOperationException)
        {
            // A transaction is already in progress on this connection: the caller's snapshot is used.
        }
        await using var owned = transaction;
        var ranges = await BlockRangesAsync(connection, Math.Max(1, streams), Math.Max(1, minBlocksPerStream), cancellationToken).ConfigureAwait(false);

        var extra = new List<NpgsqlConnection>();
        try
        {
            if (ranges.Count > 1)
            {
                string snapshot;
                await using (var export = new NpgsqlCommand("select pg_export_snapshot()", connection))
                    snapshot = (string)(await export.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
                for (var i = 1; i < ranges.Count; i++)
                {
                    var other = await platform.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                    extra.Add(other);
                    await using var begin = new NpgsqlCommand(
                        $"begin isolation level repeatable read read only; set transaction snapshot '{snapshot.Replace("'", "''", StringComparison.Ordinal)}'", other);
                    await begin.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
            }

            var connections = new[] { connection }.Concat(extra).ToArray();
            var partials = await Task.WhenAll(ranges.Select((range, i) =>
                Task.Factory.StartNew(() => ReadRange(connections[i], range, key, cancellationToken), cancellationToken,
                    TaskCreationOptions.LongRunning, TaskScheduler.Default))).ConfigureAwait(false);

            var chains = Merge(partials);
            var rows = chains.Values.Sum(c => c.Count);
            var suspects = chains.Where(c => !c.Value.Holds(key)).Select(c => c.Key).Order(StringComparer.Ordinal).ToArray();
            var anomalies = suspects.Length == 0
                ? []
                : await LocateAsync(connection, suspects, chains, cancellationToken).ConfigureAwait(false);
            if (transaction is not null) await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            return new AuditChainVerification(anomalies, rows, ranges.Count);
        }
        finally
        {
            foreach (var other in extra) await other.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Block ranges [from, to) of audit_log, one per stream; the last one is open-ended (rows added after the size was read).</summary>
    private static async Task<IReadOnlyList<(long From, long? To)>> BlockRangesAsync(NpgsqlConnection connection, int streams, int minBlocksPerStream, CancellationToken cancellationToken)
    {
        if (streams == 1) return [(0, null)];
        long blocks;
        await using (var command = new NpgsqlCommand("select pg_relation_size('audit_log') / current_setting('block_size')::bigint", connection))
            blocks = (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        if (blocks < streams * (long)minBlocksPerStream) return [(0, null)];
        var ranges = new List<(long, long?)>();
        for (var i = 0; i < streams; i++)
            ranges.Add((blocks * i / streams, i == streams - 1 ? null : blocks * (i + 1) / streams));
        return ranges;
    }

    private static Dictionary<string, Chain> ReadRange(NpgsqlConnection connection, (long From, long? To) range, MultisetKey key, CancellationToken cancellationToken)
    {
        var where = range is { From: 0, To: null }
            ? ""
            : $" where ctid >= '({range.From},0)'::tid" + (range.To is { } to ? $" and ctid < '({to},0)'::tid" : "");
        var chains = new Dictionary<string, Chain>(StringComparer.Ordinal);
        var lookup = chains.GetAlternateLookup<ReadOnlySpan<char>>();
        var hasher = new AuditEntryHasher();
        Span<byte> digest = stackalloc byte[32];
        Span<byte> stored = stackalloc byte[32];
        Span<byte> previous = stackalloc byte[32];
        Span<char> tenantChars = stackalloc char[256];

        using var stream = connection.BeginRawBinaryCopy($"copy (select {Columns} from audit_log{where}) to stdout (format binary)");
        using var cancel = cancellationToken.Register(() =>
        {
            try { stream.Cancel(); } catch (Exception) { /* the read below fails or ends; the token is checked after */ }
        });
        var reader = new CopyReader(stream);
        reader.ReadHeader();
        long n = 0;
        while (reader.NextTuple(10))
        {
            if ((++n & 0xFFFF) == 0) cancellationToken.ThrowIfCancellationRequested();
            var tenant = reader.Field(0);
            var seq = BinaryPrimitives.ReadInt64BigEndian(reader.Field(1));
            var occurredAt = BinaryPrimitives.ReadInt64BigEndian(reader.Field(2)) + AuditEntryHasher.PostgresEpochMicros;
            var payload = reader.Field(7);
            if (payload.Length == 0 || payload[0] != 1) throw new InvalidDataException($"audit_log: unknown jsonb binary format version {(payload.Length == 0 ? -1 : payload[0])}");

            hasher.Begin();
            hasher.Text(tenant);
            hasher.Integer(seq);
            hasher.Integer(occurredAt);
            hasher.Text(reader.Field(3));
            hasher.Text(reader.Field(4));
            hasher.Text(reader.Field(5), reader.IsNull(5));
            hasher.Text(reader.Field(6), reader.IsNull(6));
            hasher.Text(payload[1..]);
            var prevHex = reader.Field(8);
            hasher.Text(prevHex);
            hasher.Digest(digest);

            Chain chain;
            var chars = tenant.Length <= tenantChars.Length ? tenantChars[..Encoding.UTF8.GetChars(tenant, tenantChars)] : Encoding.UTF8.GetString(tenant).AsSpan();
            if (!lookup.TryGetValue(chars, out var found))
            {
                found = new Chain();
                lookup[chars] = found;
            }
            chain = found;

            var hashOk = AuditEntryHasher.TryParseLowerHex(reader.Field(9), stored) && stored.SequenceEqual(digest);
            var prevOk = AuditEntryHasher.TryParseLowerHex(prevHex, previous);
            chain.Add(seq, digest, hashOk, previous, prevOk, key);
        }
        cancellationToken.ThrowIfCancellationRequested();
        return chains;
    }

    private static Dictionary<string, Chain> Merge(Dictionary<string, Chain>[] partials)
    {
        var merged = new Dictionary<string, Chain>(StringComparer.Ordinal);
        foreach (var partial in partials)
            foreach (var (tenant, chain) in partial)
                if (merged.TryGetValue(tenant, out var existing)) existing.Merge(chain);
                else merged[tenant] = chain;
        return merged;
    }

    /// <summary>The SQL re-examination of the tenants that failed: the same windowed query and evidence as the check's.</summary>
    private async Task<IReadOnlyList<AuditAnomaly>> LocateAsync(NpgsqlConnection connection, string[] suspects, Dictionary<string, Chain> chains, CancellationToken cancellationToken)
    {
        var anomalies = new List<AuditAnomaly>();
        await using (var command = new NpgsqlCommand("""
            with entries as (
                select a.tenant_id, a.seq, a.hash, a.prev_hash,
                       lag(a.seq) over w as prev_seq, lag(a.hash) over w as prev_row_hash,
                       lag('seq ' || a.seq || ' at ' || to_char(a.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || ' by ' || a.actor) over w as prev_entry,
                       'seq ' || a.seq || ' at ' || to_char(a.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || ' by ' || a.actor as this_entry,
                       audit_entry_hash(a.tenant_id, a.seq, a.occurred_at, a.actor, a.action, a.entity_type, a.entity_id, a.payload, a.prev_hash) as computed
                from audit_log a
                where a.tenant_id = any(@tenants)
                window w as (partition by a.tenant_id order by a.seq))
            select tenant_id, seq, prev_seq,
                   case
                       when prev_seq is null and seq <> 1 then 'gap'
                       when prev_seq is not null and seq <> prev_seq + 1 then 'gap'
                       when computed <> hash then 'modified'
                       else 'broken-link'
                   end as kind,
                   prev_entry, this_entry
            from entries
            where computed <> hash
               or (prev_seq is null and (seq <> 1 or prev_hash <> @genesis))
               or (prev_seq is not null and (seq <> prev_seq + 1 or prev_hash <> prev_row_hash))
            order by tenant_id, seq
            limit @limit
            """, connection) { CommandTimeout = 0 })
        {
            command.Parameters.AddWithValue("tenants", suspects);
            command.Parameters.AddWithValue("genesis", AuditEntryHasher.Genesis);
            command.Parameters.AddWithValue("limit", limit);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var tenant = reader.GetString(0);
                var seq = reader.GetInt64(1);
                long? prevSeq = reader.IsDBNull(2) ? null : reader.GetInt64(2);
                var before = reader.IsDBNull(4) ? null : reader.GetString(4);
                var entry = reader.GetString(5);
                anomalies.Add(AuditAnomaly.InChain(reader.GetString(3), tenant, seq, prevSeq, before, entry));
            }
        }

        // The streamed verification and SQL disagree only if something is wrong that neither can name: still a failure.
        if (anomalies.Count < limit)
            foreach (var tenant in suspects.Where(t => anomalies.All(a => a.TenantId != t)))
                anomalies.Add(new AuditAnomaly(tenant, "failed the streamed verification (hash or link multiset) though the SQL re-check names no entry: verify this chain by hand",
                    1, chains[tenant].MaxSeq, null, null));
        return anomalies;
    }

    /// <summary>
    /// A multiset fingerprint keyed by randomness drawn for one verification run: an element (seq, 32-byte value)
    /// is compressed by a random inner product over its ten 32-bit limbs modulo the prime 2^61 - 1 (two different
    /// elements collide with probability 2^-61), and a multiset is the product of (r - element) over its elements
    /// for a random point r: two different multisets of n elements give the same product with probability at
    /// most n / 2^61 (a polynomial of degree n has at most n roots). Keys and point are unknown to whoever wrote the rows.
    /// </summary>
    private sealed class MultisetKey
    {
        private const ulong P = (1UL << 61) - 1;
        private readonly ulong[] _k = new ulong[10];
        private readonly ulong _r;

        public MultisetKey()
        {
            for (var i = 0; i < _k.Length; i++) _k[i] = Random();
            _r = Random();
        }

        private static ulong Random()
        {
            Span<byte> bytes = stackalloc byte[8];
            ulong value;
            do
            {
                RandomNumberGenerator.Fill(bytes);
                value = BinaryPrimitives.ReadUInt64LittleEndian(bytes) & P;
            } while (value == 0 || value == P);
            return value;
        }

        /// <summary>The factor (r - element) of one element.</summary>
        public ulong Term(long seq, ReadOnlySpan<byte> value32)
        {
            UInt128 sum = (UInt128)_k[0] * (uint)seq + (UInt128)_k[1] * (uint)((ulong)seq >> 32);
            for (var i = 0; i < 8; i++)
                sum += (UInt128)_k[2 + i] * BinaryPrimitives.ReadUInt32LittleEndian(value32[(4 * i)..]);
            var c = Reduce(sum);
            return _r >= c ? _r - c : _r + P - c;
        }

        public static ulong Multiply(ulong a, ulong b) => Reduce((UInt128)a * b);

        private static ulong Reduce(UInt128 x)
        {
            while (x >> 61 != 0) x = (x & P) + (x >> 61);
            var v = (ulong)x;
            return v == P ? 0 : v;
        }
    }

    /// <summary>One tenant's chain as seen so far, in any row order.</summary>
    private sealed class Chain
    {
        private static readonly byte[] GenesisBytes = new byte[32];

        public long Count;
        public long MinSeq = long.MaxValue;
        public long MaxSeq = long.MinValue;
        private readonly byte[] _maxDigest = new byte[32];
        private bool _hashesOk = true;
        private bool _prevParsed = true;
        private ulong _entries = 1;   // product over {(seq, hash)}
        private ulong _links = 1;     // product over {(seq - 1, prev_hash)}

        public void Add(long seq, ReadOnlySpan<byte> digest, bool hashOk, ReadOnlySpan<byte> previous, bool prevOk, MultisetKey key)
        {
            Count++;
            if (seq < MinSeq) MinSeq = seq;
            if (seq > MaxSeq)
            {
                MaxSeq = seq;
                digest.CopyTo(_maxDigest);
            }
            _hashesOk &= hashOk;
            _prevParsed &= prevOk;
            _entries = MultisetKey.Multiply(_entries, key.Term(seq, digest));
            if (prevOk) _links = MultisetKey.Multiply(_links, key.Term(seq - 1, previous));
        }

        public void Merge(Chain other)
        {
            Count += other.Count;
            MinSeq = Math.Min(MinSeq, other.MinSeq);
            if (other.MaxSeq > MaxSeq)
            {
                MaxSeq = other.MaxSeq;
                other._maxDigest.CopyTo(_maxDigest, 0);
            }
            _hashesOk &= other._hashesOk;
            _prevParsed &= other._prevParsed;
            _entries = MultisetKey.Multiply(_entries, other._entries);
            _links = MultisetKey.Multiply(_links, other._links);
        }

        /// <summary>Every hash recomputes, the chain is 1..n without gap and every link holds.</summary>
        public bool Holds(MultisetKey key)
        {
            if (!_hashesOk || !_prevParsed || MinSeq != 1 || Count != MaxSeq) return false;
            // {(0, genesis)} ∪ {(seq, hash)} = {(seq - 1, prev_hash)} ∪ {(max seq, its hash)}
            return MultisetKey.Multiply(_entries, key.Term(0, GenesisBytes)) == MultisetKey.Multiply(_links, key.Term(MaxSeq, _maxDigest));
        }
    }

    /// <summary>PostgreSQL's binary COPY format, read from a raw stream without allocating per row.</summary>
    private sealed class CopyReader(Stream stream)
    {
        private static ReadOnlySpan<byte> Signature => [(byte)'P', (byte)'G', (byte)'C', (byte)'O', (byte)'P', (byte)'Y', (byte)'\n', 0xFF, (byte)'\r', (byte)'\n', 0];

        private byte[] _buffer = new byte[1 << 20];
        private int _start;   // start of the current tuple
        private int _end;     // end of the valid bytes
        private int _next;    // start of the next tuple
        private readonly int[] _offsets = new int[16];
        private readonly int[] _lengths = new int[16];

        public void ReadHeader()
        {
            if (!Ensure(19)) throw new InvalidDataException("binary COPY: no header");
            if (!_buffer.AsSpan(_start, 11).SequenceEqual(Signature))
                throw new InvalidDataException("binary COPY: bad signature");
            var extension = BinaryPrimitives.ReadInt32BigEndian(_buffer.AsSpan(_start + 15));
            if (!Ensure(19 + extension)) throw new InvalidDataException("binary COPY: truncated header");
            _next = _start + 19 + extension;
        }

        /// <summary>Moves to the next tuple; false at the trailer.</summary>
        public bool NextTuple(int expectedFields)
        {
            _start = _next;
            if (!Ensure(2)) throw new InvalidDataException("binary COPY: ended without trailer");
            var fields = BinaryPrimitives.ReadInt16BigEndian(_buffer.AsSpan(_start));
            if (fields == -1) return false;
            if (fields != expectedFields) throw new InvalidDataException($"binary COPY: {fields} fields, expected {expectedFields}");
            var offset = 2;
            for (var i = 0; i < fields; i++)
            {
                if (!Ensure(offset + 4)) throw new InvalidDataException("binary COPY: truncated tuple");
                var length = BinaryPrimitives.ReadInt32BigEndian(_buffer.AsSpan(_start + offset));
                offset += 4;
                _offsets[i] = offset;
                _lengths[i] = length;
                if (length > 0)
                {
                    if (!Ensure(offset + length)) throw new InvalidDataException("binary COPY: truncated field");
                    offset += length;
                }
            }
            _next = _start + offset;
            return true;
        }

        public bool IsNull(int field) => _lengths[field] < 0;

        public ReadOnlySpan<byte> Field(int field) => _lengths[field] <= 0
            ? ReadOnlySpan<byte>.Empty
            : _buffer.AsSpan(_start + _offsets[field], _lengths[field]);

        /// <summary>At least <paramref name="count"/> bytes from the tuple start are buffered (offsets stay relative to it).</summary>
        private bool Ensure(int count)
        {
            if (_end - _start >= count) return true;
            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _next -= _start;
                _start = 0;
            }
            if (count > _buffer.Length) Array.Resize(ref _buffer, Math.Max(count, _buffer.Length * 2));
            while (_end < count)
            {
                var read = stream.Read(_buffer, _end, _buffer.Length - _end);
                if (read == 0) return false;
                _end += read;
            }
            return true;
        }
    }
}
