using System.Diagnostics;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;

namespace ClawKeeper.Host.Tests.Deployment;

/// <summary>
/// deploy/postgres/roles.sql (what docker-compose's <c>roles</c> service runs after <c>db migrate</c>), run with
/// the real psql against a real migrated database: the nodes' login is in the monitoring group with BYPASSRLS,
/// the journal's login owns its own database, passwords are checked, and a second run changes nothing but the passwords.
/// </summary>
public class RolesScriptSpec
{
    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "ClawKeeper.Actors.sln"))) directory = directory.Parent;
        return directory?.FullName ?? throw new DirectoryNotFoundException("repository root not found");
    }

    private static async Task PsqlAsync(string database, string nodePassword, string journalPassword)
    {
        var owner = new NpgsqlConnectionStringBuilder(database);
        var start = new ProcessStartInfo("psql") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "-X", "-q", "-v", "node_pw=" + nodePassword, "-v", "journal_pw=" + journalPassword, "-f", Path.Combine(RepositoryRoot(), "deploy", "postgres", "roles.sql") })
            start.ArgumentList.Add(arg);
        start.Environment["PGHOST"] = owner.Host;
        start.Environment["PGPORT"] = owner.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["PGUSER"] = owner.Username;
        start.Environment["PGPASSWORD"] = owner.Password;
        start.Environment["PGDATABASE"] = owner.Database;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, await errors);
        Assert.DoesNotContain(nodePassword, await output + await errors);
    }

    private static async Task<string> LoginAsync(string database, string role, string password, string? databaseName = null)
    {
        var connection = new NpgsqlConnectionStringBuilder(database) { Username = role, Password = password, Pooling = false };
        if (databaseName is not null) connection.Database = databaseName;
        await using var open = new NpgsqlConnection(connection.ConnectionString);
        await open.OpenAsync();
        await using var command = new NpgsqlCommand("select current_user", open);
        return (string)(await command.ExecuteScalarAsync())!;
    }

    [Fact]
    public async Task The_roles_script_creates_the_node_and_journal_logins_idempotently()
    {
        var database = await TestDatabases.CreateMigratedAsync();
        await PsqlAsync(database, "node-first-pw", "journal-first-pw");
        await PsqlAsync(database, "node-second-pw", "journal-second-pw");

        var node = Assert.Single(await Sql.RowsAsync(database, """
            SELECT rolcanlogin, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, pg_has_role('clawkeeper_node', 'clawkeeper_monitor', 'MEMBER')
            FROM pg_roles WHERE rolname = 'clawkeeper_node'
            """));
        Assert.Equal(new object?[] { true, false, true, false, false, true }, node);
        Assert.Equal("clawkeeper_journal", await Sql.ScalarAsync<string>(database,
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'clawkeeper_journal'"));
        Assert.False(await Sql.ScalarAsync<bool>(database, "SELECT pg_has_role('clawkeeper_journal', 'clawkeeper_monitor', 'MEMBER')"));

        // The second run's passwords are the ones that work.
        Assert.Equal("clawkeeper_node", await LoginAsync(database, "clawkeeper_node", "node-second-pw"));
        Assert.Equal("clawkeeper_journal", await LoginAsync(database, "clawkeeper_journal", "journal-second-pw", "clawkeeper_journal"));
        await Assert.ThrowsAsync<PostgresException>(() => LoginAsync(database, "clawkeeper_node", "node-first-pw"));
    }
}
