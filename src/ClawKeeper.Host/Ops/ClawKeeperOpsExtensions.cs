using System.Net;
using Akka;
using System.Net.Sockets;
using Akka.Actor;
using Akka.Configuration;
using Akka.Event;
using Akka.Hosting;
using Akka.Http.Dsl;
using Akka.Management;
using Akka.Management.Dsl;
using Ceen.Httpd;
using Npgsql;

namespace ClawKeeper.Host.Ops;

/// <summary>
/// Contributes the ClawKeeper routes to Akka.Management's HTTP server. Akka.Management creates it
/// by type name with the ActorSystem; what it needs comes from the <see cref="OpsSetup"/> that
/// <see cref="ClawKeeperOpsExtensions.WithClawKeeperOps"/> put into the ActorSystem's setup.
/// </summary>
public sealed class OpsRouteProvider : IManagementRouteProvider
{
    private readonly ExtendedActorSystem _system;
    private readonly OpsEndpoints _endpoints;

    public OpsRouteProvider(ExtendedActorSystem system)
    {
        _system = system;
        var setup = system.Settings.Setup.Get<OpsSetup>();
        if (!setup.HasValue)
            throw new ConfigurationException($"{nameof(OpsRouteProvider)} needs an {nameof(OpsSetup)} in the ActorSystem setup: add the routes with WithClawKeeperOps(...)");
        _endpoints = new OpsEndpoints(system, setup.Value.Settings, setup.Value.Platform, setup.Value.Writes);
    }

    public (string, HttpModuleBase)[] Routes(ManagementRouteProviderSettings settings)
    {
        var log = Logging.GetLogger(_system, "ClawKeeper.Ops");
        return _endpoints.Routes(settings.ReadOnly)
            .Select(route => (route.Path, (HttpModuleBase)new OpsRoute(route.Method, route.Handler, log)))
            .ToArray();
    }
}

public static class ClawKeeperOpsExtensions
{
    /// <summary>Name of the ClawKeeper route provider in <c>akka.management.http.routes</c>.</summary>
    public const string RouteProviderName = "clawkeeper-ops";

    /// <summary>
    /// Serves the ops surface on the Akka.Management HTTP port (<see cref="OpsSettings"/>): health,
    /// cluster members, latest heartbeat and history, Prometheus metrics, the status page and the
    /// token-protected POST routes. The server is started by a startup task, so the host does not
    /// start when the port cannot be bound, and stops in CoordinatedShutdown's last phase. Of
    /// Akka.Management's own routes only <c>/remote/address</c> stays (no cluster bootstrap: seed
    /// nodes come from configuration; no cluster-client receptionist).
    /// </summary>
    /// <param name="writes">The super_admin credential and integrity settings for <c>POST /writes/unblock</c>; null = that route refuses every attempt.</param>
    public static AkkaConfigurationBuilder WithClawKeeperOps(this AkkaConfigurationBuilder builder, OpsSettings settings, NpgsqlDataSource platform, OpsWriteSettings? writes = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(platform);

        // Ceen.Httpd does not report the port it bound: resolve 0 to a free port here (small race, fine for tests).
        var port = settings.Port == 0 ? FreePort(settings.EffectiveBindHostname) : settings.Port;
        var effective = settings with { Port = port };

        var http = new HttpSetup
        {
            HostName = effective.Hostname,
            Port = port,
            BindHostName = effective.EffectiveBindHostname,
            BindPort = port,
            RouteProvidersReadOnly = false,
        };
        // Seed nodes come from configuration (no bootstrap) and there is no cluster-client receptionist.
        http.RouteProviders["cluster-bootstrap"] = null;
        http.RouteProviders["cluster-client-receptionist"] = null;
        http.WithRouteProvider<OpsRouteProvider>(RouteProviderName);

        builder.AddSetup(new OpsSetup(effective, platform, writes));
        builder.WithAkkaManagement(new AkkaManagementSetup(http), autoStart: false);
        // Not AkkaManagement.Start(): Akka.Http.Shim 1.5.73 was built against Ceen.Httpd 0.9.9, whose
        // HttpServer.ListenAsync took an IPEndPoint; the only Ceen.Httpd the feed serves is 0.9.10
        // (EndPoint), so Start() fails with MissingMethodException. The routes are still Akka.Management's
        // (every registered route provider, via AkkaManagement.Routes()) behind Akka.Http's AkkaRouter;
        // only the binding below is ours. A port that cannot be bound fails the host's start.
        builder.AddStartup((system, _) =>
        {
            var routes = AkkaManagement.Get(system).Routes();
            OpsHttpServer.Start(system, effective, routes);
        });
        return builder;
    }

    /// <summary>Where the ops surface of <paramref name="system"/> listens (with the port actually used), or null without <see cref="WithClawKeeperOps"/>.</summary>
    public static Uri? OpsBaseUri(this ActorSystem system)
    {
        var setup = system.Settings.Setup.Get<OpsSetup>();
        return setup.HasValue ? setup.Value.BaseUri : null;
    }

    private static int FreePort(string bindHostname)
    {
        var address = IPAddress.TryParse(bindHostname, out var ip) ? ip
            : Dns.GetHostAddresses(bindHostname).FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? IPAddress.Loopback;
        var listener = new TcpListener(address, 0);
        listener.Start();
        try
        {
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        finally
        {
            listener.Stop();
        }
    }
}

/// <summary>Serves Akka.Management's routes with Ceen.Httpd on the ops port until CoordinatedShutdown.</summary>
internal static class OpsHttpServer
{
    public static void Start(ActorSystem system, OpsSettings settings, (string, HttpModuleBase)[] routes)
    {
        var log = Logging.GetLogger(system, "ClawKeeper.Ops");
        var bind = settings.EffectiveBindHostname;
        var address = IPAddress.TryParse(bind, out var ip) ? ip
            : Dns.GetHostAddresses(bind).FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork)
              ?? throw new InvalidOperationException($"clawkeeper.ops.bind-hostname / hostname '{bind}' does not resolve to an IPv4 address");
        var endpoint = new IPEndPoint(address, settings.Port);
        var stop = new CancellationTokenSource();
        var config = new ServerConfig { Router = new AkkaRouter(system, routes), DefaultServerName = "clawkeeper-ops" };

        var serving = HttpServer.ListenAsync(endpoint, usessl: false, config, stop.Token);
        if (serving.IsFaulted)
            throw new InvalidOperationException($"the ops surface could not listen on {endpoint}: {serving.Exception!.GetBaseException().Message}", serving.Exception!.GetBaseException());
        _ = serving.ContinueWith(t =>
        {
            if (!stop.IsCancellationRequested) log.Error(t.Exception!.GetBaseException(), "ClawKeeper ops surface on {0} stopped serving", endpoint);
        }, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);

        // Keeps answering while the node leaves the cluster (readiness turns 503), stops last.
        CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseBeforeActorSystemTerminate, "clawkeeper-ops-stop", async () =>
        {
            stop.Cancel();
            await Task.WhenAny(serving, Task.Delay(TimeSpan.FromSeconds(3))).ConfigureAwait(false);
            return Done.Instance;
        });

        var uri = system.OpsBaseUri();
        log.Info("ClawKeeper ops surface listening on {0} (advertised as {1}): status page {1}, {1}health/ready, {1}metrics", endpoint, uri!);
    }
}
