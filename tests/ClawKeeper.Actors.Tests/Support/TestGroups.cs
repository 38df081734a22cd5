using System.Collections.Concurrent;
using Akka.Actor;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;

namespace ClawKeeper.Actors.Tests.Support;

/// <summary>A check group whose outcome the test sets; it tells a probe each time it is asked to run.</summary>
public sealed class ScriptedGroupActor : ReceiveActor
{
    public ScriptedGroupActor(string group, IReadOnlyList<string> checkIds, Func<CheckStatus> status, IActorRef? observer, bool answer)
    {
        Receive<RunCheckGroup>(run =>
        {
            observer?.Tell(run);
            if (!answer) return;
            var now = status();
            Sender.Tell(new GroupResult(group, run.Context.HeartbeatId,
                checkIds.Select(c => new CheckResult(c, now, $"scripted {now}", "scripted", "scripted by the test", 1)).ToList()));
        });
    }
}

public static class TestGroups
{
    public static CheckGroupDefinition Scripted(string group, Func<CheckStatus> status, IActorRef? observer = null) =>
        new(group, new[] { group + "_check" }, _ => Props.Create(() => new ScriptedGroupActor(group, new[] { group + "_check" }, status, observer, true)));

    public static CheckGroupDefinition Silent(string group, IActorRef observer) =>
        new(group, new[] { group + "_a", group + "_b" }, _ => Props.Create(() => new ScriptedGroupActor(group, Array.Empty<string>(), () => CheckStatus.Pass, observer, false)));
}

/// <summary>Stands in for agent_runs where the database is not the subject; can be made to fail.</summary>
public sealed class RecordingRunLog : IHeartbeatRunLog
{
    public ConcurrentQueue<HeartbeatReport> Written { get; } = new();
    public volatile bool Down;

    public Task<IReadOnlyList<string>> RecordAsync(IReadOnlyList<HeartbeatReport> reports, CancellationToken cancellationToken)
    {
        if (Down) return Task.FromException<IReadOnlyList<string>>(new InvalidOperationException("database is down"));
        foreach (var report in reports)
            if (Written.All(w => w.Id != report.Id)) Written.Enqueue(report);
        return Task.FromResult<IReadOnlyList<string>>(reports.Select(r => r.Id).ToList());
    }
}

/// <summary>A write-block guard whose database can be "down"; it records what it was asked.</summary>
public sealed class ScriptedWriteBlockGuard : IWriteBlockGuard
{
    public volatile bool Down;
    private long _nextId;

    public int Calls;

    public Task<WriteBlockOutcome> ReconcileAsync(WriteBlockState current, IntegrityFailure? failure, DateTimeOffset now, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref Calls);
        var events = new List<IHeartbeatEvent>();
        if (failure is not null && !current.Active) events.Add(new WriteBlockImposed(failure.Reason, failure.Checks, now));
        if (!Down && (current.AwaitingDatabase || (failure is not null && !current.Active)))
            events.Add(new WriteBlockApplied(Interlocked.Increment(ref _nextId)));
        return Task.FromResult(new WriteBlockOutcome(events, Array.Empty<ActionReport>()));
    }
}
