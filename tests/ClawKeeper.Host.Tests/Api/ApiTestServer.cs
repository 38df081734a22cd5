using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using ClawKeeper.Host.Api;
using ClawKeeper.Platform.Api;
using ClawKeeper.Testing;
using Npgsql;

namespace ClawKeeper.Host.Tests.Api;

/// <summary>
/// A real <see cref="ApiServer"/> on a free loopback port, on its own migrated platform database
/// (reached through an <see cref="OutageProxy"/> so tests can cut it), with two tenants and keys:
/// <c>acme</c> (active, revoked, expired), <c>globex</c> (active, and one the tests never use
/// before an outage).
/// </summary>
public sealed class ApiTestServer : IAsyncDisposable
{
    public const string AcmeKey = "ck_test_acme_active_0123456789";
    public const string AcmeRevokedKey = "ck_test_acme_revoked_0123456789";
    public const string AcmeExpiredKey = "ck_test_acme_expired_0123456789";
    public const string GlobexKey = "ck_test_globex_active_0123456789";
    public const string GlobexSpareKey = "ck_test_globex_spare_0123456789";

    private readonly string _directory;

    private ApiTestServer(string database, OutageProxy proxy, NpgsqlDataSource platform, ApiServer server, string directory)
    {
        Database = database;
        Proxy = proxy;
        Platform = platform;
        Server = server;
        _directory = directory;
        Http = new HttpClient { BaseAddress = server.BaseUrl, Timeout = TimeSpan.FromSeconds(30) };
    }

    /// <summary>Superuser connection string of the database (direct, not through the proxy).</summary>
    public string Database { get; }
    public OutageProxy Proxy { get; }
    public NpgsqlDataSource Platform { get; }
    public ApiServer Server { get; }
    public HttpClient Http { get; }

    public static async Task<ApiTestServer> StartAsync(Func<ApiSettings, ApiSettings>? configure = null)
    {
        var database = await TestDatabases.CreateMigratedAsync();
        await Sql.ExecuteAsync(database, "INSERT INTO tenants (id, name) VALUES ('acme', 'Acme'), ('globex', 'Globex')");
        await Sql.ExecuteAsync(database, """
            INSERT INTO api_keys (id, tenant_id, name, key_prefix, key_hash, expires_at, revoked_at) VALUES
              ('key-acme', 'acme', 'acme active', 'ck_test_acme', $1, now() + interval '30 days', NULL),
              ('key-acme-revoked', 'acme', 'acme revoked', 'ck_test_acme', $2, NULL, now() - interval '1 day'),
              ('key-acme-expired', 'acme', 'acme expired', 'ck_test_acme', $3, now() - interval '1 hour', NULL),
              ('key-globex', 'globex', 'globex active', 'ck_test_glob', $4, NULL, NULL),
              ('key-globex-spare', 'globex', 'globex spare', 'ck_test_glob', $5, NULL, NULL)
            """, ApiKeyStore.Hash(AcmeKey), ApiKeyStore.Hash(AcmeRevokedKey), ApiKeyStore.Hash(AcmeExpiredKey), ApiKeyStore.Hash(GlobexKey),
            ApiKeyStore.Hash(GlobexSpareKey));

        var direct = new NpgsqlConnectionStringBuilder(database);
        var proxy = new OutageProxy(direct.Host!, direct.Port);
        var proxied = new NpgsqlConnectionStringBuilder(database) { Host = "127.0.0.1", Port = proxy.Port, Timeout = 3, CommandTimeout = 5 }.ConnectionString;

        var directory = Path.Combine(Path.GetTempPath(), "ck-api-" + Guid.NewGuid().ToString("N")[..8]);
        var settings = ApiSettings.Defaults with
        {
            Port = 0,
            BufferPath = Path.Combine(directory, "submissions.db"),
            RatePermits = 100,
            ReconnectMinBackoff = TimeSpan.FromMilliseconds(50),
            ReconnectMaxBackoff = TimeSpan.FromMilliseconds(500),
            RetryAfter = TimeSpan.FromSeconds(7),
        };
        settings = configure?.Invoke(settings) ?? settings;
        // The API's own bounded pool, as a node builds it.
        var platform = ApiServer.CreateDataSource(proxied, settings);
        var server = new ApiServer(settings, platform, "clawkeeper_app");
        await server.StartAsync(CancellationToken.None);
        return new ApiTestServer(database, proxy, platform, server, directory);
    }

    public static HttpRequestMessage Request(HttpMethod method, string path, string? key, object? body = null)
    {
        var request = new HttpRequestMessage(method, path.TrimStart('/'));
        if (key is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        if (body is not null)
            request.Content = new StringContent(body as string ?? JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
        return request;
    }

    public async Task<(int Status, JsonElement Body, HttpResponseMessage Response)> SendAsync(HttpMethod method, string path, string? key, object? body = null)
    {
        var response = await Http.SendAsync(Request(method, path, key, body));
        var text = await response.Content.ReadAsStringAsync();
        var json = text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
        return ((int)response.StatusCode, json, response);
    }

    public Task<(int Status, JsonElement Body, HttpResponseMessage Response)> SubmitAsync(string key, object body) => SendAsync(HttpMethod.Post, "api/tasks", key, body);

    public Task<long> SecurityEventsAsync() => Sql.ScalarAsync<long>(Database, "SELECT count(*) FROM security_events");

    /// <summary>Writes the refusals counted so far (as the window's end would) and returns the rows of security_events.</summary>
    public async Task<long> FlushedSecurityEventsAsync()
    {
        await Server.RefusalEvents.FlushAsync(all: true, CancellationToken.None);
        return await SecurityEventsAsync();
    }

    public Task<long> TasksAsync() => Sql.ScalarAsync<long>(Database, "SELECT count(*) FROM tasks");

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
        await Proxy.DisposeAsync();
        await Platform.DisposeAsync();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
    }
}
