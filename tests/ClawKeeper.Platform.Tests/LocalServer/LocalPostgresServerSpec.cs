using ClawKeeper.Platform.LocalServer;
using ClawKeeper.Testing;
using Npgsql;

namespace ClawKeeper.Platform.Tests.LocalServer;

public sealed class LocalPostgresServerSpec : IDisposable
{
    private readonly string _workDirectory =
        Path.Combine(Path.GetTempPath(), "clawkeeper-local-server-spec", Guid.NewGuid().ToString("N")[..12]);

    [Fact]
    public void The_server_programs_are_found()
    {
        var binaries = LocalPostgresServer.FindBinaries();

        Assert.NotNull(binaries);
        Assert.True(File.Exists(Path.Combine(binaries.BinDirectory, "pg_ctl")));
        Assert.True(File.Exists(Path.Combine(binaries.BinDirectory, "postgres")), "BinDirectory must hold postgres too");
        Assert.Matches(@"^\d+(\.\d+)*$", binaries.Version);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task The_socket_directory_is_private_and_the_socket_wants_the_password_too()
    {
        var server = await LocalPostgresServer.StartAsync(Path.Combine(_workDirectory, "data"));
        try
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(server.SocketDirectory));
            Assert.Empty(Directory.GetFiles(server.SocketDirectory, "*.pw"));

            var admin = new NpgsqlConnectionStringBuilder(server.AdminConnectionString);
            var viaSocket = new NpgsqlConnectionStringBuilder(server.AdminConnectionString) { Host = server.SocketDirectory, Pooling = false };
            Assert.Equal(1, await Sql.ScalarAsync<int>(viaSocket.ConnectionString, "SELECT 1"));
            viaSocket.Password = "wrong";
            var refused = await Assert.ThrowsAsync<PostgresException>(() => Sql.ScalarAsync<int>(viaSocket.ConnectionString, "SELECT 1"));
            Assert.Equal(PostgresErrorCodes.InvalidPassword, refused.SqlState);
            Assert.Equal("scram-sha-256", await Sql.ScalarAsync<string>(server.AdminConnectionString,
                "SELECT auth_method FROM pg_hba_file_rules WHERE type = 'local' LIMIT 1"));
            Assert.False(string.IsNullOrEmpty(admin.Password));
        }
        finally
        {
            await server.StopAsync();
        }
    }

    [Fact]
    public async Task A_server_starts_answers_creates_databases_and_stops()
    {
        var dataDirectory = Path.Combine(_workDirectory, "data");
        var server = await LocalPostgresServer.StartAsync(dataDirectory);
        var admin = new NpgsqlConnectionStringBuilder(server.AdminConnectionString);
        try
        {
            Assert.Equal("127.0.0.1", admin.Host);
            Assert.Equal(server.Port, admin.Port);
            Assert.Equal("clawkeeper", admin.Username);
            Assert.Equal("postgres", admin.Database);
            Assert.False(string.IsNullOrEmpty(admin.Password));
            Assert.Equal(1, await Sql.ScalarAsync<int>(server.AdminConnectionString, "SELECT 1"));
            Assert.True(await Sql.ScalarAsync<bool>(server.AdminConnectionString,
                "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"));

            await server.CreateDatabaseAsync("ck_probe");
            Assert.Equal("ck_probe", await Sql.ScalarAsync<string>(server.ConnectionStringFor("ck_probe"), "SELECT current_database()"));

            // The password is required over TCP: a wrong one is refused.
            var wrongPassword = new NpgsqlConnectionStringBuilder(server.AdminConnectionString) { Password = "wrong", Pooling = false };
            await Assert.ThrowsAsync<PostgresException>(() => Sql.ScalarAsync<int>(wrongPassword.ConnectionString, "SELECT 1"));

            Assert.DoesNotContain(admin.Password!, server.ToString());
            Assert.DoesNotContain(admin.Password!, ConnectionStrings.Describe(server.AdminConnectionString));
            Assert.True(File.Exists(server.ServerLogPath));
        }
        finally
        {
            await server.StopAsync();
        }

        Assert.False(File.Exists(Path.Combine(dataDirectory, "postmaster.pid")));
        Assert.False(Directory.Exists(server.SocketDirectory));
        var afterStop = new NpgsqlConnectionStringBuilder(server.AdminConnectionString) { Pooling = false, Timeout = 2 };
        await Assert.ThrowsAnyAsync<NpgsqlException>(() => Sql.ScalarAsync<int>(afterStop.ConnectionString, "SELECT 1"));
    }

    [Fact]
    public async Task Starting_again_on_the_same_data_directory_stops_the_server_left_running_there()
    {
        var dataDirectory = Path.Combine(_workDirectory, "data");
        var leftRunning = await LocalPostgresServer.StartAsync(dataDirectory);
        await Sql.ExecuteAsync(leftRunning.AdminConnectionString, "CREATE DATABASE ck_left_behind");

        await using var fresh = await LocalPostgresServer.StartAsync(dataDirectory);

        var stale = new NpgsqlConnectionStringBuilder(leftRunning.AdminConnectionString) { Pooling = false, Timeout = 2 };
        await Assert.ThrowsAnyAsync<NpgsqlException>(() => Sql.ScalarAsync<int>(stale.ConnectionString, "SELECT 1"));
        Assert.Equal(0L, await Sql.ScalarAsync<long>(fresh.AdminConnectionString,
            "SELECT count(*) FROM pg_database WHERE datname = 'ck_left_behind'")); // wiped, freshly initialised
        await leftRunning.StopAsync(); // its socket directory; the server itself is already gone
    }

    [Fact]
    public async Task A_non_empty_directory_that_is_not_a_cluster_is_never_wiped()
    {
        Directory.CreateDirectory(_workDirectory);
        var precious = Path.Combine(_workDirectory, "precious.txt");
        await File.WriteAllTextAsync(precious, "keep me");

        var refused = await Assert.ThrowsAsync<LocalPostgresServerException>(() => LocalPostgresServer.StartAsync(_workDirectory));

        Assert.Contains("Refusing to wipe", refused.Message);
        Assert.Equal("keep me", await File.ReadAllTextAsync(precious));
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_workDirectory, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
