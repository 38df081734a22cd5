using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace ClawKeeper.Actors.Checks.DataIntegrity;

/// <summary>
/// The audit chain hash of migration 0001 (<c>audit_entry_hash</c>) computed in .NET, byte for byte
/// what the database computes: lower-hex(sha256(utf8(canonical))) where canonical is
/// <c>clawkeeper-audit-v1</c> followed by the nine fields in declaration order, each <c>N;</c> for
/// NULL or <c>S&lt;utf8 byte length&gt;:&lt;value&gt;;</c>; seq in decimal, occurred_at as epoch
/// microseconds in decimal, payload as jsonb's canonical text. Fields go in as UTF-8 bytes (what a
/// binary COPY of a UTF-8 database delivers) or as strings. Not thread-safe (one buffer per instance).
/// </summary>
public sealed class AuditEntryHasher
{
    public const string Genesis = "0000000000000000000000000000000000000000000000000000000000000000";

    /// <summary>Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01 (binary timestamptz counts from there).</summary>
    public const long PostgresEpochMicros = 946_684_800_000_000L;

    private static ReadOnlySpan<byte> Prefix => "clawkeeper-audit-v1"u8;

    private byte[] _buffer = new byte[1024];
    private int _length;

    /// <summary>Starts a new canonical text.</summary>
    public void Begin()
    {
        _length = 0;
        Append(Prefix);
    }

    /// <summary>A text field given as its UTF-8 bytes; <paramref name="isNull"/> for SQL NULL.</summary>
    public void Text(ReadOnlySpan<byte> utf8, bool isNull = false)
    {
        if (isNull)
        {
            Append("N;"u8);
            return;
        }

        Header(utf8.Length);
        Ensure(utf8.Length + 1);
        utf8.CopyTo(_buffer.AsSpan(_length));
        _length += utf8.Length;
        _buffer[_length++] = (byte)';';
    }

    /// <summary>A text field given as a string (null for SQL NULL).</summary>
    public void Text(string? value)
    {
        if (value is null)
        {
            Append("N;"u8);
            return;
        }

        var bytes = Encoding.UTF8.GetByteCount(value);
        Header(bytes);
        Ensure(bytes + 1);
        _length += Encoding.UTF8.GetBytes(value, _buffer.AsSpan(_length));
        _buffer[_length++] = (byte)';';
    }

    /// <summary>An integer field (seq, or occurred_at as epoch microseconds), in decimal.</summary>
    public void Integer(long value)
    {
        Span<byte> digits = stackalloc byte[24];
        if (!value.TryFormat(digits, out var written, default, CultureInfo.InvariantCulture))
            throw new InvalidOperationException("cannot format " + value);
        Header(written);
        Append(digits[..written]);
        Append(";"u8);
    }

    /// <summary>The SHA-256 of the canonical text built since <see cref="Begin"/>.</summary>
    public void Digest(Span<byte> digest32) => SHA256.HashData(_buffer.AsSpan(0, _length), digest32);

    /// <summary>The whole hash of one entry from strings, as lower hex (what <c>audit_entry_hash</c> returns).</summary>
    public string Hash(string tenantId, long seq, long occurredAtMicros, string actor, string action,
        string? entityType, string? entityId, string payloadJsonbText, string prevHash)
    {
        Begin();
        Text(tenantId);
        Integer(seq);
        Integer(occurredAtMicros);
        Text(actor);
        Text(action);
        Text(entityType);
        Text(entityId);
        Text(payloadJsonbText);
        Text(prevHash);
        Span<byte> digest = stackalloc byte[32];
        Digest(digest);
        return Convert.ToHexStringLower(digest);
    }

    /// <summary>The canonical text built last (for debugging a mismatch against <c>audit_entry_canonical</c>).</summary>
    public string LastCanonical => Encoding.UTF8.GetString(_buffer, 0, _length);

    /// <summary>
    /// Parses 64 lower-case hex digits (UTF-8) into 32 bytes; false for anything else (upper case
    /// included: the database's hash is lower hex, so an upper-case hash never equals it).
    /// </summary>
    public static bool TryParseLowerHex(ReadOnlySpan<byte> hex, Span<byte> bytes32) =>
        hex.Length == 64
        && hex.IndexOfAnyInRange((byte)'A', (byte)'F') < 0
        && Convert.FromHexString(hex, bytes32, out var consumed, out var written) == System.Buffers.OperationStatus.Done
        && consumed == 64 && written == 32;

    private void Header(int byteLength)
    {
        Span<byte> digits = stackalloc byte[12];
        byteLength.TryFormat(digits, out var written, default, CultureInfo.InvariantCulture);
        Append("S"u8);
        Append(digits[..written]);
        Append(":"u8);
    }

    private void Append(ReadOnlySpan<byte> bytes)
    {
        Ensure(bytes.Length);
        bytes.CopyTo(_buffer.AsSpan(_length));
        _length += bytes.Length;
    }

    private void Ensure(int extra)
    {
        if (_length + extra <= _buffer.Length) return;
        Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + extra));
    }
}
