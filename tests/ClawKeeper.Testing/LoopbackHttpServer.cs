using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace ClawKeeper.Testing;

/// <summary>How a stand-in endpoint behaves right now.</summary>
public abstract record HttpFault
{
    public sealed record Healthy : HttpFault;

    /// <summary>Answers 200, but only after the delay (slower than the caller's timeout, typically).</summary>
    public sealed record Slow(TimeSpan Delay) : HttpFault;

    /// <summary>Answers with this status code.</summary>
    public sealed record Status(int Code) : HttpFault;

    /// <summary>Answers <paramref name="Code"/> for the first <paramref name="Failures"/> calls, then 200.</summary>
    public sealed record RecoverAfter(int Failures, int Code = 500) : HttpFault;
}

/// <summary>
/// A real Kestrel server on 127.0.0.1 with a random port, standing in for the ClawKeeper API or an
/// external provider. Every path answers according to <see cref="Fault"/>; requests are counted.
/// </summary>
public sealed class LoopbackHttpServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _requests;

    private LoopbackHttpServer(WebApplication app) => _app = app;

    public HttpFault Fault { get; set; } = new HttpFault.Healthy();

    public int RequestCount => Volatile.Read(ref _requests);

    public Uri BaseAddress { get; private set; } = null!;

    public static async Task<LoopbackHttpServer> StartAsync(HttpFault? fault = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var server = new LoopbackHttpServer(app) { Fault = fault ?? new HttpFault.Healthy() };
        app.Run(server.HandleAsync);
        await app.StartAsync();
        var address = app.Urls.Single();
        server.BaseAddress = new Uri(address.EndsWith('/') ? address : address + "/");
        return server;
    }

    /// <summary>A loopback URL where nothing listens: connections are refused.</summary>
    public static Uri RefusingAddress()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return new Uri($"http://127.0.0.1:{port}/");
    }

    private async Task HandleAsync(HttpContext context)
    {
        var number = Interlocked.Increment(ref _requests);
        switch (Fault)
        {
            case HttpFault.Slow slow:
                try
                {
                    await Task.Delay(slow.Delay, context.RequestAborted);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                await Ok(context);
                break;
            case HttpFault.Status status:
                context.Response.StatusCode = status.Code;
                await context.Response.WriteAsync($"{{\"error\":\"stand-in answers {status.Code}\"}}");
                break;
            case HttpFault.RecoverAfter recover when number <= recover.Failures:
                context.Response.StatusCode = recover.Code;
                await context.Response.WriteAsync($"{{\"error\":\"failing call {number} of {recover.Failures}\"}}");
                break;
            default:
                await Ok(context);
                break;
        }
    }

    private static Task Ok(HttpContext context)
    {
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync("{\"status\":\"ok\"}");
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
