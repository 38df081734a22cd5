using System.Collections.Immutable;
using Akka.Actor;
using Akka.Event;
using Akka.Persistence;

namespace ClawKeeper.Actors.Heartbeat.Journal;

/// <summary>
/// The heartbeat's store, a child of <see cref="HeartbeatSupervisor"/>: recovers the state under the
/// supervisor's persistence id and tells the parent, then persists the batches it is handed (one atomic
/// write each) and answers when they are stored. A storage problem stops this actor (Akka.Persistence's
/// own rule for a failed persist or recovery), never the supervisor, which watches it, keeps working from
/// memory and its local spool, and starts a new one with backoff.
/// </summary>
public sealed class HeartbeatJournal : ReceivePersistentActor
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly int _snapshotEvery;
    private HeartbeatState _state = HeartbeatState.Empty;
    private ImmutableDictionary<string, long> _marks = ImmutableDictionary<string, long>.Empty;

    public HeartbeatJournal(string persistenceId, int snapshotEvery)
    {
        PersistenceId = persistenceId;
        _snapshotEvery = Math.Max(1, snapshotEvery);

        Recover<SnapshotOffer>(offer =>
        {
            _state = HeartbeatJournalSnapshot.StateOf(offer.Snapshot) ?? _state;
            if (offer.Snapshot is HeartbeatJournalSnapshot snapshot) _marks = snapshot.SpoolMarks;
        });
        Recover<SpoolReconciled>(Mark);
        Recover<IHeartbeatEvent>(e => _state = _state.Apply(e));
        Recover<RecoveryCompleted>(_ => Context.Parent.Tell(new JournalRecovered(_state, _marks)));

        Command<PersistBatch>(batch =>
        {
            var replyTo = Sender;
            var events = new List<object>(batch.Events);
            if (batch.SpoolId is not null) events.Add(new SpoolReconciled(batch.SpoolId, batch.UpToSeq));
            var remaining = events.Count;
            var snapshotDue = false;
            PersistAll(events, e =>
            {
                if (e is SpoolReconciled marker) Mark(marker);
                else if (e is IHeartbeatEvent heartbeatEvent)
                {
                    _state = _state.Apply(heartbeatEvent);
                    snapshotDue |= heartbeatEvent is HeartbeatRecorded && _state.HeartbeatsRecorded % _snapshotEvery == 0;
                }
                if (--remaining > 0) return;
                replyTo.Tell(new BatchPersisted(batch.UpToSeq, _state));
                if (snapshotDue) SaveSnapshot(new HeartbeatJournalSnapshot(_state, _marks));
            });
        });
        Command<SaveSnapshotSuccess>(s => DeleteSnapshots(new SnapshotSelectionCriteria(s.Metadata.SequenceNr - 1)));
        Command<SaveSnapshotFailure>(f => _log.Warning("Heartbeat snapshot failed: {Reason}", f.Cause.Message));
        Command<DeleteSnapshotsSuccess>(_ => { });
        Command<DeleteSnapshotsFailure>(f => _log.Warning("Deleting old heartbeat snapshots failed: {Reason}", f.Cause.Message));
    }

    public override string PersistenceId { get; }

    public static Props Props(string persistenceId, int snapshotEvery) =>
        Akka.Actor.Props.Create(() => new HeartbeatJournal(persistenceId, snapshotEvery));

    private void Mark(SpoolReconciled marker) =>
        _marks = _marks.SetItem(marker.SpoolId, Math.Max(marker.UpToSeq, _marks.GetValueOrDefault(marker.SpoolId)));

    protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr)
    {
        // Not stored and never will be as it is: stop, so the supervisor keeps the batch in its spool and says so.
        _log.Error(cause, "Heartbeat journal rejected {EventType} (seq {SequenceNr}); the batch stays in the local spool", @event.GetType().Name, sequenceNr);
        Context.Stop(Self);
    }
}
