using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using MimeKit;
using SmtpServer;
using SmtpServer.Authentication;
using SmtpServer.Net;
using SmtpServer.Protocol;
using SmtpServer.Storage;
using SmtpServerHost = SmtpServer.SmtpServer;
using SmtpServiceProvider = SmtpServer.ComponentModel.ServiceProvider;

namespace ClawKeeper.Testing;

/// <summary>One message as the SMTP server received it: the envelope, who authenticated, the parsed MIME message.</summary>
public sealed record ReceivedMail(string EnvelopeFrom, IReadOnlyList<string> EnvelopeTo, string? AuthenticatedUser, MimeMessage Message);

/// <summary>
/// A real SMTP server (the SmtpServer package) on 127.0.0.1 with a port the OS picks. With credentials it
/// advertises AUTH PLAIN/LOGIN over plain TCP (loopback only) and refuses MAIL FROM until a client has authenticated.
/// </summary>
public sealed class LoopbackSmtpServer : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly SmtpServerHost _server;
    private Task _running = Task.CompletedTask;
    private int _authAttempts;

    private LoopbackSmtpServer(SmtpServerHost server) => _server = server;

    public ConcurrentQueue<ReceivedMail> Received { get; } = new();

    public int Port { get; private set; }

    public int AuthenticationAttempts => Volatile.Read(ref _authAttempts);

    public static async Task<LoopbackSmtpServer> StartAsync(string? username = null, string? password = null, int port = 0)
    {
        var requireAuth = username is not null;
        var options = new SmtpServerOptionsBuilder()
            .ServerName("localhost")
            .Endpoint(e => e
                .Endpoint(new IPEndPoint(IPAddress.Loopback, port))
                .AllowUnsecureAuthentication(requireAuth)
                .AuthenticationRequired(requireAuth))
            .Build();

        var services = new SmtpServiceProvider();
        LoopbackSmtpServer? self = null;
        services.Add(new CapturingStore(mail => self!.Received.Enqueue(mail)));
        if (requireAuth)
        {
            services.Add(new DelegatingUserAuthenticator((user, pass) =>
            {
                Interlocked.Increment(ref self!._authAttempts);
                return user == username && pass == password;
            }));
        }
        var started = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var listeners = new EndpointListenerFactory();
        listeners.EndpointStarted += (_, e) => started.TrySetResult(((IPEndPoint)e.LocalEndPoint).Port);
        services.Add(listeners);

        self = new LoopbackSmtpServer(new SmtpServerHost(options, services));
        self._running = self._server.StartAsync(self._stop.Token);
        var first = await Task.WhenAny(started.Task, self._running, Task.Delay(TimeSpan.FromSeconds(10)));
        if (first != started.Task)
        {
            await self.DisposeAsync();
            throw new InvalidOperationException("the loopback SMTP server did not start", (first as Task<int>)?.Exception ?? self._running.Exception);
        }
        self.Port = started.Task.Result;
        return self;
    }

    /// <summary>Waits until <paramref name="count"/> messages arrived (the store runs before the server answers 250, so usually at once).</summary>
    public async Task<IReadOnlyList<ReceivedMail>> WaitForAsync(int count, TimeSpan? timeout = null)
    {
        var until = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(5));
        while (Received.Count < count && DateTime.UtcNow < until) await Task.Delay(20);
        return Received.ToArray();
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _server.Shutdown();
        try
        {
            await _running.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception)
        {
            // stopping
        }
        _stop.Dispose();
    }

    private sealed class CapturingStore(Action<ReceivedMail> received) : MessageStore
    {
        public override async Task<SmtpResponse> SaveAsync(ISessionContext context, IMessageTransaction transaction, ReadOnlySequence<byte> buffer, CancellationToken cancellationToken)
        {
            using var stream = new MemoryStream(buffer.ToArray());
            var message = await MimeMessage.LoadAsync(stream, cancellationToken);
            var user = context.Authentication is { IsAuthenticated: true } auth ? auth.User : null;
            received(new ReceivedMail(
                $"{transaction.From.User}@{transaction.From.Host}",
                transaction.To.Select(t => $"{t.User}@{t.Host}").ToList(),
                user,
                message));
            return SmtpResponse.Ok;
        }
    }
}
