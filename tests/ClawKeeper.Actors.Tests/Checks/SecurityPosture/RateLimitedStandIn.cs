using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace ClawKeeper.Actors.Tests.Checks.SecurityPosture;

/// <summary>
/// A real Kestrel on 127.0.0.1 standing in for a rate-limited API endpoint: it admits the first
/// <c>admit</c> requests (200) and refuses every later one with 429, like a fixed window that does
/// not reset during a test.
/// </summary>
public sealed class RateLimitedStandIn : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly int _admit;
    private int _requests;

    private RateLimitedStandIn(WebApplication app, int admit)
    {
        _app = app;
        _admit = admit;
    }

    public int RequestCount => Volatile.Read(ref _requests);

    public Uri Endpoint { get; private set; } = null!;

    public static async Task<RateLimitedStandIn> StartAsync(int admit)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var standIn = new RateLimitedStandIn(app, admit);
        app.Run(standIn.HandleAsync);
        await app.StartAsync();
        standIn.Endpoint = new Uri(app.Urls.Single().TrimEnd('/') + "/v1/ping");
        return standIn;
    }

    private async Task HandleAsync(HttpContext context)
    {
        var number = Interlocked.Increment(ref _requests);
        if (number <= _admit)
        {
            context.Response.StatusCode = 200;
            await context.Response.WriteAsync("{\"pong\":true}");
            return;
        }
        context.Response.StatusCode = 429;
        context.Response.Headers.RetryAfter = "60";
        await context.Response.WriteAsync("{\"error\":\"rate limited\"}");
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
