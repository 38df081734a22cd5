using System.CommandLine;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Hosting;
using ClawKeeper.Platform;
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
        var unblock = new Command("unblock", "Lift the write block (super_admin credential required; refused while the integrity failure persists unless --force).")
        {
            reason, force, tokenFile, operatorName,
        };
        unblock.SetAction(async (parse, cancellationToken) =>
        {
            var (_, settings) = ClawKeeperCli.LoadSettings(parse);
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
                await RecordRefusedAttemptAsync(platform, refusal, cancellationToken);
                Console.Error.WriteLine($"refused: {refusal}");
                return ExitCodes.UsageOrConfiguration;
            }

            var store = new WriteBlockStore(platform);
            var current = await store.StatusAsync(cancellationToken: cancellationToken);
            if (current.Open is null)
            {
                Console.Error.WriteLine("No write block is open: nothing to lift.");
                return ExitCodes.ChecksFailed;
            }

            // The block stays while the failure that caused it is still there.
            var context = new CheckContext("writes-unblock", DateTimeOffset.UtcNow, null, null, FullVerification: true);
            var results = await CheckRunner.RunAllAsync(HeartbeatComponents.DataIntegrity(platform, settings.DataIntegrity), context, cancellationToken);
            var failing = results.Where(r => r.Status == CheckStatus.Fail).ToList();
            var forced = parse.GetValue(force);
            if (failing.Count > 0 && !forced)
            {
                Console.Error.WriteLine($"refused: the integrity failure is still present, write block #{current.Open.Id} stays:");
                foreach (var check in failing) Console.Error.WriteLine($"  {check.Check}: {check.Observed}: {check.Detail}");
                Console.Error.WriteLine("Repair it first, or lift with --force (the next heartbeat blocks again while it persists).");
                return ExitCodes.ChecksFailed;
            }

            var liftedBy = "super_admin:" + (parse.GetValue(operatorName) ?? Environment.UserName);
            var liftReason = failing.Count > 0 ? $"[forced while failing: {string.Join(", ", failing.Select(f => f.Check))}] {why}" : why;
            var lifted = await store.LiftAsync(liftedBy, liftReason, cancellationToken);
            Console.Out.WriteLine(lifted is { } id
                ? $"write block #{id} lifted by {liftedBy}: {liftReason}"
                : "No write block was open (lifted concurrently?).");
            return lifted is null ? ExitCodes.ChecksFailed : ExitCodes.Ok;
        });

        writes.Subcommands.Add(status);
        writes.Subcommands.Add(unblock);
        return writes;
    }

    private static async Task RecordRefusedAttemptAsync(NpgsqlDataSource platform, string refusal, CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await platform.OpenConnectionAsync(cancellationToken);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            await using (var context = new NpgsqlCommand("select set_config('app.tenant_id', 'system', true)", connection, transaction))
                await context.ExecuteNonQueryAsync(cancellationToken);
            await using (var insert = new NpgsqlCommand(
                "insert into security_events (tenant_id, kind, source, detail) values ('system', 'unauthorized_access', 'cli:writes-unblock', jsonb_build_object('refusal', @refusal, 'os_user', @user))",
                connection, transaction))
            {
                insert.Parameters.AddWithValue("refusal", refusal);
                insert.Parameters.AddWithValue("user", Environment.UserName);
                await insert.ExecuteNonQueryAsync(cancellationToken);
            }
            await transaction.CommitAsync(cancellationToken);
        }
        catch (NpgsqlException)
        {
            // The refusal itself stands; recording it is best effort when the database is down.
        }
    }
}
