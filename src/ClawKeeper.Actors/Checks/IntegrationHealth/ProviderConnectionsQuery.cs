using Npgsql;

namespace ClawKeeper.Actors.Checks.IntegrationHealth;

/// <summary>
/// The database half of a provider check: connections that are not active, and per active
/// connection its latest finished sync (failed, partial, older than the limit, or none).
/// Reuses <see cref="PlatformQueryCheck"/> for the connection, the refusal of RLS-bound roles and
/// the mapping of outages to <c>error</c>.
/// </summary>
internal sealed class ProviderConnectionsQuery(NpgsqlDataSource? platform, string provider, IntegrationHealthSettings settings) : PlatformQueryCheck(platform)
{
    public override string Id => ProviderIntegrationCheck.CheckId(provider);
    public override TimeSpan Timeout => settings.Timeout;
    protected override string Threshold => $"{provider} connections active, each with a successful sync younger than {ProviderIntegrationCheck.Describe(settings.MaxSyncAge)}";

    protected override async Task<CheckOutcome> EvaluateAsync(NpgsqlConnection connection, CheckContext context, CancellationToken cancellationToken)
    {
        var rows = new List<ConnectionRow>();
        await using (var command = Command(connection, """
            select c.id, c.tenant_id, c.status, s.outcome, s.completed_at, extract(epoch from now() - s.completed_at)::float8, s.detail
            from integration_connections c
            left join lateral (
                select outcome, completed_at, detail from integration_syncs s
                where s.connection_id = c.id and s.tenant_id = c.tenant_id and s.completed_at is not null
                order by s.completed_at desc, s.id desc limit 1) s on true
            where c.provider = @provider
            order by c.tenant_id, c.id
            """, ("provider", provider)))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                rows.Add(new ConnectionRow(
                    reader.GetString(0), reader.GetString(1), reader.GetString(2),
                    reader.IsDBNull(3) ? null : reader.GetString(3),
                    reader.IsDBNull(4) ? null : reader.GetFieldValue<DateTimeOffset>(4),
                    reader.IsDBNull(5) ? null : TimeSpan.FromSeconds(reader.GetDouble(5)),
                    reader.IsDBNull(6) ? null : reader.GetString(6)));
        return Evaluate(provider, rows, settings.MaxSyncAge, settings.SampleSize, Threshold);
    }

    public sealed record ConnectionRow(string Id, string Tenant, string Status, string? LastOutcome, DateTimeOffset? LastCompletedAt, TimeSpan? LastAge, string? LastDetail);

    /// <summary>Pure: failures (inactive, failed, stale, never synced) fail; a partial sync warns; no connection warns.</summary>
    public static CheckOutcome Evaluate(string provider, IReadOnlyList<ConnectionRow> rows, TimeSpan maxSyncAge, int sampleSize, string threshold)
    {
        if (rows.Count == 0)
            return CheckOutcome.Warn($"0 {provider} connections", threshold, $"no {provider} connection on the platform: only reachability was verified");

        var failures = new List<string>();
        var warnings = new List<string>();
        foreach (var row in rows)
        {
            var who = $"{row.Id} (tenant {row.Tenant})";
            if (row.Status != "active")
            {
                failures.Add($"{who} is {row.Status}");
                continue;
            }
            var last = row.LastCompletedAt is { } at ? $"{at.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}" : "";
            var why = row.LastDetail is { Length: > 0 } detail ? $": {Shorten(detail)}" : "";
            switch (row.LastOutcome)
            {
                case null:
                    failures.Add($"{who} has never completed a sync");
                    break;
                case "failed":
                    failures.Add($"{who} last sync failed at {last}{why}");
                    break;
                case var _ when row.LastAge > maxSyncAge:
                    failures.Add($"{who} last sync {last} is {ProviderIntegrationCheck.Describe(TimeSpan.FromMinutes(Math.Floor(row.LastAge!.Value.TotalMinutes)))} old (limit {ProviderIntegrationCheck.Describe(maxSyncAge)})");
                    break;
                case "partial":
                    warnings.Add($"{who} last sync at {last} was partial{why}");
                    break;
            }
        }

        var active = rows.Count(r => r.Status == "active");
        var observed = $"{rows.Count} {provider} connection(s), {active} active, {failures.Count} failing";
        if (failures.Count > 0)
            return CheckOutcome.Fail(observed, threshold, Sample(failures, sampleSize) + (warnings.Count > 0 ? "; " + Sample(warnings, sampleSize) : ""));
        if (warnings.Count > 0)
            return CheckOutcome.Warn(observed, threshold, Sample(warnings, sampleSize));
        return CheckOutcome.Pass(observed, threshold, "");
    }

    private static string Sample(List<string> items, int sampleSize) =>
        string.Join("; ", items.Take(sampleSize)) + (items.Count > sampleSize ? $"; and {items.Count - sampleSize} more" : "");

    private static string Shorten(string text) => text.Length <= 120 ? text : text[..117] + "...";
}
