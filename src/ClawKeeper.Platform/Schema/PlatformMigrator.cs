using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Npgsql;

namespace ClawKeeper.Platform.Schema;

/// <summary>What one <see cref="PlatformMigrator.MigrateAsync"/> run did, by migration file name
/// (e.g. <c>0001_platform_schema.sql</c>), in version order.</summary>
public sealed record MigrationResult(IReadOnlyList<string> Applied, IReadOnlyList<string> AlreadyApplied);

/// <summary>One embedded SQL migration: <c>Schema/Migrations/&lt;version&gt;_&lt;name&gt;.sql</c>.</summary>
public sealed record PlatformMigration(string Version, string Name, string FileName, string Sql, string Checksum);

/// <summary>A migration could not be applied, or the database disagrees with the migration files.</summary>
public sealed class PlatformMigrationException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Applies the embedded platform migrations in version order. Each migration runs in its own
/// transaction together with its <c>schema_migrations</c> row; a session advisory lock (per
/// database) serialises nodes that migrate at the same time; a second run applies nothing;
/// an applied migration whose file changed since (checksum mismatch) is refused.
/// </summary>
public static partial class PlatformMigrator
{
    private const string ResourcePrefix = "ClawKeeper.Platform.Schema.Migrations.";

    /// <summary>Key of the session advisory lock held while migrating (advisory locks are per database).</summary>
    public const long AdvisoryLockKey = 0x436C_61774B_0001; // "ClawK" + 1

    private static readonly Lazy<IReadOnlyList<PlatformMigration>> EmbeddedMigrations = new(LoadEmbeddedMigrations);

    /// <summary>The migrations shipped in this assembly, in version order.</summary>
    public static IReadOnlyList<PlatformMigration> Migrations => EmbeddedMigrations.Value;

    public static Task<MigrationResult> MigrateAsync(string connectionString, CancellationToken ct = default) =>
        MigrateAsync(connectionString, Migrations, ct);

    /// <summary>Applies <paramref name="migrations"/> (in version order) instead of the embedded ones: for tests.</summary>
    internal static async Task<MigrationResult> MigrateAsync(
        string connectionString, IReadOnlyList<PlatformMigration> migrations, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        migrations = migrations.OrderBy(migration => migration.Version, StringComparer.Ordinal).ToList();

        await using var connection = new NpgsqlConnection(connectionString);
        try
        {
            await connection.OpenAsync(ct);
        }
        catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException)
        {
            throw new PlatformMigrationException(
                $"Cannot connect to the platform database {ConnectionStrings.Describe(connectionString)}: {ex.Message}", ex);
        }

        // Waits (indefinitely, but cancellably) while another node migrates this database.
        await ExecuteAsync(connection, null, $"SELECT pg_advisory_lock({AdvisoryLockKey})", ct, timeoutSeconds: 0);
        try
        {
            await ExecuteAsync(connection, null, """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version     text        PRIMARY KEY,
                    name        text        NOT NULL,
                    checksum    text        NOT NULL,
                    applied_at  timestamptz NOT NULL DEFAULT now()
                )
                """, ct);

            var applied = await ReadAppliedChecksumsAsync(connection, ct);
            foreach (var migration in migrations)
            {
                if (applied.TryGetValue(migration.Version, out var appliedChecksum) && appliedChecksum != migration.Checksum)
                {
                    throw new PlatformMigrationException(
                        $"Migration {migration.FileName} was already applied with checksum {appliedChecksum}, " +
                        $"but the file now has checksum {migration.Checksum}. Applied migrations must never change: " +
                        "revert the edit and put the change in a new migration file.");
                }
            }

            var newlyApplied = new List<string>();
            var alreadyApplied = new List<string>();
            foreach (var migration in migrations)
            {
                if (applied.ContainsKey(migration.Version))
                {
                    alreadyApplied.Add(migration.FileName);
                    continue;
                }

                await ApplyAsync(connection, migration, ct);
                newlyApplied.Add(migration.FileName);
            }

            return new MigrationResult(newlyApplied, alreadyApplied);
        }
        finally
        {
            if (connection.State == System.Data.ConnectionState.Open)
            {
                // Best effort: closing the connection releases the lock anyway.
                try
                {
                    await ExecuteAsync(connection, null, $"SELECT pg_advisory_unlock({AdvisoryLockKey})", CancellationToken.None);
                }
                catch (NpgsqlException)
                {
                }
            }
        }
    }

    private static async Task ApplyAsync(NpgsqlConnection connection, PlatformMigration migration, CancellationToken ct)
    {
        await using var transaction = await connection.BeginTransactionAsync(ct);
        try
        {
            await ExecuteAsync(connection, transaction, migration.Sql, ct, timeoutSeconds: 0);
        }
        catch (PostgresException ex)
        {
            throw new PlatformMigrationException(
                $"Migration {migration.FileName} failed and was rolled back: {DescribeServerError(ex)}", ex);
        }

        await using (var record = new NpgsqlCommand(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", connection, transaction))
        {
            record.Parameters.Add(new NpgsqlParameter { Value = migration.Version });
            record.Parameters.Add(new NpgsqlParameter { Value = migration.Name });
            record.Parameters.Add(new NpgsqlParameter { Value = migration.Checksum });
            await record.ExecuteNonQueryAsync(ct);
        }

        await transaction.CommitAsync(ct);
    }

    private static async Task<Dictionary<string, string>> ReadAppliedChecksumsAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        var applied = new Dictionary<string, string>(StringComparer.Ordinal);
        await using var command = new NpgsqlCommand("SELECT version, checksum FROM schema_migrations", connection);
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            applied[reader.GetString(0)] = reader.GetString(1);
        }

        return applied;
    }

    private static async Task ExecuteAsync(
        NpgsqlConnection connection, NpgsqlTransaction? transaction, string sql, CancellationToken ct, int timeoutSeconds = 60)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction) { CommandTimeout = timeoutSeconds };
        await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>The server's own words: message, then detail, hint and PL/pgSQL context when present.</summary>
    private static string DescribeServerError(PostgresException ex)
    {
        var description = new StringBuilder($"{ex.SqlState} {ex.MessageText}");
        foreach (var (label, value) in new[] { ("detail", ex.Detail), ("hint", ex.Hint), ("context", ex.Where) })
        {
            if (!string.IsNullOrWhiteSpace(value))
            {
                description.Append($"; {label}: {value}");
            }
        }

        return description.ToString();
    }

    private static IReadOnlyList<PlatformMigration> LoadEmbeddedMigrations()
    {
        var assembly = typeof(PlatformMigrator).Assembly;
        var migrations = new List<PlatformMigration>();
        foreach (var resource in assembly.GetManifestResourceNames())
        {
            if (!resource.StartsWith(ResourcePrefix, StringComparison.Ordinal) ||
                !resource.EndsWith(".sql", StringComparison.Ordinal))
            {
                continue;
            }

            var fileName = resource[ResourcePrefix.Length..];
            var match = MigrationFileName().Match(fileName);
            if (!match.Success)
            {
                throw new PlatformMigrationException(
                    $"Embedded migration {fileName} is misnamed: expected <4+ digit version>_<snake_case_name>.sql");
            }

            migrations.Add(Load(assembly, resource, fileName, match.Groups["version"].Value, match.Groups["name"].Value));
        }

        migrations.Sort((a, b) => string.CompareOrdinal(a.Version, b.Version));
        var duplicate = migrations.GroupBy(m => m.Version).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new PlatformMigrationException(
                $"Migration version {duplicate.Key} is used by more than one file: {string.Join(", ", duplicate.Select(m => m.FileName))}");
        }

        return migrations;
    }

    private static PlatformMigration Load(Assembly assembly, string resource, string fileName, string version, string name)
    {
        using var stream = assembly.GetManifestResourceStream(resource)
            ?? throw new PlatformMigrationException($"Embedded migration {fileName} cannot be read");
        using var reader = new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        return Create(version, name, fileName, reader.ReadToEnd());
    }

    internal static PlatformMigration Create(string version, string name, string fileName, string sql)
    {
        // Line endings are normalised so that a checkout with CRLF keeps the same checksum.
        var normalised = sql.Replace("\r\n", "\n", StringComparison.Ordinal);
        var checksum = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(normalised)));
        return new PlatformMigration(version, name, fileName, normalised, checksum);
    }

    [GeneratedRegex(@"^(?<version>[0-9]{4,})_(?<name>[a-z0-9_]+)\.sql$", RegexOptions.CultureInvariant)]
    private static partial Regex MigrationFileName();
}
