using Akka.Actor;

namespace ClawKeeper.Actors.Checks;

/// <summary>
/// One check group (<c>checks/system-health</c>, ...): runs its checks concurrently on
/// <see cref="RunCheckGroup"/> (all, or the subset it names) and answers the asker with a <see cref="GroupResult"/>.
/// </summary>
public sealed class CheckGroupActor : ReceiveActor
{
    public CheckGroupActor(string group, IReadOnlyList<IPlatformCheck> checks)
    {
        Receive<RunCheckGroup>(run =>
        {
            var replyTo = Sender;
            var selected = checks.Where(c => run.Includes(group, c.Id)).ToList();
            CheckRunner.RunAllAsync(selected, run.Context, CancellationToken.None)
                .PipeTo(replyTo,
                    success: results => new GroupResult(group, run.Context.HeartbeatId, results),
                    failure: ex => new GroupResult(group, run.Context.HeartbeatId,
                        selected.Select(c => new CheckResult(c.Id, CheckStatus.Error, "not evaluated", "evaluated", $"group runner failed: {ex.GetBaseException().Message}", 0)).ToList()));
        });
    }

    public static Props Props(string group, IReadOnlyList<IPlatformCheck> checks) =>
        Akka.Actor.Props.Create(() => new CheckGroupActor(group, checks));
}
