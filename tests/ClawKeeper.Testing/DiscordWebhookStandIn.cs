using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace ClawKeeper.Testing;

/// <summary>One message the Discord stand-in received: when (the stand-in's clock), its content and the embed's title and text.</summary>
public sealed record DiscordMessage(TimeSpan At, string Path, string Body)
{
    /// <summary>The message's <c>content</c> line (e.g. <c>**CRITICAL** ClawKeeper: ...</c>).</summary>
    public string Content => Parse(root => root.TryGetProperty("content", out var c) ? c.GetString() ?? "" : "");

    /// <summary>Everything a person reads in it: content, embed titles, descriptions, field names and values, footers.</summary>
    public string Text => Parse(root =>
    {
        var parts = new List<string>();
        if (root.TryGetProperty("content", out var content)) parts.Add(content.GetString() ?? "");
        if (root.TryGetProperty("embeds", out var embeds) && embeds.ValueKind == JsonValueKind.Array)
            foreach (var embed in embeds.EnumerateArray())
            {
                foreach (var name in new[] { "title", "description" })
                    if (embed.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String) parts.Add(value.GetString()!);
                if (embed.TryGetProperty("fields", out var fields) && fields.ValueKind == JsonValueKind.Array)
                    foreach (var entry in fields.EnumerateArray())
                    {
                        if (entry.TryGetProperty("name", out var n)) parts.Add(n.GetString() ?? "");
                        if (entry.TryGetProperty("value", out var v)) parts.Add(v.GetString() ?? "");
                    }
                if (embed.TryGetProperty("footer", out var footer) && footer.TryGetProperty("text", out var text)) parts.Add(text.GetString() ?? "");
            }
        return string.Join("\n", parts);
    });

    private string Parse(Func<JsonElement, string> read)
    {
        try
        {
            using var document = JsonDocument.Parse(Body);
            return read(document.RootElement);
        }
        catch (JsonException)
        {
            return Body;
        }
    }
}

/// <summary>
/// A Discord webhook on 127.0.0.1 (Kestrel, random port) for node and CLI specs and the benchmarks: every POST to
/// <see cref="Webhook"/> is recorded with the time it arrived and answered 204 No Content, as Discord does.
/// </summary>
public sealed class DiscordWebhookStandIn : IAsyncDisposable
{
    public const string WebhookId = "1187654321098765432";
    public const string Token = "stand-in-webhook-token-0123456789";

    private readonly WebApplication _app;
    private readonly Stopwatch _clock;

    private DiscordWebhookStandIn(WebApplication app, Stopwatch clock)
    {
        _app = app;
        _clock = clock;
    }

    public ConcurrentQueue<DiscordMessage> Messages { get; } = new();

    public Uri BaseAddress { get; private set; } = null!;

    /// <summary>The webhook URL, token included (<c>/api/webhooks/{id}/{token}</c>): a secret to the node, do not print it.</summary>
    public Uri Webhook => new(BaseAddress, $"api/webhooks/{WebhookId}/{Token}");

    /// <param name="clock">The clock of <see cref="DiscordMessage.At"/> (the test's own, to compare with other events); by default one started now.</param>
    public static async Task<DiscordWebhookStandIn> StartAsync(Stopwatch? clock = null)
    {
        clock ??= Stopwatch.StartNew();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var standIn = new DiscordWebhookStandIn(app, clock);
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
        if (!HttpMethods.IsPost(context.Request.Method) || context.Request.Path.Value != Webhook.AbsolutePath)
        {
            context.Response.StatusCode = 404;
            await context.Response.WriteAsync("""{"message": "Unknown Webhook", "code": 10015}""");
            return;
        }
        Messages.Enqueue(new DiscordMessage(_clock.Elapsed, context.Request.Path.Value ?? "", body));
        context.Response.StatusCode = 204;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
