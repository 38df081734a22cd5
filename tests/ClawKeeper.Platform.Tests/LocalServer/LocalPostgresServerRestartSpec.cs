using ClawKeeper.Platform.LocalServer;
using ClawKeeper.Testing;
using Npgsql;

namespace ClawKeeper.Platform.Tests.LocalServer;

/// <summary>An outage on purpose: the throwaway server stops and comes back on the same port with its data.</summary>
public sealed class LocalPostgresServerRestartSpec : IDisposable
{
    private readonly string _workDirectory =
        Path.Combine(Path.GetTempPath(), "clawkeeper-local-server-spec", Guid.NewGuid().ToString("N")[..12]);

    [Fact]
    public async Task A_stopped_server_refuses_connections_and_comes_back_on_the_same_port_with_its_data()
    {
        var server = await LocalPostgresServer.StartAsync(Path.Combine(_workDirectory, "data"));
        try
        {
            await server.CreateDatabaseAsync("ck_outage");
            var database = new NpgsqlConnectionStringBuilder(server.ConnectionStringFor("ck_outage")) { Pooling = false, Timeout = 3 }.ConnectionString;
            await Sql.ExecuteAsync(database, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)");
            var port = server.Port;

            await server.StopKeepingDataAsync();

            await Assert.ThrowsAnyAsync<NpgsqlException>(() => Sql.ScalarAsync<int>(database, "SELECT 1"));
            Assert.True(Directory.Exists(server.SocketDirectory));

            await server.StartAgainAsync();

            Assert.Equal(port, server.Port);
            Assert.Equal(42, await Sql.ScalarAsync<int>(database, "SELECT v FROM kept"));
            // Starting a running server again changes nothing.
            await server.StartAgainAsync();
            Assert.Equal(42, await Sql.ScalarAsync<int>(database, "SELECT v FROM kept"));
        }
        finally
        {
            await server.StopAsync();
        }

        Assert.False(File.Exists(Path.Combine(server.DataDirectory, "postmaster.pid")));
        Assert.False(Directory.Exists(server.SocketDirectory));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => server.StartAgainAsync());
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
