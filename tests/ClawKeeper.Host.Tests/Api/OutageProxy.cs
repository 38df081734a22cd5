using System.Net;
using System.Net.Sockets;

namespace ClawKeeper.Host.Tests.Api;

/// <summary>
/// A TCP proxy on loopback in front of the test PostgreSQL server: <see cref="Cut"/> resets every
/// open connection and stops listening (new connections are refused), <see cref="Restore"/> listens
/// on the same port again. A real network outage of the database, as the API sees it.
/// </summary>
public sealed class OutageProxy : IAsyncDisposable
{
    private readonly IPEndPoint _target;
    private readonly object _lock = new();
    private readonly List<TcpClient> _open = new();
    private TcpListener? _listener;
    private CancellationTokenSource _accepting = new();

    public OutageProxy(string targetHost, int targetPort)
    {
        var address = IPAddress.TryParse(targetHost, out var ip) ? ip : Dns.GetHostAddresses(targetHost).First(a => a.AddressFamily == AddressFamily.InterNetwork);
        _target = new IPEndPoint(address, targetPort);
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        Port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        Restore();
    }

    public int Port { get; }

    public bool IsUp => _listener is not null;

    public void Restore()
    {
        lock (_lock)
        {
            if (_listener is not null) return;
            _accepting = new CancellationTokenSource();
            var listener = new TcpListener(IPAddress.Loopback, Port);
            listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Start();
            _listener = listener;
            _ = AcceptAsync(listener, _accepting.Token);
        }
    }

    public void Cut()
    {
        lock (_lock)
        {
            _accepting.Cancel();
            _listener?.Stop();
            _listener = null;
            foreach (var client in _open)
            {
                try
                {
                    client.Client.LingerState = new LingerOption(true, 0); // RST, as a dead server would
                    client.Close();
                }
                catch (Exception)
                {
                    // already gone
                }
            }
            _open.Clear();
        }
    }

    private async Task AcceptAsync(TcpListener listener, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            TcpClient inbound;
            try
            {
                inbound = await listener.AcceptTcpClientAsync(ct);
            }
            catch (Exception)
            {
                return;
            }
            var outbound = new TcpClient();
            try
            {
                await outbound.ConnectAsync(_target, ct);
            }
            catch (Exception)
            {
                inbound.Close();
                outbound.Close();
                continue;
            }
            lock (_lock)
            {
                if (ct.IsCancellationRequested)
                {
                    inbound.Close();
                    outbound.Close();
                    continue;
                }
                _open.Add(inbound);
                _open.Add(outbound);
            }
            _ = PipeAsync(inbound, outbound);
            _ = PipeAsync(outbound, inbound);
        }
    }

    private static async Task PipeAsync(TcpClient from, TcpClient to)
    {
        try
        {
            await from.GetStream().CopyToAsync(to.GetStream());
        }
        catch (Exception)
        {
            // cut
        }
        finally
        {
            from.Close();
            to.Close();
        }
    }

    public ValueTask DisposeAsync()
    {
        Cut();
        return ValueTask.CompletedTask;
    }
}
