using Akka.Actor;
using Akka.Persistence;
using ClawKeeper.Actors.Checks.DataIntegrity;
using ClawKeeper.Actors.Heartbeat.Journal;

namespace ClawKeeper.Actors.Heartbeat;

/// <summary>Asks an <see cref="IntegrityAnchorReader"/> for the watermarks it recovered.</summary>
public sealed record GetRecoveredAnchors
{
    public static readonly GetRecoveredAnchors Instance = new();
}

/// <summary>
/// Reads a heartbeat supervisor's verified positions from the journal without being that supervisor:
/// recovers its snapshot and events into a <see cref="HeartbeatState"/>, answers one
/// <see cref="GetRecoveredAnchors"/> with the watermarks, and stops. It never persists, so it can run
/// beside the live supervisor (on a node) or in another process (<c>writes unblock</c>).
/// </summary>
public sealed class IntegrityAnchorReader : ReceivePersistentActor
{
    private HeartbeatState _state = HeartbeatState.Empty;

    public IntegrityAnchorReader(string persistenceId)
    {
        PersistenceId = persistenceId;
        // The journal's snapshots (HeartbeatJournal) wrap the state with the spool marks; older ones are the plain state.
        Recover<SnapshotOffer>(offer => _state = HeartbeatJournalSnapshot.StateOf(offer.Snapshot) ?? _state);
        Recover<IHeartbeatEvent>(e => _state = _state.Apply(e));
        Command<GetRecoveredAnchors>(_ =>
        {
            Sender.Tell(_state.Watermarks);
            Context.Stop(Self);
        });
    }

    public override string PersistenceId { get; }

    public static Props Props(string persistenceId) => Akka.Actor.Props.Create(() => new IntegrityAnchorReader(persistenceId));
}

/// <summary>The verified positions every persisted heartbeat supervisor of this journal holds (node and <c>check --once</c>).</summary>
public static class IntegrityAnchors
{
    /// <summary>
    /// Recovers the node's supervisor and the CLI's one-shot supervisor from the journal and merges their audit
    /// positions (<see cref="Merge"/>). Throws when the journal cannot be read within <paramref name="timeout"/>.
    /// </summary>
    public static async Task<IntegrityWatermarks> ReadAsync(ActorSystem system, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var read = new List<IntegrityWatermarks>();
        foreach (var persistenceId in new[] { HeartbeatSupervisorOptions.NodePersistenceId, HeartbeatSupervisorOptions.CliPersistenceId })
        {
            var reader = system.ActorOf(IntegrityAnchorReader.Props(persistenceId));
            try
            {
                read.Add(await reader.Ask<IntegrityWatermarks>(GetRecoveredAnchors.Instance, timeout, cancellationToken).ConfigureAwait(false));
            }
            catch (Exception ex) when (ex is AskTimeoutException or TaskCanceledException)
            {
                system.Stop(reader);
                throw new TimeoutException($"the verified positions of '{persistenceId}' could not be read from the journal within {timeout.TotalSeconds:0} s", ex);
            }
        }
        return read.Aggregate(IntegrityWatermarks.None, Merge);
    }

    /// <summary>
    /// Both sets of positions are verified claims about the same chains: per tenant the later position is kept
    /// (a chain rewritten below it changes its hash too). Positions of another database than the first set's are left out.
    /// </summary>
    public static IntegrityWatermarks Merge(IntegrityWatermarks first, IntegrityWatermarks second)
    {
        if (first.IsEmpty) return second;
        if (second.IsEmpty || (second.PlatformFingerprint is not null && first.PlatformFingerprint is not null && second.PlatformFingerprint != first.PlatformFingerprint))
            return first;
        var audit = first.Audit;
        foreach (var (tenant, position) in second.Audit)
            if (!audit.TryGetValue(tenant, out var mine) || position.Seq > mine.Seq)
                audit = audit.SetItem(tenant, position);
        return first with { Audit = audit, PlatformFingerprint = first.PlatformFingerprint ?? second.PlatformFingerprint };
    }
}
