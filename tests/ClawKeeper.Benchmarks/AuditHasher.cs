using System.Security.Cryptography;
using System.Text;

namespace ClawKeeper.Benchmarks;

/// <summary>
/// The audit chain hash of migration 0001 (<c>audit_entry_hash</c>), computed in C# for the bulk
/// load: lower-hex(sha256(utf8(canonical))) where canonical is <c>clawkeeper-audit-v1</c> followed
/// by the nine fields in declaration order, each <c>N;</c> for NULL or
/// <c>S&lt;utf8 byte length&gt;:&lt;value&gt;;</c>; seq in decimal, occurred_at as epoch
/// microseconds in decimal, payload as jsonb's canonical text. Not thread-safe (one buffer).
/// </summary>
public sealed class AuditHasher
{
    public const string Genesis = "0000000000000000000000000000000000000000000000000000000000000000";
    private static readonly byte[] Prefix = "clawkeeper-audit-v1"u8.ToArray();

    private byte[] _buffer = new byte[1024];
    private int _length;

    public string Hash(string tenantId, long seq, long occurredAtMicros, string actor, string action,
        string? entityType, string? entityId, string payloadJsonbText, string prevHash)
    {
        _length = 0;
        Append(Prefix);
        Field(tenantId);
        Field(seq);
        Field(occurredAtMicros);
        Field(actor);
        Field(action);
        Field(entityType);
        Field(entityId);
        Field(payloadJsonbText);
        Field(prevHash);
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(_buffer.AsSpan(0, _length), digest);
        return Convert.ToHexStringLower(digest);
    }

    /// <summary>The canonical text (for debugging a mismatch against <c>audit_entry_canonical</c>).</summary>
    public string LastCanonical => Encoding.UTF8.GetString(_buffer, 0, _length);

    private void Field(string? value)
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

    private void Field(long value)
    {
        Span<byte> digits = stackalloc byte[24];
        if (!value.TryFormat(digits, out var written, default, System.Globalization.CultureInfo.InvariantCulture))
            throw new InvalidOperationException("cannot format " + value);
        Header(written);
        Append(digits[..written]);
        Append(";"u8);
    }

    private void Header(int byteLength)
    {
        Span<byte> digits = stackalloc byte[12];
        byteLength.TryFormat(digits, out var written, default, System.Globalization.CultureInfo.InvariantCulture);
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
