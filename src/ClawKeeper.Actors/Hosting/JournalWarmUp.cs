using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using Akka.Persistence;

namespace ClawKeeper.Actors.Hosting;

/// <summary>
/// Recovers a persistence id that is never written, then stops: the journal and snapshot plugins start,
/// their database connections open and their queries are compiled on every node at start, not when the
/// node takes the heartbeat singleton over (measured: a cold recovery took 4–7 s on a busy 2-core box,
/// a warm one a fraction of a second). Read-only, so any number of nodes may run it at once.
/// </summary>
public sealed class JournalWarmUp : ReceivePersistentActor
{
    public const string WarmUpPersistenceId = "clawkeeper-journal-warm-up";

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    public JournalWarmUp()
    {
        Recover<RecoveryCompleted>(_ =>
        {
            _log.Info("Journal warmed up in {ElapsedMs} ms", _clock.ElapsedMilliseconds);
            Context.Stop(Self);
        });
        RecoverAny(_ => { });
        CommandAny(_ => { });
    }

    public override string PersistenceId => WarmUpPersistenceId;

    public static Props Props() => Akka.Actor.Props.Create(() => new JournalWarmUp());

    protected override void OnRecoveryFailure(Exception reason, object? message = null) =>
        // Not fatal: the heartbeat supervisor starts its journal child again with its own backoff (docs/never-silent.md).
        _log.Warning("Journal warm-up failed (the heartbeat supervisor will retry on its own): {Reason}", reason.Message);
}
