using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace ClawKeeper.Actors.Tests.Alerts.Channels;

/// <summary>What the stand-in answers: status, optional body and headers, optionally after a delay.</summary>
public sealed record StandInReply(int Status, string? Body = null, IReadOnlyDictionary<string, string>? Headers = null, TimeSpan? Delay = null)
{
    /// <summary>Discord's answer to a webhook post without <c>?wait=true</c>.</summary>
    public static StandInReply NoContent => new(204);

    public static StandInReply RateLimited(string body, IReadOnlyDictionary<string, string>? headers = null) => new(429, body, headers);
}

public sealed record RecordedRequest(string Method, string Path, string? ContentType, string Body)
{
    /// <summary>When the stand-in received it (its own clock, not the test's polling).</summary>
    public DateTime ReceivedAt { get; init; } = DateTime.UtcNow;
}

/// <summary>
/// Kestrel on 127.0.0.1 playing a Discord webhook: records every request (method, path, content type, body) and
/// answers with <see cref="Reply"/>. A 5xx answer echoes the request path, as a careless proxy would, so the specs
/// can show the channel still never repeats the token.
/// </summary>
public sealed class DiscordStandIn : IAsyncDisposable
{
    public const string WebhookId = "1187654321098765432";
    public const string Token = "Xy9-sEcReT_t0ken-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";

    private readonly WebApplication _app;

    private DiscordStandIn(WebApplication app) => _app = app;

    public StandInReply Reply { get; set; } = StandInReply.NoContent;

    public ConcurrentQueue<RecordedRequest> Requests { get; } = new();

    public Uri BaseAddress { get; private set; } = null!;

    /// <summary>The webhook URL, token included (<c>/api/webhooks/{id}/{token}</c>).</summary>
    public Uri Webhook => new(BaseAddress, $"api/webhooks/{WebhookId}/{Token}");

    public static async Task<DiscordStandIn> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var standIn = new DiscordStandIn(app);
        app.Run(standIn.HandleAsync);
        await app.StartAsync();
        var address = app.Urls.Single();
        standIn.BaseAddress = new Uri(address.EndsWith('/') ? address : address + "/");
        return standIn;
    }

    private async Task HandleAsync(HttpContext context)
    {
        using var reader = new StreamReader(context.Request.Body);
        var body = await reader.ReadToEndAsync(context.RequestAborted);
        Requests.Enqueue(new RecordedRequest(context.Request.Method, context.Request.Path.Value ?? "", context.Request.ContentType, body));

        var reply = Reply;
        if (reply.Delay is { } delay)
        {
            try
            {
                await Task.Delay(delay, context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
        context.Response.StatusCode = reply.Status;
        foreach (var (name, value) in reply.Headers ?? new Dictionary<string, string>())
            context.Response.Headers[name] = value;
        var answer = reply.Body ?? (reply.Status >= 500 ? $"{{\"message\": \"upstream failed for {context.Request.Path}\"}}" : null);
        if (answer is not null)
        {
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(answer);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
