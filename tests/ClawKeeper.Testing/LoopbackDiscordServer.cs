using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace ClawKeeper.Testing;

/// <summary>One webhook post the stand-in received, with its own receive time.</summary>
public sealed record DiscordPost(string Path, string Body, DateTimeOffset ReceivedAt);

/// <summary>
/// Kestrel on 127.0.0.1 playing a Discord webhook for node and CLI specs (and the benchmarks): records every post
/// and answers 204 like Discord does without <c>?wait=true</c>.
/// </summary>
public sealed class LoopbackDiscordServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private LoopbackDiscordServer(WebApplication app) => _app = app;

    public ConcurrentQueue<DiscordPost> Posts { get; } = new();

    public Uri BaseAddress { get; private set; } = null!;

    /// <summary>A webhook URL on this stand-in (<c>/api/webhooks/{id}/{token}</c>).</summary>
    public Uri Webhook => new(BaseAddress, "api/webhooks/1187654321098765432/loopback-token");

    public static async Task<LoopbackDiscordServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var server = new LoopbackDiscordServer(app);
        app.Run(server.HandleAsync);
        await app.StartAsync();
        var address = app.Urls.Single();
        server.BaseAddress = new Uri(address.EndsWith('/') ? address : address + "/");
        return server;
    }

    private async Task HandleAsync(HttpContext context)
    {
        using var reader = new StreamReader(context.Request.Body);
        var body = await reader.ReadToEndAsync(context.RequestAborted);
        Posts.Enqueue(new DiscordPost(context.Request.Path.Value ?? "", body, DateTimeOffset.UtcNow));
        context.Response.StatusCode = 204;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
