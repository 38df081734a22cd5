using ClawKeeper.Actors.Checks.DataIntegrity;
using ClawKeeper.Platform.WriteBlocks;
using Npgsql;

namespace ClawKeeper.Actors.Heartbeat;

/// <summary>What reconciling the supervisor's write block with the database did.</summary>
public sealed record WriteBlockOutcome(IReadOnlyList<IHeartbeatEvent> Events, IReadOnlyList<ActionReport> Actions);

/// <summary>Carries out the block-writes action against the database.</summary>
public interface IWriteBlockGuard
{
    /// <summary>
    /// Brings the database in line with the supervisor: imposes a block for a new failure,
    /// re-applies a held block the database lost (outage), and notices a block a super_admin
    /// lifted. Never throws: an unreachable database leaves the block held for the next round.
    /// </summary>
    Task<WriteBlockOutcome> ReconcileAsync(WriteBlockState current, IntegrityFailure? failure, DateTimeOffset now, CancellationToken cancellationToken);
}

/// <summary>The guard for the platform database (<see cref="WriteBlockStore"/>: <c>write_blocks</c> + triggers).</summary>
public sealed class PlatformWriteBlockGuard : IWriteBlockGuard
{
    public const string ImposedBy = "clawkeeper-heartbeat";

    private readonly WriteBlockStore _store;
    private readonly NpgsqlDataSource _platform;

    public PlatformWriteBlockGuard(NpgsqlDataSource platform)
    {
        _platform = platform;
        _store = new WriteBlockStore(platform);
    }

    public async Task<WriteBlockOutcome> ReconcileAsync(WriteBlockState current, IntegrityFailure? failure, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var events = new List<IHeartbeatEvent>();
        var actions = new List<ActionReport>();
        var held = current;

        WriteBlockStatus status;
        try
        {
            status = await _store.StatusAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException)
        {
            if (failure is not null && !held.Active)
            {
                events.Add(new WriteBlockImposed(failure.Reason, failure.Checks, now));
                actions.Add(new ActionReport("block_writes", failure.Reason,
                    $"held by the supervisor; the database is unreachable ({ex.Message}): applied as soon as it returns"));
            }
            else if (held.Active)
                actions.Add(new ActionReport("block_writes", held.Reason ?? "", $"in force in the supervisor; database unreachable ({ex.Message}): re-checked next round"));
            return new WriteBlockOutcome(events, actions);
        }

        try
        {
            if (held is { Active: true, BlockId: { } blockId })
            {
                var row = status.Find(blockId);
                if (status.Open?.Id == blockId)
                {
                    // Still in force.
                }
                else if (row is { LiftedAt: { } liftedAt })
                {
                    events.Add(new WriteBlockLifted(blockId, row.LiftedBy ?? "unknown", row.LiftReason ?? "", liftedAt));
                    actions.Add(new ActionReport("write_block_lifted", $"write block #{blockId} lifted by {row.LiftedBy}: {row.LiftReason}", "observed"));
                    held = WriteBlockState.None;
                }
                else if (status.Open is { } other)
                {
                    events.Add(new WriteBlockApplied(other.Id));
                    held = held with { BlockId = other.Id };
                }
                else
                {
                    var id = await _store.ImposeAsync(held.Reason ?? "integrity failure", ImposedBy, cancellationToken).ConfigureAwait(false);
                    events.Add(new WriteBlockApplied(id));
                    actions.Add(new ActionReport("block_writes", $"write block #{blockId} vanished from write_blocks; re-imposed as #{id}", "done"));
                    held = held with { BlockId = id };
                }
            }
            else if (held.AwaitingDatabase)
            {
                var id = status.Open?.Id ?? await _store.ImposeAsync(held.Reason ?? "integrity failure", ImposedBy, cancellationToken).ConfigureAwait(false);
                events.Add(new WriteBlockApplied(id));
                actions.Add(new ActionReport("block_writes", held.Reason ?? "", $"re-applied after the database returned: write block #{id}"));
                held = held with { BlockId = id };
            }

            if (failure is not null)
            {
                if (!held.Active)
                {
                    var id = await _store.ImposeAsync(failure.Reason, ImposedBy, cancellationToken).ConfigureAwait(false);
                    events.Add(new WriteBlockImposed(failure.Reason, failure.Checks, now));
                    events.Add(new WriteBlockApplied(id));
                    actions.Add(new ActionReport("block_writes", failure.Reason, $"done: write block #{id}; the financial tables refuse writes"));
                }
                else
                {
                    actions.Add(new ActionReport("block_writes", failure.Reason, $"already in force since {held.Since:u} (write block #{held.BlockId})"));
                }
            }
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException)
        {
            if (failure is not null && !held.Active)
                events.Add(new WriteBlockImposed(failure.Reason, failure.Checks, now));
            actions.Add(new ActionReport("block_writes", failure?.Reason ?? held.Reason ?? "",
                $"held by the supervisor; writing write_blocks failed ({ex.Message}): retried next round"));
        }

        actions.AddRange(await VerifyTriggersAsync(cancellationToken).ConfigureAwait(false));
        return new WriteBlockOutcome(events, actions);
    }

    /// <summary>
    /// Every round: the guard's triggers must still be ENABLE ALWAYS on every books table (DISABLE, ENABLE
    /// REPLICA or a plain ENABLE would let a replica-mode session, or everyone, write through a block). One
    /// that is not is put back to ALWAYS (the platform role owns the tables) and reported; what cannot be put
    /// back (a dropped trigger, no privilege) is reported as NOT ENFORCED. Nothing is reported when all is well.
    /// </summary>
    private async Task<IReadOnlyList<ActionReport>> VerifyTriggersAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await _platform.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            var problems = await EnforcementTriggers.ProblemsAsync(connection, EnforcementTriggers.WriteBlockGuard, includeOthers: false, cancellationToken).ConfigureAwait(false);
            if (problems.Count == 0) return [];

            var restored = new List<string>();
            var refused = new List<string>();
            var notAlways = new List<(string Table, string Trigger)>();
            await using (var command = new NpgsqlCommand("""
                select c.relname::text, t.tgname::text from pg_trigger t join pg_class c on c.oid = t.tgrelid
                where c.relnamespace = 'public'::regnamespace and c.relname = any(@tables) and t.tgname = any(@triggers) and t.tgenabled <> 'A'
                order by 1, 2
                """, connection))
            {
                command.Parameters.AddWithValue("tables", EnforcementTriggers.BooksTables.ToArray());
                command.Parameters.AddWithValue("triggers", EnforcementTriggers.WriteBlockGuard.Select(e => e.Trigger).Distinct().ToArray());
                await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) notAlways.Add((reader.GetString(0), reader.GetString(1)));
            }
            foreach (var (table, trigger) in notAlways)
            {
                try
                {
                    await using var alter = new NpgsqlCommand($"alter table public.\"{table}\" enable always trigger \"{trigger}\"", connection);
                    await alter.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    restored.Add($"{table}.{trigger}");
                }
                catch (PostgresException ex)
                {
                    refused.Add($"{table}.{trigger}: {ex.MessageText}");
                }
            }

            var after = await EnforcementTriggers.ProblemsAsync(connection, EnforcementTriggers.WriteBlockGuard, includeOthers: false, cancellationToken).ConfigureAwait(false);
            var outcome = after.Count == 0
                ? $"restored: {string.Join(", ", restored)} ENABLE ALWAYS again"
                : $"NOT ENFORCED: {string.Join("; ", after)}" + (restored.Count > 0 ? $" (restored {string.Join(", ", restored)})" : "") +
                  (refused.Count > 0 ? $" (could not restore {string.Join("; ", refused)})" : "");
            return [new ActionReport("write_block_triggers", "the write-block guard was switched off: " + string.Join("; ", problems), outcome)];
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException)
        {
            return [new ActionReport("write_block_triggers", "the write-block guard's triggers could not be verified", $"database unreachable ({ex.Message}): re-checked next round")];
        }
    }
}
