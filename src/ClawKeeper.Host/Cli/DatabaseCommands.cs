using System.CommandLine;
using ClawKeeper.Platform;
using ClawKeeper.Platform.Schema;
using ClawKeeper.Platform.Seeding;

namespace ClawKeeper.Host.Cli;

/// <summary><c>db migrate</c> and <c>db seed-demo</c> against the configured platform database.</summary>
public static class DatabaseCommands
{
    public static Command Build()
    {
        var db = new Command("db", "Platform database: schema and demo data.");

        var migrate = new Command("migrate", "Apply the platform schema (idempotent: applied migrations are skipped).");
        migrate.SetAction(async (parse, cancellationToken) =>
        {
            var (_, settings) = ClawKeeperCli.LoadSettings(parse);
            var result = await PlatformMigrator.MigrateAsync(settings.PlatformConnectionString, cancellationToken);
            Console.Out.WriteLine($"{ConnectionStrings.Describe(settings.PlatformConnectionString)}: {result.Applied.Count} migration(s) applied" +
                (result.Applied.Count > 0 ? $" ({string.Join(", ", result.Applied)})" : "") +
                $", {result.AlreadyApplied.Count} already applied");
            return ExitCodes.Ok;
        });

        var seed = new Command("seed-demo", "Seed a consistent demo platform (every check passes on it). Does nothing if already seeded.");
        seed.SetAction(async (parse, cancellationToken) =>
        {
            var (_, settings) = ClawKeeperCli.LoadSettings(parse);
            var result = await DemoSeeder.SeedAsync(settings.PlatformConnectionString, cancellationToken);
            Console.Out.WriteLine(result.AlreadySeeded
                ? $"{ConnectionStrings.Describe(settings.PlatformConnectionString)}: already seeded, nothing changed"
                : $"{ConnectionStrings.Describe(settings.PlatformConnectionString)}: seeded {result.Tenants} tenants, {result.Tasks} tasks, {result.AuditEntries} audit entries, {result.JournalLines} journal lines");
            return ExitCodes.Ok;
        });

        db.Subcommands.Add(migrate);
        db.Subcommands.Add(seed);
        return db;
    }
}
