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

    public PlatformWriteBlockGuard(NpgsqlDataSource platform) => _store = new WriteBlockStore(platform);

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
        return new WriteBlockOutcome(events, actions);
    }
}
