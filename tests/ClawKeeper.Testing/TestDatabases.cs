using System.Collections.Concurrent;
using System.Security.Cryptography;
using ClawKeeper.Platform.Schema;
using ClawKeeper.Platform.Seeding;
using Npgsql;

namespace ClawKeeper.Testing;

/// <summary>
/// Fresh, isolated platform databases on the shared test server (<see cref="TestPostgres"/>).
/// Each call creates a new database <c>ck_&lt;pid&gt;_&lt;machine&gt;_&lt;random&gt;</c> and returns its superuser connection
/// string. Migrated and seeded databases are cloned from templates built once per process
/// (<c>CREATE DATABASE ... TEMPLATE</c>), so they cost a few tens of milliseconds.
/// The seeded template's "relative to now()" timestamps age with it, so it is seeded anew when
/// older than <see cref="SeededTemplateMaxAge"/>.
/// On an external server (<c>CLAWKEEPER_TEST_PG</c>) the databases are dropped at process exit
/// (best effort: the test host may be killed first) and leftovers of dead test processes of this
/// machine are dropped on first use.
/// </summary>
public static class TestDatabases
{
    // CREATE DATABASE ... TEMPLATE fails while the template has other sessions, and concurrent
    // clones of one template may collide: clone one at a time.
    private static readonly SemaphoreSlim CloneLock = new(1, 1);
    private static readonly ConcurrentQueue<string> CreatedDatabases = new();
    // Every database name carries "<pid>_<machine>" so that leftovers of a killed test process on
    // an external server can be recognised and dropped later (see PruneLeftoversOfDeadProcessesAsync).
    private static readonly string MachineTag = Convert.ToHexStringLower(
        SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(Environment.MachineName)))[..6];
    private static readonly string ProcessTag = $"{Environment.ProcessId}_{MachineTag}";
    private static readonly Lazy<Task> PruneLeftovers = new(PruneLeftoversOfDeadProcessesAsync, LazyThreadSafetyMode.ExecutionAndPublication);
    private static readonly Lazy<Task<string>> MigratedTemplate = new(BuildMigratedTemplateAsync, LazyThreadSafetyMode.ExecutionAndPublication);
    private static readonly SemaphoreSlim SeededTemplateLock = new(1, 1);
    private static (string Name, DateTime SeededAtUtc)? _seededTemplate;
    private static int _seededTemplateGeneration;
    private static int _cleanupRegistered;

    /// <summary>A new database with nothing in it (for migrator tests).</summary>
    public static Task<string> CreateEmptyAsync() => CreateAsync(template: null);

    /// <summary>A new database with the platform schema applied.</summary>
    public static async Task<string> CreateMigratedAsync() => await CreateAsync(await MigratedTemplate.Value);

    /// <summary>How old the seeded template may get before it is seeded anew (its task timestamps
    /// are relative to the time of seeding).</summary>
    public static readonly TimeSpan SeededTemplateMaxAge = TimeSpan.FromMinutes(5);

    /// <summary>A new database with the platform schema and the demo platform (<see cref="DemoSeeder"/>),
    /// seeded at most <see cref="SeededTemplateMaxAge"/> ago.</summary>
    public static async Task<string> CreateSeededAsync() => await CreateAsync(await SeededTemplateAsync());

    private static async Task<string> SeededTemplateAsync()
    {
        await SeededTemplateLock.WaitAsync();
        try
        {
            if (_seededTemplate is not { } current || DateTime.UtcNow - current.SeededAtUtc > SeededTemplateMaxAge)
            {
                var seededAt = DateTime.UtcNow;
                current = (await BuildSeededTemplateAsync(++_seededTemplateGeneration), seededAt);
                _seededTemplate = current;
            }

            return current.Name;
        }
        finally
        {
            SeededTemplateLock.Release();
        }
    }

    /// <summary>A new database owned by <paramref name="owner"/> (an existing role), nothing in it.</summary>
    public static async Task<string> CreateEmptyOwnedByAsync(string owner)
    {
        var name = NewDatabaseName("ck_");
        await CreateDatabaseAsync(name, template: null, owner);
        return await ConnectionStringAsync(name);
    }

    private static async Task<string> CreateAsync(string? template)
    {
        var name = NewDatabaseName("ck_");
        await CreateDatabaseAsync(name, template, owner: null);
        return await ConnectionStringAsync(name);
    }

    private static async Task<string> BuildMigratedTemplateAsync()
    {
        var name = $"ck_tpl_migrated_{ProcessTag}";
        await CreateDatabaseAsync(name, template: null, owner: null);
        await PlatformMigrator.MigrateAsync(await TemplateConnectionStringAsync(name));
        return name;
    }

    private static async Task<string> BuildSeededTemplateAsync(int generation)
    {
        var name = $"ck_tpl_seeded_{ProcessTag}_{generation}";
        await CreateDatabaseAsync(name, await MigratedTemplate.Value, owner: null);
        await DemoSeeder.SeedAsync(await TemplateConnectionStringAsync(name));
        return name;
    }

    private static async Task CreateDatabaseAsync(string name, string? template, string? owner)
    {
        RegisterCleanup();
        await PruneLeftovers.Value;
        var sql = $"CREATE DATABASE {Quote(name)}"
                  + (template is null ? "" : $" TEMPLATE {Quote(template)}")
                  + (owner is null ? "" : $" OWNER {Quote(owner)}");
        await CloneLock.WaitAsync();
        try
        {
            await using var connection = new NpgsqlConnection(await AdminConnectionStringAsync());
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 120 };
            await command.ExecuteNonQueryAsync();
            CreatedDatabases.Enqueue(name);
        }
        finally
        {
            CloneLock.Release();
        }
    }

    private static async Task<string> ConnectionStringAsync(string database) =>
        new NpgsqlConnectionStringBuilder(await TestPostgres.ConnectionStringForAsync(database))
        {
            // Many small databases, each with its own pool: give idle connections back soon so
            // that the server's max_connections is not exhausted by idle pools.
            ConnectionIdleLifetime = 10,
            ConnectionPruningInterval = 2,
        }.ConnectionString;

    /// <summary>Templates are reached without pooling: a pooled idle session would block cloning.</summary>
    private static async Task<string> TemplateConnectionStringAsync(string database) =>
        new NpgsqlConnectionStringBuilder(await TestPostgres.ConnectionStringForAsync(database)) { Pooling = false }.ConnectionString;

    private static async Task<string> AdminConnectionStringAsync() =>
        new NpgsqlConnectionStringBuilder(await TestPostgres.AdminConnectionStringAsync()) { Pooling = false }.ConnectionString;

    private static string NewDatabaseName(string prefix) => $"{prefix}{ProcessTag}_{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}";

    private static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private static void RegisterCleanup()
    {
        if (!TestPostgres.UsesExternalServer || Interlocked.Exchange(ref _cleanupRegistered, 1) == 1)
        {
            return; // a local server is thrown away whole at exit
        }

        AppDomain.CurrentDomain.ProcessExit += (_, _) => DropCreatedDatabases();
    }

    /// <summary>
    /// On an external server, drops the databases that test processes of this machine created and
    /// could not drop because they were killed (the test host gets only milliseconds at exit).
    /// </summary>
    private static async Task PruneLeftoversOfDeadProcessesAsync()
    {
        if (!TestPostgres.UsesExternalServer)
        {
            return;
        }

        try
        {
            await using var connection = new NpgsqlConnection(await AdminConnectionStringAsync());
            await connection.OpenAsync();
            var leftovers = new List<string>();
            await using (var list = new NpgsqlCommand(@"SELECT datname FROM pg_database WHERE datname LIKE 'ck\_%'", connection))
            await using (var reader = await list.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                {
                    var name = reader.GetString(0);
                    var match = System.Text.RegularExpressions.Regex.Match(name, @"^ck_(?:tpl_[a-z]+_)?(?<pid>[0-9]+)_(?<machine>[0-9a-f]{6})(?:_|$)");
                    if (match.Success && match.Groups["machine"].Value == MachineTag
                        && int.TryParse(match.Groups["pid"].Value, out var pid) && !TestPostgres.IsProcessAlive(pid))
                    {
                        leftovers.Add(name);
                    }
                }
            }

            // Clones before templates.
            foreach (var name in leftovers.OrderBy(name => name.StartsWith("ck_tpl_", StringComparison.Ordinal)))
            {
                await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {Quote(name)} WITH (FORCE)", connection);
                await drop.ExecuteNonQueryAsync();
            }
        }
        catch (NpgsqlException ex)
        {
            Console.Error.WriteLine($"ClawKeeper.Testing: could not prune leftover test databases: {ex.Message}");
        }
    }

    private static void DropCreatedDatabases()
    {
        try
        {
            NpgsqlConnection.ClearAllPools();
            using var connection = new NpgsqlConnection(AdminConnectionStringAsync().GetAwaiter().GetResult());
            connection.Open();
            // Newest first: clones before the templates they came from.
            foreach (var database in CreatedDatabases.Reverse())
            {
                using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS {Quote(database)} WITH (FORCE)", connection);
                command.ExecuteNonQuery();
            }
        }
        catch (NpgsqlException ex)
        {
            Console.Error.WriteLine($"ClawKeeper.Testing: could not drop the test databases: {ex.Message}");
        }
    }
}
