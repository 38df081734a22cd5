using System.CommandLine;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Host.Ops;
using ClawKeeper.Platform.WriteBlocks;
using Npgsql;

namespace ClawKeeper.Host.Cli;

/// <summary><c>writes status</c> and <c>writes unblock --reason TEXT [--force]</c>.</summary>
public static class WritesCommands
{
    public static Command Build()
    {
        var writes = new Command("writes", "The write block on the financial tables (imposed by the heartbeat on an integrity failure).");

        var status = new Command("status", "Show the open write block, if any, and the recent ones.");
        status.SetAction(async (parse, cancellationToken) =>
        {
            var (_, settings) = ClawKeeperCli.LoadSettings(parse);
            await using var platform = NpgsqlDataSource.Create(settings.PlatformConnectionString);
            var current = await new WriteBlockStore(platform).StatusAsync(cancellationToken: cancellationToken);
            Console.Out.WriteLine(current.Open is { } open
                ? $"WRITES BLOCKED: write block #{open.Id} since {open.ImposedAt:u} by {open.ImposedBy}: {open.Reason}"
                : "Writes are open: no write block is in force.");
            foreach (var row in current.Recent.Where(r => !r.IsOpen).Take(5))
                Console.Out.WriteLine($"  #{row.Id} {row.ImposedAt:u} .. {row.LiftedAt:u} lifted by {row.LiftedBy}: {row.LiftReason} (reason: {row.Reason})");
            return ExitCodes.Ok;
        });

        var reason = new Option<string>("--reason") { Description = "Why the block can be lifted (recorded in write_blocks and the audit trail)", Required = true };
        var force = new Option<bool>("--force") { Description = "Lift even though the integrity failure is still present (e.g. to let a repair write); the next heartbeat blocks again while it persists" };
        var tokenFile = new Option<FileInfo?>("--token-file") { Description = $"File holding the super_admin token (default: ${SuperAdminCredential.TokenVariable})" };
        var operatorName = new Option<string?>("--operator") { Description = "Who lifts the block (default: the OS user)" };
        var adminDbFile = new Option<FileInfo?>("--admin-db-file") { Description = $"File holding super_admin's own database connection string, used for the lift only (default: ${WriteUnblock.AdminVariable}; the monitoring role cannot lift)" };
        var unblock = new Command("unblock", "Lift the write block (super_admin credential required; refused while the integrity failure persists unless --force).")
        {
            reason, force, tokenFile, operatorName, adminDbFile,
        };
        unblock.SetAction(async (parse, cancellationToken) =>
        {
            var (config, settings) = ClawKeeperCli.LoadSettings(parse);
            var why = parse.GetValue(reason)!.Trim();
            if (why.Length == 0)
            {
                Console.Error.WriteLine("error: --reason must say why the block can be lifted");
                return ExitCodes.UsageOrConfiguration;
            }
            await using var platform = NpgsqlDataSource.Create(settings.PlatformConnectionString);
            var refusal = SuperAdminCredential.Refusal(settings.Security, SuperAdminCredential.Read(parse.GetValue(tokenFile)));
            if (refusal is not null)
            {
                await WriteUnblock.RecordRefusedAttemptAsync(platform, "cli:writes-unblock", refusal, "os:" + Environment.UserName, cancellationToken);
                Console.Error.WriteLine($"refused: {refusal}");
                return ExitCodes.UsageOrConfiguration;
            }

            // One implementation with POST /writes/unblock on the ops port.
            var liftedBy = "super_admin:" + (parse.GetValue(operatorName) ?? Environment.UserName);
            string? adminConnection;
            if (parse.GetValue(adminDbFile) is { } file)
            {
                try
                {
                    adminConnection = (await File.ReadAllTextAsync(file.FullName, cancellationToken)).Trim();
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    Console.Error.WriteLine($"error: --admin-db-file: cannot read {file.FullName}: {e.Message}");
                    return ExitCodes.UsageOrConfiguration;
                }
                if (adminConnection.Length == 0)
                {
                    Console.Error.WriteLine($"error: --admin-db-file: {file.FullName} is empty (it must hold super_admin's database connection string)");
                    return ExitCodes.UsageOrConfiguration;
                }
            }
            else adminConnection = WriteUnblock.AdminConnectionStringFromEnvironment();
            NpgsqlDataSource? admin;
            try
            {
                admin = adminConnection is null ? null : NpgsqlDataSource.Create(adminConnection);
            }
            catch (ArgumentException)
            {
                // Never echo the value: it holds a password.
                Console.Error.WriteLine($"error: {(parse.GetValue(adminDbFile) is null ? WriteUnblock.AdminVariable : "--admin-db-file")}: not a valid PostgreSQL connection string");
                return ExitCodes.UsageOrConfiguration;
            }
            await using var adminSource = admin;
            // The heartbeat's verified positions come from its journal (the node's and check --once's supervisors).
            var outcome = await new WriteUnblock(platform, settings.DataIntegrity, admin, ct => Node.JournalAnchors.ReadAsync(config, settings, ct))
                .LiftAsync(liftedBy, why, parse.GetValue(force), cancellationToken);
            switch (outcome.Result)
            {
                case UnblockResult.NothingOpen when outcome.Block is null:
                    Console.Error.WriteLine("No write block is open: nothing to lift.");
                    return ExitCodes.ChecksFailed;
                case UnblockResult.NothingOpen:
                    Console.Out.WriteLine("No write block was open (lifted concurrently?).");
                    return ExitCodes.ChecksFailed;
                case UnblockResult.NotPermitted:
                    Console.Error.WriteLine("refused: " + WriteUnblock.NotPermittedProblem(admin is not null));
                    return ExitCodes.UsageOrConfiguration;
                case UnblockResult.StillFailing:
                    Console.Error.WriteLine($"refused: the integrity failure is still present, write block #{outcome.Block!.Id} stays:");
                    foreach (var check in outcome.Failing) Console.Error.WriteLine($"  {check.Check} ({check.Status.ToWire()}): {check.Observed}: {check.Detail}");
                    Console.Error.WriteLine("Repair it first, or lift with --force (the next heartbeat blocks again while it persists).");
                    return ExitCodes.ChecksFailed;
                default:
                    Console.Out.WriteLine($"write block #{outcome.LiftedId} lifted by {outcome.LiftedBy}: {outcome.LiftReason}");
                    return ExitCodes.Ok;
            }
        });

        writes.Subcommands.Add(status);
        writes.Subcommands.Add(unblock);
        return writes;
    }
}
