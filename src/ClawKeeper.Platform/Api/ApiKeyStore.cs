using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Npgsql;
using NpgsqlTypes;

namespace ClawKeeper.Platform.Api;

/// <summary>An <c>api_keys</c> row as the API's authentication sees it (never the key itself).</summary>
public sealed record ApiKeyRecord(
    string Id,
    string TenantId,
    string KeyPrefix,
    DateTimeOffset? ExpiresAt,
    DateTimeOffset? RevokedAt,
    string TenantStatus)
{
    /// <summary>Null when the key may be used at <paramref name="now"/>; else why not (no key material).</summary>
    public string? WhyUnusable(DateTimeOffset now) =>
        RevokedAt is { } revoked ? $"key {Id} was revoked at {revoked:O}"
        : ExpiresAt is { } expires && expires <= now ? $"key {Id} expired at {expires:O}"
        : TenantStatus != "active" ? $"tenant {TenantId} is {TenantStatus}"
        : null;
}

/// <summary>
/// API keys and the <c>security_events</c> the API records. Keys are looked up by the lower-hex
/// SHA-256 of the presented secret (<c>api_keys.key_hash</c>, unique), so the secret never reaches
/// the database, a log or an event. The data source must see every tenant (superuser or BYPASSRLS,
/// as for the heartbeat's checks): the key's tenant is not known before the lookup.
/// </summary>
public sealed class ApiKeyStore
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly int _commandTimeoutSeconds;

    public ApiKeyStore(NpgsqlDataSource dataSource, TimeSpan commandTimeout)
    {
        _dataSource = dataSource ?? throw new ArgumentNullException(nameof(dataSource));
        _commandTimeoutSeconds = (int)Math.Clamp(Math.Ceiling(commandTimeout.TotalSeconds), 1, 3600);
    }

    /// <summary>Lower-hex SHA-256 of a key, as stored in <c>api_keys.key_hash</c>.</summary>
    public static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    /// <summary>A short, non-reversible fingerprint of a presented key for events and logs (first 12 hex of its hash).</summary>
    public static string Fingerprint(string key) => "sha256:" + Hash(key)[..12];

    private long _lookups;

    /// <summary>Key lookups sent to the database by this store since it was created (what a flood of random keys costs).</summary>
    public long Lookups => Interlocked.Read(ref _lookups);

    public async Task<ApiKeyRecord?> FindByHashAsync(string keyHash, CancellationToken ct)
    {
        Interlocked.Increment(ref _lookups);
        await using var command = _dataSource.CreateCommand("""
            SELECT k.id, k.tenant_id, k.key_prefix, k.expires_at, k.revoked_at, t.status
            FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
            WHERE k.key_hash = $1
            """);
        command.CommandTimeout = _commandTimeoutSeconds;
        command.Parameters.AddWithValue(keyHash);
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        if (!await reader.ReadAsync(ct).ConfigureAwait(false)) return null;
        return new ApiKeyRecord(
            reader.GetString(0), reader.GetString(1), reader.GetString(2),
            reader.IsDBNull(3) ? null : reader.GetFieldValue<DateTimeOffset>(3),
            reader.IsDBNull(4) ? null : reader.GetFieldValue<DateTimeOffset>(4),
            reader.GetString(5));
    }

    /// <summary>
    /// One <c>security_events</c> row of kind <c>unauthorized_access</c> (tenant: the key's when the key is
    /// known, else <c>system</c>). <paramref name="detail"/> must hold no secret.
    /// </summary>
    public async Task RecordUnauthorizedAccessAsync(string tenantId, string source, IReadOnlyDictionary<string, object?> detail, CancellationToken ct)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        // The tenant context too, so the insert also passes RLS for a role that is subject to it.
        await using (var context = new NpgsqlCommand("SELECT set_config('app.tenant_id', $1, true)", connection, transaction))
        {
            context.Parameters.AddWithValue(tenantId);
            context.CommandTimeout = _commandTimeoutSeconds;
            await context.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        await using (var insert = new NpgsqlCommand(
                         "INSERT INTO security_events (tenant_id, kind, source, detail) VALUES ($1, 'unauthorized_access', $2, $3)", connection, transaction))
        {
            insert.CommandTimeout = _commandTimeoutSeconds;
            insert.Parameters.AddWithValue(tenantId);
            insert.Parameters.AddWithValue(source);
            insert.Parameters.Add(new NpgsqlParameter { Value = JsonSerializer.Serialize(detail), NpgsqlDbType = NpgsqlDbType.Jsonb });
            await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        await transaction.CommitAsync(ct).ConfigureAwait(false);
    }
}

/// <summary>Issues API keys (the secret is returned once; only its hash is stored).</summary>
public static class ApiKeyIssuer
{
    /// <summary>A new random key: <c>ck_</c> + 32 random bytes, base64url.</summary>
    public static string NewSecret() =>
        "ck_" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>Stores a new key for <paramref name="tenantId"/> and returns its secret (shown once, never stored).</summary>
    public static async Task<string> IssueAsync(NpgsqlDataSource dataSource, string keyId, string tenantId, string name, DateTimeOffset? expiresAt, CancellationToken ct)
    {
        var secret = NewSecret();
        await using var connection = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using (var context = new NpgsqlCommand("SELECT set_config('app.tenant_id', $1, true)", connection, transaction))
        {
            context.Parameters.AddWithValue(tenantId);
            await context.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        await using (var insert = new NpgsqlCommand(
                         "INSERT INTO api_keys (id, tenant_id, name, key_prefix, key_hash, expires_at) VALUES ($1, $2, $3, $4, $5, $6)", connection, transaction))
        {
            insert.Parameters.AddWithValue(keyId);
            insert.Parameters.AddWithValue(tenantId);
            insert.Parameters.AddWithValue(name);
            insert.Parameters.AddWithValue(secret[..12]);
            insert.Parameters.AddWithValue(ApiKeyStore.Hash(secret));
            insert.Parameters.AddWithValue(expiresAt is { } e ? e.ToUniversalTime() : DBNull.Value);
            await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        await transaction.CommitAsync(ct).ConfigureAwait(false);
        return secret;
    }
}
