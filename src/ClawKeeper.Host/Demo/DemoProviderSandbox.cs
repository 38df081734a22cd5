using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace ClawKeeper.Host.Demo;

/// <summary>
/// The demo's sandbox for the external providers: a Kestrel server on 127.0.0.1 answering
/// <c>GET /{provider}/health</c>, so the integration checks make real HTTP calls (through their
/// circuit breakers) without leaving the machine. <c>POST /{provider}/fail</c> and
/// <c>/{provider}/recover</c> let a newcomer watch a breaker open and close.
/// </summary>
public sealed class DemoProviderSandbox : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly HashSet<string> _failing = new(StringComparer.Ordinal);

    private DemoProviderSandbox(WebApplication app) => _app = app;

    public Uri BaseAddress { get; private set; } = null!;

    public static IReadOnlyList<string> Providers => ClawKeeper.Actors.Settings.ProviderSettings.KnownProviders;

    public static async Task<DemoProviderSandbox> StartAsync(CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var sandbox = new DemoProviderSandbox(app);
        app.MapGet("/{provider}/health", (string provider) =>
        {
            lock (sandbox._failing)
                return sandbox._failing.Contains(provider)
                    ? Results.Json(new { status = "down", provider }, statusCode: StatusCodes.Status503ServiceUnavailable)
                    : Results.Json(new { status = "ok", provider, sandbox = true });
        });
        app.MapPost("/{provider}/fail", (string provider) =>
        {
            lock (sandbox._failing) sandbox._failing.Add(provider);
            return Results.Ok(new { provider, failing = true });
        });
        app.MapPost("/{provider}/recover", (string provider) =>
        {
            lock (sandbox._failing) sandbox._failing.Remove(provider);
            return Results.Ok(new { provider, failing = false });
        });
        await app.StartAsync(cancellationToken);
        var address = app.Urls.Single();
        sandbox.BaseAddress = new Uri(address.EndsWith('/') ? address : address + "/");
        return sandbox;
    }

    /// <summary>The configuration that points every provider at this sandbox.</summary>
    public IReadOnlyDictionary<string, string> Overrides() =>
        Providers.SelectMany(p => new[]
        {
            KeyValuePair.Create($"clawkeeper.integrations.{p}.base-url", new Uri(BaseAddress, p + "/").ToString()),
            KeyValuePair.Create($"clawkeeper.integrations.{p}.health-path", "health"),
        }).ToDictionary(kv => kv.Key, kv => kv.Value);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
