using Npgsql;

namespace ClawKeeper.Actors.Checks.SecurityPosture;

/// <summary>
/// <c>api_keys_valid</c>: no active (not revoked) API key is past its <c>expires_at</c>; keys
/// expiring within <see cref="SecurityPostureSettings.KeyExpiryWarning"/> warn. The detail names
/// key ids and tenants only — never key material (no hash, no prefix).
/// </summary>
public sealed class ApiKeysValidCheck : PlatformQueryCheck
{
    private readonly SecurityPostureSettings _settings;

    public ApiKeysValidCheck(NpgsqlDataSource? platform, SecurityPostureSettings settings) : base(platform) => _settings = settings;

    public override string Id => "api_keys_valid";
    public override TimeSpan Timeout => _settings.Timeout;
    protected override string Threshold => $"no active key expired; none expiring within {PlatformDurations.Describe(_settings.KeyExpiryWarning)}";

    protected override async Task<CheckOutcome> EvaluateAsync(NpgsqlConnection connection, CheckContext context, CancellationToken cancellationToken)
    {
        long active, withoutExpiry;
        await using (var command = Command(connection, """
            select count(*)::bigint, count(*) filter (where expires_at is null)::bigint
            from api_keys where revoked_at is null
            """))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            active = reader.GetInt64(0);
            withoutExpiry = reader.GetInt64(1);
        }

        // Only ids, tenants and dates are selected: key_hash and key_prefix never leave the database.
        var expired = new List<string>();
        var expiring = new List<string>();
        await using (var command = Command(connection, """
            select id, tenant_id, expires_at, expires_at <= now(), extract(epoch from expires_at - now())::float8
            from api_keys
            where revoked_at is null and expires_at is not null and expires_at <= now() + @warning
            order by expires_at, id
            """, ("warning", _settings.KeyExpiryWarning)))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var at = reader.GetFieldValue<DateTimeOffset>(2).UtcDateTime;
                var seconds = Math.Abs(reader.GetDouble(4));
                var line = $"{reader.GetString(0)} (tenant {reader.GetString(1)}, " +
                           (reader.GetBoolean(3) ? $"expired {at:yyyy-MM-ddTHH:mm:ssZ}, {Ago(seconds)} ago)" : $"expires {at:yyyy-MM-ddTHH:mm:ssZ}, in {Ago(seconds)})");
                (reader.GetBoolean(3) ? expired : expiring).Add(line);
            }

        var observed = $"{expired.Count} expired, {expiring.Count} expiring soon, of {active} active key(s)";
        var neverExpire = withoutExpiry > 0 ? $"; {withoutExpiry} active key(s) have no expiry date" : "";
        if (active == 0)
            return CheckOutcome.Warn(observed, Threshold, "no active API key on the platform: nothing was examined");
        if (expired.Count > 0)
            return CheckOutcome.Fail(observed, Threshold,
                "active but expired: " + Sample(expired) + (expiring.Count > 0 ? "; expiring soon: " + Sample(expiring) : "") + neverExpire);
        if (expiring.Count > 0)
            return CheckOutcome.Warn(observed, Threshold, "expiring soon: " + Sample(expiring) + neverExpire);
        return CheckOutcome.Pass(observed, Threshold, $"{active} active key(s) examined, none expired or expiring within {PlatformDurations.Describe(_settings.KeyExpiryWarning)}{neverExpire}");
    }

    private string Sample(List<string> items) =>
        string.Join("; ", items.Take(_settings.SampleSize)) + (items.Count > _settings.SampleSize ? $"; and {items.Count - _settings.SampleSize} more" : "");

    private static string Ago(double seconds)
    {
        var span = TimeSpan.FromSeconds(seconds);
        return span.TotalDays >= 1 ? $"{span.TotalDays:0.#} d" : span.TotalHours >= 1 ? $"{span.TotalHours:0.#} h" : $"{span.TotalMinutes:0} min";
    }
}
