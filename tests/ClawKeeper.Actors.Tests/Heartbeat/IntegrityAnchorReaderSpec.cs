using System.Collections.Immutable;
using Akka.Actor;
using Akka.Persistence;
using ClawKeeper.Actors.Checks.DataIntegrity;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Actors.Heartbeat.Journal;
using Xunit;

namespace ClawKeeper.Actors.Tests.Heartbeat;

/// <summary>The anchor reader recovers the verified positions the heartbeat's journal wrote, its snapshots included.</summary>
public class IntegrityAnchorReaderSpec : Akka.TestKit.Xunit2.TestKit
{
    public IntegrityAnchorReaderSpec() : base("""
        akka.persistence.journal.plugin = "akka.persistence.journal.inmem"
        akka.persistence.snapshot-store.plugin = "akka.persistence.snapshot-store.inmem"
        """)
    {
    }

    [Fact]
    public void Positions_behind_a_journal_snapshot_are_read()
    {
        var positions = IntegrityWatermarks.None with
        {
            Audit = ImmutableDictionary<string, AuditPosition>.Empty.Add("t-acme-bakery", new AuditPosition(42, new string('a', 64))),
            LedgerLineId = 7,
        };
        var report = new HeartbeatReport("heartbeat-1", DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch, HeartbeatStatus.Pass, 0,
            new WriteBlockReport(false), Array.Empty<GroupReport>(), Array.Empty<ActionReport>(), Array.Empty<AlertReport>());

        // The journal snapshots after every heartbeat here: the positions are in its snapshot, no event is replayed after it.
        var parent = CreateTestProbe();
        var journal = parent.ChildActorOf(HeartbeatJournal.Props("anchors", 1));
        parent.ExpectMsg<JournalRecovered>();
        journal.Tell(new PersistBatch(1, new IHeartbeatEvent[] { new IntegrityVerified(positions), new HeartbeatRecorded(report) }, null), parent);
        parent.ExpectMsg<BatchPersisted>();
        var snapshots = Persistence.Instance.Apply(Sys).SnapshotStoreFor(null);
        AwaitAssert(() =>
        {
            snapshots.Tell(new LoadSnapshot("anchors", SnapshotSelectionCriteria.Latest, long.MaxValue));
            Assert.IsType<HeartbeatJournalSnapshot>(ExpectMsg<LoadSnapshotResult>().Snapshot?.Snapshot);
        });

        var reader = Sys.ActorOf(IntegrityAnchorReader.Props("anchors"));
        reader.Tell(GetRecoveredAnchors.Instance);
        var read = ExpectMsg<IntegrityWatermarks>();
        Assert.Equal(42, read.Audit["t-acme-bakery"].Seq);
        Assert.Equal(7, read.LedgerLineId);
    }
}
