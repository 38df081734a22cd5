using System.CommandLine;
using Akka.Actor;
using ClawKeeper.Host.Api;
using ClawKeeper.Host.Configuration;
using ClawKeeper.Host.Demo;
using ClawKeeper.Host.Ops;
using ClawKeeper.Host.Node;
using ClawKeeper.Platform;
using ClawKeeper.Platform.LocalServer;
using ClawKeeper.Platform.Schema;
using ClawKeeper.Platform.Seeding;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Serilog;

namespace ClawKeeper.Host.Cli;

/// <summary>
/// <c>demo</c>: a throwaway PostgreSQL under <c>./.clawkeeper/</c>, migrated and seeded, and one
/// node heartbeating every few seconds. Ctrl+C (or --stop-after) stops the node and the server.
/// </summary>
public static class DemoCommand
{
    public static Command Build()
    {
        var stopAfter = new Option<int?>("--stop-after")
        {
            Description = "Stop by itself after this many seconds (default: run until Ctrl+C)",
        };
        stopAfter.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int?>() is <= 0) result.AddError("--stop-after must be a positive number of seconds");
        });
        var command = new Command("demo", "Start a throwaway local PostgreSQL under ./.clawkeeper/, migrate and seed it, and run one node with a short heartbeat interval.") { stopAfter };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var workDirectory = Path.GetFullPath(".clawkeeper");
            Directory.CreateDirectory(workDirectory);
            var journalPath = Path.Combine(workDirectory, "demo-journal.db");
            var apiBufferPath = Path.Combine(workDirectory, "demo-api-submissions.db");

            // Validate the configuration before starting anything (the demo database is filled in below).
            var (_, preliminary) = ClawKeeperCli.LoadSettings(parse, new[] { "demo.conf" }, requirePlatformDb: false);
            SerilogSetup.Configure(preliminary.Logging, toStandardError: false);

            Console.Out.WriteLine($"Starting a throwaway PostgreSQL in {Path.Combine(workDirectory, "pg")} ...");
            await using var server = await LocalPostgresServer.StartAsync(Path.Combine(workDirectory, "pg"), cancellationToken);
            try
            {
                await server.CreateDatabaseAsync("clawkeeper");
                var platform = server.ConnectionStringFor("clawkeeper");
                var migrated = await PlatformMigrator.MigrateAsync(platform, cancellationToken);
                var seeded = await DemoSeeder.SeedAsync(platform, cancellationToken);
                foreach (var stale in new[] { journalPath, apiBufferPath }.SelectMany(p => new[] { p, p + "-wal", p + "-shm" }))
                    File.Delete(stale);
                // A key for a newcomer's curl: shown once below, stored only as its SHA-256.
                var demoTenant = DemoSeeder.Tenants[0].Id;
                string demoKey;
                await using (var keys = Npgsql.NpgsqlDataSource.Create(platform))
                    demoKey = await ClawKeeper.Platform.Api.ApiKeyIssuer.IssueAsync(keys, $"key-{demoTenant}-demo-{DateTime.UtcNow:yyyyMMddHHmmss}", demoTenant,
                        "demo key (printed by clawkeeper demo)", DateTimeOffset.UtcNow.AddDays(30), cancellationToken);
                var envFile = Path.Combine(workDirectory, "demo.env");
                await WritePrivateFileAsync(envFile, $"{ConfigurationLoader.PlatformDbVariable}='{platform}'\n", cancellationToken);

                await using var sandbox = await DemoProviderSandbox.StartAsync(cancellationToken);
                var overrides = new Dictionary<string, string>(sandbox.Overrides())
                {
                    ["clawkeeper.platform-db.connection-string"] = platform,
                    ["clawkeeper.journal.connection-string"] = "",
                    ["clawkeeper.journal.sqlite-path"] = journalPath,
                    ["clawkeeper.api.submission-buffer.path"] = apiBufferPath,
                };
                var (config, settings) = ClawKeeperCli.LoadSettings(parse, new[] { "demo.conf" }, overrides);

                using var host = ClawKeeperNode.Build(config, settings, NodeMode.ClusterNode);
                await host.StartAsync(cancellationToken);
                var system = host.Services.GetRequiredService<ActorSystem>();
                var address = Akka.Cluster.Cluster.Get(system).SelfAddress;
                var apiUrl = host.Services.GetService<ApiServer>()?.BaseUrl;
                const string curlBody = """{"orchestrator": "accounts-payable-lead", "kind": "invoice.match", "payload": {"invoice": "INV-1"}}""";
                Console.Out.WriteLine($"""

                    ClawKeeper demo is running.
                      Platform database : postgresql://{ConnectionStrings.Describe(platform)} ({migrated.Applied.Count} migrations, {seeded.Tenants} tenants, {seeded.Tasks} tasks, {seeded.AuditEntries} audit entries)
                      Connection string : in {envFile} (not printed: it holds the password)
                      Cluster node      : {address}
                      Status page       : {system.OpsBaseUri()?.ToString() ?? "(ops surface not started)"}  (also /health/ready, /heartbeat/latest, /metrics)
                      API server        : {apiUrl?.ToString() ?? "(disabled: clawkeeper.api.enabled = false)"}  (GET /health; POST /api/tasks and GET /api/tasks/ID with an API key)
                      Demo API key      : {demoKey}  (tenant {demoTenant}; shown once, stored only as its SHA-256)
                      Submit a task     : curl -s -X POST -H "Authorization: Bearer {demoKey}" -H "Content-Type: application/json" -d '{curlBody}' {apiUrl}api/tasks
                      Provider sandbox  : {sandbox.BaseAddress} (plaid, stripe, quickbooks, xero; curl -X POST {sandbox.BaseAddress}stripe/fail to trip a breaker, .../recover to heal it)
                      Alerts            : {(settings.Alerts.Policy.ChannelsByAudience.Values.Any(c => c.Count > 0) ? "delivered by " + string.Join(", ", settings.Alerts.Policy.ChannelsByAudience.Where(a => a.Value.Count > 0).Select(a => $"{a.Key}: {string.Join("+", a.Value)}")) : "recorded only (set CLAWKEEPER_SMTP_HOST/CLAWKEEPER_ALERT_EMAIL_SUPER_ADMIN or CLAWKEEPER_DISCORD_WEBHOOK_SUPER_ADMIN to deliver)")}
                      Heartbeat         : every {settings.Heartbeat.Interval.TotalSeconds:0} s, first in {settings.Heartbeat.InitialDelay.TotalSeconds:0} s
                      One-off report    : set -a; . {envFile}; set +a; dotnet run --project src/ClawKeeper.Host -- check --once --json
                    Ctrl+C stops the node and the database.

                    """);

                using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                if (parse.GetValue(stopAfter) is { } seconds) stop.CancelAfter(TimeSpan.FromSeconds(seconds));
                try
                {
                    await Task.Delay(Timeout.Infinite, stop.Token);
                }
                catch (OperationCanceledException)
                {
                    // Ctrl+C or --stop-after: shut down below.
                }
                Console.Out.WriteLine("Stopping the demo node ...");
                await host.StopAsync(CancellationToken.None);
            }
            finally
            {
                Console.Out.WriteLine("Stopping the demo PostgreSQL ...");
                await server.StopAsync();
                await Log.CloseAndFlushAsync();
            }
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>
    /// Writes <paramref name="text"/> to a file CREATED with mode 600 (never readable by others, not even
    /// between creation and a chmod); a file already there is removed first so its old mode does not carry over.
    /// </summary>
    public static async Task WritePrivateFileAsync(string path, string text, CancellationToken cancellationToken)
    {
        File.Delete(path);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        await using var stream = new FileStream(path, options);
        await using var writer = new StreamWriter(stream);
        await writer.WriteAsync(text.AsMemory(), cancellationToken);
    }
}
