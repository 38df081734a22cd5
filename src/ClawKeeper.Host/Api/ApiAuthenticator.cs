using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using ClawKeeper.Platform.Api;

namespace ClawKeeper.Host.Api;

/// <summary>Who made a request, as far as the API could tell.</summary>
public abstract record ApiCaller
{
    /// <summary>A valid key: <paramref name="KeyId"/> of <paramref name="TenantId"/>. <paramref name="FromCache"/>: validated earlier, the database is down now.</summary>
    public sealed record Authenticated(string KeyId, string TenantId, bool IsProbe, bool FromCache) : ApiCaller;

    /// <summary>No key, or an unknown, revoked or expired one: 401 and an <c>unauthorized_access</c> event for <paramref name="TenantId"/>.</summary>
    public sealed record Refused(string Reason, string TenantId, string? KeyFingerprint, string? KeyId) : ApiCaller;

    /// <summary>The database is unreachable (or, <paramref name="Busy"/>, its pool is exhausted) and the key was not validated recently: 503, never accepted.</summary>
    public sealed record Unverifiable(string Reason, bool Busy = false) : ApiCaller;
}

/// <summary>
/// API keys: the presented secret (<c>Authorization: Bearer KEY</c> or <c>X-Api-Key: KEY</c>) is hashed
/// (SHA-256) and looked up by hash; the secret itself is never stored, logged or recorded. While the
/// database is reachable every request is checked against it (a revocation takes effect at once).
/// While it is not, a key that was validated within <see cref="ApiSettings.KeyCacheTtl"/> is still
/// accepted (its expiry is still checked), and any other key gets 503: an unknown key is never
/// accepted. The heartbeat's probe key lives only in this process (32 random bytes per start,
/// compared in constant time) and may only call <c>GET /api/ping</c>.
/// </summary>
public sealed class ApiAuthenticator
{
    public const string SystemTenant = "system";
    public const string ProbeKeyId = "heartbeat-probe";

    private readonly ApiKeyStore _keys;
    private readonly DatabaseGate _gate;
    private readonly TimeSpan _cacheTtl;
    private readonly ConcurrentDictionary<string, (ApiKeyRecord Key, DateTimeOffset ValidatedAt)> _validated = new(StringComparer.Ordinal);
    private readonly byte[] _probeHash;

    public ApiAuthenticator(ApiKeyStore keys, DatabaseGate gate, TimeSpan cacheTtl)
    {
        _keys = keys;
        _gate = gate;
        _cacheTtl = cacheTtl;
        ProbeKey = "ckprobe_" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        _probeHash = SHA256.HashData(Encoding.UTF8.GetBytes(ProbeKey));
    }

    /// <summary>The heartbeat's probe key of this process (for <c>rate_limiters_functioning</c>).</summary>
    public string ProbeKey { get; }

    /// <summary>The key in the request's headers, or null.</summary>
    public static string? PresentedKey(string? authorization, string? apiKeyHeader)
    {
        if (!string.IsNullOrWhiteSpace(apiKeyHeader)) return apiKeyHeader.Trim();
        const string scheme = "Bearer ";
        if (authorization is not null && authorization.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
        {
            var token = authorization[scheme.Length..].Trim();
            return token.Length > 0 ? token : null;
        }
        return null;
    }

    public async Task<ApiCaller> AuthenticateAsync(string? key, DateTimeOffset now, CancellationToken ct)
    {
        if (key is null) return new ApiCaller.Refused("no API key (send Authorization: Bearer <key> or X-Api-Key: <key>)", SystemTenant, null, null);
        if (key.Length > 512) return new ApiCaller.Refused("the API key is not valid", SystemTenant, "too long", null);

        var hashBytes = SHA256.HashData(Encoding.UTF8.GetBytes(key));
        if (CryptographicOperations.FixedTimeEquals(hashBytes, _probeHash))
            return new ApiCaller.Authenticated(ProbeKeyId, SystemTenant, IsProbe: true, FromCache: false);
        var hash = Convert.ToHexStringLower(hashBytes);
        var fingerprint = "sha256:" + hash[..12];

        if (_gate.Available)
        {
            ApiKeyRecord? record;
            try
            {
                record = await _keys.FindByHashAsync(hash, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ApiTaskStore.IsPoolExhausted(ex) && !ct.IsCancellationRequested)
            {
                // Busy, not down: the gate stays open; a recently validated key is still served.
                return FromCache(hash, now, busy: true);
            }
            catch (Exception ex) when (ApiTaskStore.IsUnavailable(ex) && !ct.IsCancellationRequested)
            {
                _gate.MarkUnavailable($"key lookup failed: {ex.GetType().Name}: {ex.Message}");
                return FromCache(hash, now);
            }
            if (record is null)
            {
                _validated.TryRemove(hash, out _);
                return new ApiCaller.Refused("the API key is not valid", SystemTenant, fingerprint, null);
            }
            if (record.WhyUnusable(now) is { } why)
            {
                _validated.TryRemove(hash, out _);
                return new ApiCaller.Refused(why, record.TenantId, fingerprint, record.Id);
            }
            _validated[hash] = (record, now);
            return new ApiCaller.Authenticated(record.Id, record.TenantId, IsProbe: false, FromCache: false);
        }
        return FromCache(hash, now);
    }

    private ApiCaller FromCache(string hash, DateTimeOffset now, bool busy = false)
    {
        if (_validated.TryGetValue(hash, out var entry) && now - entry.ValidatedAt <= _cacheTtl && entry.Key.WhyUnusable(now) is null)
            return new ApiCaller.Authenticated(entry.Key.Id, entry.Key.TenantId, IsProbe: false, FromCache: true);
        return busy
            ? new ApiCaller.Unverifiable("every connection of the API's database pool is in use and this API key was not validated recently; retry later", Busy: true)
            : new ApiCaller.Unverifiable("the platform database is unreachable and this API key was not validated recently; retry later");
    }

    /// <summary>
    /// Whether <paramref name="key"/> is exempt from the per-address limit that runs before any lookup:
    /// the heartbeat's probe key, or a key validated against the database within the cache TTL
    /// (an in-memory check; a flood of random keys never matches).
    /// </summary>
    public bool IsKnown(string? key, DateTimeOffset now)
    {
        if (key is null || key.Length > 512) return false;
        var hashBytes = SHA256.HashData(Encoding.UTF8.GetBytes(key));
        if (CryptographicOperations.FixedTimeEquals(hashBytes, _probeHash)) return true;
        return _validated.TryGetValue(Convert.ToHexStringLower(hashBytes), out var entry) && now - entry.ValidatedAt <= _cacheTtl && entry.Key.WhyUnusable(now) is null;
    }
}
