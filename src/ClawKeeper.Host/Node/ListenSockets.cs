using System.Net;
using System.Net.Sockets;
using ClawKeeper.Host.Configuration;

namespace ClawKeeper.Host.Node;

/// <summary>
/// How the node's HTTP listeners (ops surface, API) bind, and the check that a configured port is
/// free before anything starts.
/// <para>
/// A listener is bound with <c>SO_REUSEADDR</c> only: a node restarted after a SIGKILL binds again
/// at once although the killed process's connections still sit in TIME_WAIT (about 60 s on Linux),
/// while a port another process really listens on stays refused (no <c>SO_REUSEPORT</c>, which
/// .NET's <see cref="SocketOptionName.ReuseAddress"/> would also set on Unix and which lets two
/// listeners share a port).
/// </para>
/// </summary>
public static class ListenSockets
{
    // Linux values of SOL_SOCKET and SO_REUSEADDR (asm-generic/socket.h).
    private const int SolSocket = 1;
    private const int SoReuseAddr = 2;

    /// <summary>A bound (not yet listening) TCP socket for <paramref name="endpoint"/>; Kestrel's <c>CreateBoundListenSocket</c>.</summary>
    public static Socket CreateBound(EndPoint endpoint)
    {
        if (endpoint is not IPEndPoint ip || !OperatingSystem.IsLinux())
            return Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets.SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint);
        var socket = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (ip.Address.Equals(IPAddress.IPv6Any)) socket.DualMode = true;
            socket.SetRawSocketOption(SolSocket, SoReuseAddr, BitConverter.GetBytes(1));
            socket.NoDelay = true;
            socket.Bind(ip);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Throws <see cref="ConfigurationProblemException"/> naming <paramref name="key"/> and the port
    /// when another process listens on <paramref name="host"/>:<paramref name="port"/> (port 0 is
    /// never checked). Binds as the real listener will (address reuse), so TIME_WAIT leftovers of a
    /// killed node do not count as taken.
    /// </summary>
    public static void EnsureFree(string key, string what, string host, int port, string hint)
    {
        if (port == 0) return;
        IPAddress address;
        try
        {
            address = Resolve(host);
        }
        catch (Exception e) when (e is SocketException or ArgumentException)
        {
            throw new ConfigurationProblemException($"{key}: cannot resolve the host '{host}' to bind port {port}: {e.Message}");
        }
        try
        {
            using var socket = CreateBound(new IPEndPoint(address, port));
            socket.Listen(1);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.AddressAlreadyInUse or SocketError.AccessDenied or SocketError.AddressNotAvailable)
        {
            var why = e.SocketErrorCode switch
            {
                SocketError.AddressAlreadyInUse => "is already in use by another process",
                SocketError.AccessDenied => "may not be bound by this user",
                _ => "is not an address of this machine",
            };
            throw new ConfigurationProblemException($"{key}: {what} cannot listen on {address}:{port} (the port {why}); {hint}");
        }
    }

    /// <summary>An IP literal, or the first IPv4 address of a host name (as the listeners bind).</summary>
    public static IPAddress Resolve(string host)
    {
        if (IPAddress.TryParse(host, out var ip)) return ip;
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase)) return IPAddress.Loopback;
        var addresses = Dns.GetHostAddresses(host);
        return addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork)
               ?? addresses.FirstOrDefault()
               ?? throw new ArgumentException($"'{host}' has no address");
    }
}

/// <summary>The ports a <c>run</c> node binds, checked before it starts.</summary>
public static class NodePorts
{
    /// <summary>
    /// Remoting (<c>clawkeeper.node.port</c>), the ops surface (<c>clawkeeper.ops.port</c>) and the API
    /// (<c>clawkeeper.api.port</c>, when enabled): a port another process listens on is a
    /// <see cref="ConfigurationProblemException"/> naming the key and the port (exit 2, no stack trace).
    /// </summary>
    public static void EnsureFree(Akka.Configuration.Config config, ClawKeeper.Actors.Settings.ClawKeeperSettings settings)
    {
        var ops = Ops.OpsSettings.FromConfig(config, settings);
        var api = Api.ApiSettings.FromConfig(config);
        ListenSockets.EnsureFree("clawkeeper.node.port", "Akka remoting", settings.Node.Hostname, settings.Node.Port,
            "choose another remoting port (CLAWKEEPER_NODE_PORT) or stop the process that holds it");
        ListenSockets.EnsureFree($"{Ops.OpsSettings.DefaultPrefix}.port", "the ops surface", ops.EffectiveBindHostname, ops.Port,
            "choose another port (CLAWKEEPER_OPS_PORT, 0 = any free port) or stop the process that holds it");
        if (api.Enabled)
            ListenSockets.EnsureFree($"{Api.ApiSettings.DefaultPrefix}.port", "the API server", api.BindAddress.ToString(), api.Port,
                "choose another port (CLAWKEEPER_API_PORT, 0 = any free port), stop the process that holds it, or set clawkeeper.api.enabled = false");
    }
}
