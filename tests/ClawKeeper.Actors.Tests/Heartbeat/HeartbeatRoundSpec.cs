using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;
using Xunit;

namespace ClawKeeper.Actors.Tests.Heartbeat;

public class HeartbeatRoundSpec
{
    private static readonly IReadOnlyList<ExpectedGroup> Expected = new[]
    {
        new ExpectedGroup("system_health", new[] { "api_server_responding", "database_connection" }),
        new ExpectedGroup("task_queue", new[] { "queue_depth" }),
    };

    private static GroupResult Result(string group, string heartbeatId, params (string Check, CheckStatus Status)[] checks) =>
        new(group, heartbeatId, checks.Select(c => new CheckResult(c.Check, c.Status, "o", "t", "d", 3)).ToList());

    [Fact]
    public void Completes_when_every_group_answered_and_ignores_strangers()
    {
        var round = HeartbeatRound.Start("hb-1", DateTimeOffset.UnixEpoch, Expected, dryRun: false);
        round = round.With(Result("task_queue", "hb-0", ("queue_depth", CheckStatus.Fail))); // an older heartbeat's answer
        round = round.With(Result("data_integrity", "hb-1", ("x", CheckStatus.Pass)));       // not expected
        Assert.Empty(round.Received);

        round = round.With(Result("task_queue", "hb-1", ("queue_depth", CheckStatus.Pass)));
        Assert.False(round.IsComplete);
        round = round.With(Result("system_health", "hb-1", ("database_connection", CheckStatus.Pass), ("api_server_responding", CheckStatus.Skipped)));
        Assert.True(round.IsComplete);

        var groups = round.Close(TimeSpan.FromSeconds(30));
        Assert.Equal(new[] { "system_health", "task_queue" }, groups.Select(g => g.Group));
        Assert.Equal(new[] { "api_server_responding", "database_connection" }, groups[0].Checks.Select(c => c.Check)); // table order
    }

    [Fact]
    public void A_group_that_did_not_answer_is_reported_check_by_check_as_error()
    {
        var round = HeartbeatRound.Start("hb-1", DateTimeOffset.UnixEpoch, Expected, dryRun: false)
            .With(Result("task_queue", "hb-1", ("queue_depth", CheckStatus.Pass)));
        var groups = round.Close(TimeSpan.FromSeconds(30));
        var silent = groups.Single(g => g.Group == "system_health");
        Assert.Equal(CheckStatus.Error, silent.Status);
        Assert.Equal(new[] { "api_server_responding", "database_connection" }, silent.Checks.Select(c => c.Check));
        Assert.All(silent.Checks, c => Assert.Contains("did not answer within 30000 ms", c.Detail));
    }
}
