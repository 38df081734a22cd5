using System.Security.Cryptography;
using System.Text;
using ClawKeeper.Actors.Settings;

namespace ClawKeeper.Host.Cli;

/// <summary>
/// The super_admin credential: a token whose SHA-256 is configured
/// (<c>clawkeeper.security.super-admin-token-sha256</c>). The token comes from the environment
/// (<c>CLAWKEEPER_SUPER_ADMIN_TOKEN</c>) or a file, never from the command line (it would show
/// in the process list), and is compared in constant time.
/// </summary>
public static class SuperAdminCredential
{
    public const string TokenVariable = "CLAWKEEPER_SUPER_ADMIN_TOKEN";

    public static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    /// <summary>Null when the token is valid; otherwise why it is refused (never echoing the token).</summary>
    public static string? Refusal(SecuritySettings settings, string? token)
    {
        if (!settings.SuperAdminConfigured)
            return "super_admin operations are disabled: no credential is configured (clawkeeper.security.super-admin-token-sha256)";
        if (string.IsNullOrEmpty(token))
            return $"a super_admin credential is required: set {TokenVariable} or pass --token-file FILE";
        var expected = Convert.FromHexString(settings.SuperAdminTokenSha256);
        var actual = SHA256.HashData(Encoding.UTF8.GetBytes(token));
        return CryptographicOperations.FixedTimeEquals(expected, actual) ? null : "the super_admin credential is not valid";
    }

    public static string? Read(FileInfo? tokenFile)
    {
        if (tokenFile is not null)
        {
            if (!tokenFile.Exists) throw new Configuration.ConfigurationProblemException($"--token-file: file not found: {tokenFile.FullName}");
            return File.ReadAllText(tokenFile.FullName).Trim();
        }
        return Environment.GetEnvironmentVariable(TokenVariable)?.Trim();
    }
}
