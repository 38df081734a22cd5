using System.Collections.Immutable;
using ClawKeeper.Actors.Serialization;

namespace ClawKeeper.Actors.Heartbeat.Journal;

/// <summary>
/// Persisted by <see cref="HeartbeatJournal"/> in the same atomic write as the events of a spooled batch:
/// the journal holds every batch of spool <paramref name="SpoolId"/> up to <paramref name="UpToSeq"/>, so a
/// batch still in the spool at or below it (the spool was not yet trimmed when the node stopped) is never written twice.
/// </summary>
public sealed record SpoolReconciled(string SpoolId, long UpToSeq) : IClawKeeperMessage;

/// <summary>The journal's snapshot: the heartbeat state and how far each spool was reconciled (reads the older plain <see cref="HeartbeatState"/> too).</summary>
public sealed record HeartbeatJournalSnapshot(HeartbeatState State, ImmutableDictionary<string, long> SpoolMarks) : IClawKeeperMessage
{
    /// <summary>The state in a heartbeat snapshot of either shape (this one, or the older plain state); null for anything else.</summary>
    public static HeartbeatState? StateOf(object snapshot) => snapshot switch
    {
        HeartbeatJournalSnapshot journal => journal.State,
        HeartbeatState state => state,
        _ => null,
    };
}

/// <summary>The journal recovered: the state it holds and the spool marks (sent to the parent supervisor).</summary>
internal sealed record JournalRecovered(HeartbeatState State, ImmutableDictionary<string, long> SpoolMarks);

/// <summary>Persist these events atomically (with a <see cref="SpoolReconciled"/> marker when <paramref name="SpoolId"/> is set); answered with <see cref="BatchPersisted"/>.</summary>
internal sealed record PersistBatch(long UpToSeq, IReadOnlyList<IHeartbeatEvent> Events, string? SpoolId);

/// <summary>The batch is in the journal; <paramref name="State"/> is the journal's state after it.</summary>
internal sealed record BatchPersisted(long UpToSeq, HeartbeatState State);
