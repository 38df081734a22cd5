using System.Text;
using ClawKeeper.Actors.Checks.DataIntegrity;
using Xunit;

namespace ClawKeeper.Actors.Tests.Checks.DataIntegrity;

/// <summary>The stored hashes are lower hex: only exactly 64 lower-case hex digits parse.</summary>
public class AuditEntryHasherSpec
{
    [Fact]
    public void Lower_hex_parses_to_its_32_bytes()
    {
        var bytes = Enumerable.Range(0, 32).Select(i => (byte)(i * 8 + 7)).ToArray();
        Span<byte> parsed = stackalloc byte[32];
        Assert.True(AuditEntryHasher.TryParseLowerHex(Encoding.ASCII.GetBytes(Convert.ToHexStringLower(bytes)), parsed));
        Assert.Equal(bytes, parsed.ToArray());
    }

    [Theory]
    [InlineData("upper case", "00FF10a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8")]
    [InlineData("63 digits", "0ff10a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8")]
    [InlineData("65 digits", "000ff10a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8")]
    [InlineData("not hex", "00ff10a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7eg")]
    [InlineData("space", "00ff10a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e ")]
    public void Anything_else_is_refused(string why, string hex)
    {
        Span<byte> parsed = stackalloc byte[32];
        Assert.False(AuditEntryHasher.TryParseLowerHex(Encoding.ASCII.GetBytes(hex), parsed), why);
    }
}
