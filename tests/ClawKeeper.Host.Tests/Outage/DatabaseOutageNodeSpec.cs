using System.Globalization;
using System.Text.RegularExpressions;
using ClawKeeper.Testing;
using Xunit;
using Xunit.Abstractions;

namespace ClawKeeper.Host.Tests.Outage;

/// <summary>
/// Issue 11, item 2 ("never silent"), end to end: the PostgreSQL server that holds the platform database and the
/// journal of a real <c>clawkeeper run</c> node is stopped for several heartbeats (retry interval of seconds).
/// super_admin's e-mail and Discord message must arrive DURING the outage and say that the database/journal is
/// unreachable; when the server is back the resolved notice goes out, every heartbeat of the outage is in
/// <c>agent_runs</c> (failed) and the consecutive-failure count is right; a node killed (SIGKILL) during the
/// outage and started again loses nothing and doubles nothing. Timings are printed, never asserted.
/// </summary>
[Trait("Category", "Outage")]
public sealed class DatabaseOutageNodeSpec(ITestOutputHelper output)
{
    [Fact]
    public async Task A_stopped_database_server_reaches_super_admin_during_the_outage_and_every_heartbeat_of_it_is_written_when_it_returns()
    {
        await using var s = await DatabaseOutageScenario.StartAsync(heartbeatInterval: TimeSpan.FromSeconds(10), retryInterval: TimeSpan.FromSeconds(2));
        try
        {
            var baseline = await HealthyAsync(s);

            var stop = await StopServerAsync(s);
            var (mail, discord) = await EscalationDuringOutageAsync(s, baseline);
            var outage = await FailedHeartbeatsDuringOutageAsync(s, baseline, stop, atLeast: 4);

            // Meanwhile the node says it is not ready, naming the journal ...
            var notReady = await s.WaitForAsync("GET /health/ready: 503 with journal_reachable failing", async () =>
            {
                try
                {
                    var (status, conditions) = await s.ReadinessAsync();
                    return status == System.Net.HttpStatusCode.ServiceUnavailable && conditions.Any(c => c.Condition == "journal_reachable" && !c.Ok)
                        ? string.Join("; ", conditions.Where(c => !c.Ok).Select(c => $"{c.Condition}: {c.Detail}"))
                        : null;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException or System.Text.Json.JsonException)
                {
                    return null;
                }
            });
            output.WriteLine($"GET /health/ready during the outage: 503 {notReady}");
            // ... while its dead-man metric goes on: the last completed heartbeat is one of the outage.
            var lastCompleted = await s.MetricAsync("clawkeeper_heartbeat_last_completed_timestamp_seconds");
            var stoppedAt = new DateTimeOffset(stop.Utc).ToUnixTimeMilliseconds() / 1000.0;
            output.WriteLine($"clawkeeper_heartbeat_last_completed_timestamp_seconds during the outage: {lastCompleted} (server stopped at {stoppedAt})");
            Assert.True(lastCompleted is { } completed && completed > stoppedAt,
                $"/metrics says the last heartbeat completed at {lastCompleted}, before the outage began\n{s.Context()}");

            var start = await StartServerAsync(s);
            var recovery = await RecoveryAsync(s, baseline, stop, start, outage);

            await AssertOneOfEachAsync(s, baseline, recovery);
            AssertEscalatedAtTheThirdFailure(s, mail, recovery);
            Print(s, stop, start, mail, discord, recovery);

            // The outage's state is reconciled into the journal: once the node says the journal is back and a heartbeat
            // went through it, a node started on the journal (its spool trimmed) recovers every heartbeat and the count.
            var back = await s.Node.WaitForLineAsync(l => l.Contains("Heartbeat journal is back", StringComparison.Ordinal), DatabaseOutageScenario.Generous)
                       ?? throw new Xunit.Sdk.XunitException($"the node never said its journal is back\n{s.Context()}");
            var backAt = s.Clock.Elapsed;
            output.WriteLine($"MEASURED server start -> node's journal back: {(backAt - start.At).TotalSeconds:0.0} s ({back.Text})");
            s.Note($"journal back: {back.Text}");
            await s.WaitForAsync("a heartbeat after the journal is back", () => s.Heartbeats.FirstOrDefault(h => h.SeenAt > backAt && h.Status == "pass"));
            await s.WaitForAsync("the node ready again", async () => (await s.ReadinessAsync()).Status == System.Net.HttpStatusCode.OK ? "ready" : null);
            var rowsAtKill = (await s.HeartbeatRowsAsync()).Count;
            await s.KillNodeAsync();
            var again = await s.StartNodeAgainAsync();
            var recovered = await again.WaitForLineAsync(l => l.Contains(ClawKeeperNodeProcess.RecoveredMarker, StringComparison.Ordinal), DatabaseOutageScenario.Generous)
                            ?? throw new Xunit.Sdk.XunitException($"{again.Name} did not recover the supervisor from the journal\n{s.Context()}");
            var (recorded, consecutive) = ParseRecovery(recovered.Text);
            output.WriteLine($"restarted on the journal: {recovered.Text}");
            Assert.True(recorded >= rowsAtKill, $"the journal holds {recorded} heartbeats, agent_runs {rowsAtKill}: the outage's heartbeats did not reach the journal\n{s.Context()}");
            Assert.Equal(0, consecutive);
            output.WriteLine(string.Join("\n", s.Timeline));
        }
        catch (Exception) when (Dump(s))
        {
            throw;
        }
    }

    /// <summary>SIGKILL of the node during the outage, before or after the escalation went out; started again on the same
    /// ports and working directory while the server is still down.</summary>
    [Theory]
    [InlineData("before-escalation")]
    [InlineData("after-escalation")]
    public async Task A_node_killed_during_the_outage_and_started_again_loses_nothing_and_doubles_nothing(string killWhen)
    {
        await using var s = await DatabaseOutageScenario.StartAsync(heartbeatInterval: TimeSpan.FromSeconds(12), retryInterval: TimeSpan.FromSeconds(3));
        try
        {
            var baseline = await HealthyAsync(s);
            var stop = await StopServerAsync(s);

            SeenMail? mail = null;
            DiscordMessage? discord = null;
            if (killWhen == "before-escalation")
            {
                // The first failure that counts (a build with soft check states counts only hard ones).
                var first = await s.WaitForAsync("the first counted failure of the outage", () =>
                    OutageHeartbeats(s, baseline, stop).FirstOrDefault(h => h.Status == "fail" && h.ConsecutiveFailures >= 1));
                await s.KillNodeAsync();
                Assert.True(first.ConsecutiveFailures < 3, $"the node was killed after {first.ConsecutiveFailures} failures, meant before the escalation\n{s.Context()}");
                Assert.DoesNotContain(EscalationMails(s, baseline), m => m.Kind == "firing");
                output.WriteLine($"killed after heartbeat {first.Id} (consecutive failures {first.ConsecutiveFailures}), before any escalation");
                await s.StartNodeAgainAsync();
                (mail, discord) = await EscalationDuringOutageAsync(s, baseline);
            }
            else
            {
                (mail, discord) = await EscalationDuringOutageAsync(s, baseline);
                await s.KillNodeAsync();
                output.WriteLine("killed after the escalation e-mail and Discord message arrived");
                await s.StartNodeAgainAsync();
            }

            // The restarted node heartbeats on during the outage, counting on from where the killed one was.
            var killedName = s.Cluster.Nodes[0].Name;
            await s.WaitForAsync($"two failed heartbeats of {s.Node.Name} during the outage", () =>
                OutageHeartbeats(s, baseline, stop).Count(h => h.Node == s.Node.Name && h.Status == "fail") >= 2 ? "yes" : null);
            var beforeKill = OutageHeartbeats(s, baseline, stop).Where(h => h.Node == killedName).ToList();
            var afterKill = OutageHeartbeats(s, baseline, stop).Where(h => h.Node == s.Node.Name).ToList();
            Assert.True(beforeKill.Count > 0 && afterKill.Count > 0, s.Context());
            Assert.True(afterKill.Min(h => h.ConsecutiveFailures) > beforeKill.Max(h => h.ConsecutiveFailures),
                $"the count did not go on across the kill: before {string.Join(",", beforeKill.Select(h => h.ConsecutiveFailures))}, after {string.Join(",", afterKill.Select(h => h.ConsecutiveFailures))}\n{s.Context()}");
            var outage = OutageHeartbeats(s, baseline, stop).Where(h => h.Status == "fail").ToList();

            var start = await StartServerAsync(s);
            var recovery = await RecoveryAsync(s, baseline, stop, start, outage);

            await AssertOneOfEachAsync(s, baseline, recovery);
            // The escalation came from the third counted failure of the streak, whichever incarnation ran it.
            AssertEscalatedAtTheThirdFailure(s, mail, recovery);
            Print(s, stop, start, mail, discord, recovery);
            output.WriteLine(string.Join("\n", s.Timeline));
        }
        catch (Exception) when (Dump(s))
        {
            throw;
        }
    }

    // ---- phases ---------------------------------------------------------------------------------

    private sealed record Baseline(int Mails, int DiscordMessages, IReadOnlySet<string> Heartbeats);

    private sealed record Moment(TimeSpan At, DateTime Utc);

    private sealed record Recovery(
        SeenMail ResolvedMail, DiscordMessage ResolvedDiscord, TimeSpan RowsWrittenAt, ObservedHeartbeat FirstPass,
        IReadOnlyList<HeartbeatRunRow> OutageRows);

    /// <summary>Healthy heartbeats pass (two in a row) and nobody was escalated to.</summary>
    private async Task<Baseline> HealthyAsync(DatabaseOutageScenario s)
    {
        var healthy = await s.WaitForAsync("two passing heartbeats in a row", () =>
        {
            var seen = s.Heartbeats;
            return seen.Count >= 2 && seen[^1].Status == "pass" && seen[^2].Status == "pass" ? seen[^1] : null;
        });
        Assert.Equal(0, healthy.ConsecutiveFailures);
        Assert.Equal("pass", healthy.DatabaseCheck ?? "pass");
        s.Note($"healthy: {healthy.Id} passed");
        var baseline = new Baseline(s.Mails.Count, s.DiscordMessages.Count, s.Heartbeats.Select(h => h.Id).ToHashSet());
        Assert.DoesNotContain(s.Mails, m => m.IsEscalation);
        return baseline;
    }

    private static async Task<Moment> StopServerAsync(DatabaseOutageScenario s)
    {
        var at = await s.Postgres.StopAsync();
        var moment = new Moment(at, DateTime.UtcNow);
        s.Note("PostgreSQL stopped (platform database and journal unreachable)");
        return moment;
    }

    private static async Task<Moment> StartServerAsync(DatabaseOutageScenario s)
    {
        var at = await s.Postgres.StartAsync();
        s.Note("PostgreSQL started again (same port, same data)");
        return new Moment(at, DateTime.UtcNow);
    }

    /// <summary>Heartbeats first seen after the server stopped (not known before it).</summary>
    private static List<ObservedHeartbeat> OutageHeartbeats(DatabaseOutageScenario s, Baseline baseline, Moment stop) =>
        s.Heartbeats.Where(h => h.SeenAt >= stop.At && !baseline.Heartbeats.Contains(h.Id)).ToList();

    private static IEnumerable<SeenMail> EscalationMails(DatabaseOutageScenario s, Baseline baseline) =>
        s.Mails.Skip(baseline.Mails).Where(m => m.IsEscalation && m.Mail.EnvelopeTo.Contains(DatabaseOutageScenario.SuperAdminAddress));

    private static bool IsFiring(DiscordMessage m) => !m.Content.StartsWith("**RESOLVED**", StringComparison.Ordinal) && !m.Content.StartsWith("**REMINDER**", StringComparison.Ordinal);

    private static bool IsResolved(DiscordMessage m) => m.Content.StartsWith("**RESOLVED**", StringComparison.Ordinal);

    /// <summary>The outage named as such: the database (or the journal) is unreachable.</summary>
    private static readonly Regex SaysUnreachable = new(@"(database|journal)[^\n]{0,120}(unreachable|not reachable|cannot be reached|could not be reached)|(unreachable|cannot reach|could not reach)[^\n]{0,120}(database|journal)",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

    /// <summary>super_admin's escalation by e-mail AND Discord, both while the server is still down.</summary>
    private async Task<(SeenMail Mail, DiscordMessage Discord)> EscalationDuringOutageAsync(DatabaseOutageScenario s, Baseline baseline)
    {
        var mail = await s.WaitForAsync("super_admin's escalation e-mail during the outage", () =>
            EscalationMails(s, baseline).FirstOrDefault(m => m.Kind == "firing"));
        Assert.False(s.Postgres.IsRunning);
        s.Note($"escalation e-mail: {mail.Subject}");
        var discord = await s.WaitForAsync("super_admin's escalation on Discord during the outage", () =>
            s.DiscordMessages.Skip(baseline.DiscordMessages).FirstOrDefault(m => IsFiring(m) && SaysUnreachable.IsMatch(m.Text)));
        Assert.False(s.Postgres.IsRunning);
        s.Note($"escalation on Discord: {discord.Content}");

        output.WriteLine($"escalation e-mail: {mail.Subject}\n{mail.Body}");
        output.WriteLine($"escalation on Discord: {discord.Text}");
        Assert.Equal("super_admin", mail.Audience);
        Assert.Matches(SaysUnreachable, mail.Subject + "\n" + mail.Body);
        Assert.Contains(DatabaseOutageScenario.DatabaseCheck, mail.Body);
        Assert.Contains(DatabaseOutageScenario.DatabaseCheck, discord.Text);
        return (mail, discord);
    }

    /// <summary>Waits until <paramref name="atLeast"/> failed heartbeats of the outage were seen; their count climbs.</summary>
    private static async Task<IReadOnlyList<ObservedHeartbeat>> FailedHeartbeatsDuringOutageAsync(DatabaseOutageScenario s, Baseline baseline, Moment stop, int atLeast)
    {
        var failed = await s.WaitForAsync($"{atLeast} failed heartbeats during the outage", () =>
        {
            var seen = OutageHeartbeats(s, baseline, stop).Where(h => h.Status == "fail").ToList();
            return seen.Count >= atLeast ? seen : null;
        });
        Assert.False(s.Postgres.IsRunning);
        foreach (var heartbeat in failed.Where(h => h.DatabaseCheck is not null))
            Assert.True(heartbeat.DatabaseCheck is "fail" or "error", $"{heartbeat.Id}: database_connection {heartbeat.DatabaseCheck} while the server is down\n{s.Context()}");
        var counts = failed.OrderBy(h => h.Id, StringComparer.Ordinal).Select(h => h.ConsecutiveFailures).ToList();
        AssertClimbs(counts, s.Context);
        s.Note($"{failed.Count} failed heartbeats during the outage (counts {string.Join(",", counts)})");
        return failed;
    }

    /// <summary>After the server is back: the resolved notice on both channels, the outage's heartbeats in agent_runs
    /// (failed, counted 1, 2, 3 ... without a gap or a reset), then a passing heartbeat with the count back at 0.</summary>
    private static async Task<Recovery> RecoveryAsync(DatabaseOutageScenario s, Baseline baseline, Moment stop, Moment start, IReadOnlyList<ObservedHeartbeat> outage)
    {
        var resolvedMail = await s.WaitForAsync("the resolved e-mail to super_admin", () =>
            s.Mails.Skip(baseline.Mails).FirstOrDefault(m => m.Kind == "resolved" && m.IsEscalation));
        s.Note($"resolved e-mail: {resolvedMail.Subject}");
        var resolvedDiscord = await s.WaitForAsync("the resolved message on Discord", () =>
            s.DiscordMessages.Skip(baseline.DiscordMessages).FirstOrDefault(IsResolved));
        s.Note($"resolved on Discord: {resolvedDiscord.Content}");
        Assert.True(resolvedMail.SeenAt >= start.At && resolvedDiscord.At >= start.At, $"resolved before the server was back\n{s.Context()}");

        var ids = outage.Select(h => h.Id).ToHashSet();
        IReadOnlyList<HeartbeatRunRow> rows = [];
        await s.WaitForAsync("every failed heartbeat of the outage in agent_runs", async () =>
        {
            rows = await s.HeartbeatRowsAsync();
            return ids.IsSubsetOf(rows.Select(r => r.Id)) ? "all" : null;
        });
        var rowsWrittenAt = s.Clock.Elapsed;
        s.Note($"agent_runs holds every failed heartbeat of the outage ({ids.Count})");

        var firstPass = await s.WaitForAsync("a passing heartbeat after the outage", () =>
            s.Heartbeats.FirstOrDefault(h => h.SeenAt >= start.At && h.Status == "pass"));
        Assert.Equal(0, firstPass.ConsecutiveFailures);
        await s.WaitForAsync($"{firstPass.Id} in agent_runs", async () =>
        {
            rows = await s.HeartbeatRowsAsync();
            return rows.Any(r => r.Id == firstPass.Id) ? "yes" : null;
        });

        var table = string.Join("\n", rows.Select(r => $"{r.Id} {r.Status} n={r.ConsecutiveFailures} db={r.DatabaseCheck}"));
        Assert.Equal(rows.Count, rows.Select(r => r.TaskId).Distinct().Count());
        Assert.All(rows, r => Assert.Equal(r.Id, r.TaskId));
        // The streak: after the heartbeats known before the outage and the passes that may follow them, up to the first pass after it.
        var lastKnown = rows.ToList().FindLastIndex(r => baseline.Heartbeats.Contains(r.Id));
        var passAt = rows.ToList().FindIndex(r => r.Id == firstPass.Id);
        var outageRows = rows.Take(passAt).Skip(lastKnown + 1).SkipWhile(r => r.Status == "completed").ToList();
        Assert.True(outageRows.Count >= ids.Count, $"outage rows {outageRows.Count} < seen {ids.Count}\n{table}");
        foreach (var row in outageRows)
        {
            Assert.True(row.Status == "failed", $"{row.Id} is '{row.Status}' in agent_runs, expected failed\n{table}");
            Assert.True(row.DatabaseCheck is "fail" or "error", $"{row.Id}: database_connection {row.DatabaseCheck}\n{table}");
        }
        // The streak, as persisted: climbing by one per failed heartbeat without a gap or a reset, past the escalation,
        // each row saying what the node reported for that heartbeat; then the pass at 0.
        AssertClimbs(outageRows.Select(r => r.ConsecutiveFailures).ToList(), () => table);
        Assert.True(outageRows[^1].ConsecutiveFailures >= 3, $"the streak in agent_runs ends at {outageRows[^1].ConsecutiveFailures}\n{table}");
        foreach (var reported in outage.Where(h => h.Source == "ops"))
            Assert.True(outageRows.Single(r => r.Id == reported.Id).ConsecutiveFailures == reported.ConsecutiveFailures,
                $"{reported.Id}: the node reported {reported.ConsecutiveFailures} consecutive failures, agent_runs says otherwise\n{table}");
        Assert.Equal(0, rows[passAt].ConsecutiveFailures);
        Assert.Equal("completed", rows[passAt].Status);
        s.Note($"agent_runs: {outageRows.Count} failed heartbeats of the outage (counts {string.Join(",", outageRows.Select(r => r.ConsecutiveFailures))}), then {firstPass.Id} passed");
        return new Recovery(resolvedMail, resolvedDiscord, rowsWrittenAt, firstPass, outageRows);
    }

    private static void AssertEscalatedAtTheThirdFailure(DatabaseOutageScenario s, SeenMail mail, Recovery recovery)
    {
        var escalated = mail.Mail.Message.Headers["X-ClawKeeper-Heartbeat"];
        var escalatedRow = recovery.OutageRows.SingleOrDefault(r => r.Id == escalated);
        Assert.True(escalatedRow is not null && escalatedRow.ConsecutiveFailures == 3,
            $"the escalation names heartbeat {escalated}, expected the streak's third counted failure\n{s.Context()}");
    }

    /// <summary>
    /// A streak's consecutive-failure counts, heartbeat after heartbeat: +1 per failed heartbeat. A build whose soft check
    /// states count only hard failures (issue 11 item 1 not merged) reports 0 for the soft ones first: 0, 0, 1, 2, 3 ...
    /// Never a gap, never a drop.
    /// </summary>
    private static void AssertClimbs(IReadOnlyList<int> counts, Func<string> context)
    {
        var ok = counts.Count > 0 && counts[0] <= 1
                 && counts.Zip(counts.Skip(1), (a, b) => b == a + 1 || (a == 0 && b == 0)).All(step => step);
        Assert.True(ok, $"the consecutive-failure count does not climb by one per failed heartbeat: {string.Join(",", counts)}\n{context()}");
    }

    /// <summary>Once things settled (two more passing heartbeats and the alerts' retry backoff): one escalation and one
    /// resolved notice per channel for the streak.</summary>
    private static async Task AssertOneOfEachAsync(DatabaseOutageScenario s, Baseline baseline, Recovery recovery)
    {
        await s.WaitForAsync("two passing heartbeats after the outage", () =>
            s.Heartbeats.Count(h => h.SeenAt >= recovery.FirstPass.SeenAt && h.Status == "pass") >= 2 ? "yes" : null);
        await Task.Delay(TimeSpan.FromSeconds(3)); // the alerts' max retry backoff is 2 s: a doubled send would be here by now

        var mails = s.Mails.Skip(baseline.Mails).Where(m => m.Mail.EnvelopeTo.Contains(DatabaseOutageScenario.SuperAdminAddress)).ToList();
        var discord = s.DiscordMessages.Skip(baseline.DiscordMessages).ToList();
        var context = s.Context();
        Assert.True(mails.Count(m => m.IsEscalation && m.Kind == "firing") == 1, $"one escalation e-mail per streak expected\n{context}");
        Assert.True(mails.Count(m => m.IsEscalation && m.Kind == "resolved") == 1, $"one resolved e-mail per streak expected\n{context}");
        Assert.True(discord.Count(m => IsFiring(m) && SaysUnreachable.IsMatch(m.Text)) == 1, $"one escalation on Discord per streak expected\n{context}");
        Assert.True(discord.Count(IsResolved) == mails.Count(m => m.Kind == "resolved"), $"every resolved notice once on each channel\n{context}");
        Assert.True(discord.Count(IsFiring) == mails.Count(m => m.Kind == "firing"), $"every firing notice once on each channel\n{context}");
        Assert.Equal(mails.Count, mails.Select(m => m.Mail.Message.MessageId).Distinct().Count());
    }

    private void Print(DatabaseOutageScenario s, Moment stop, Moment start, SeenMail mail, DiscordMessage discord, Recovery recovery)
    {
        string Seconds(TimeSpan span) => span.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + " s";
        var lines = new[]
        {
            $"MEASURED server stop -> super_admin e-mail:     {Seconds(mail.SeenAt - stop.At)}",
            $"MEASURED server stop -> super_admin Discord:    {Seconds(discord.At - stop.At)}",
            $"MEASURED server start -> resolved e-mail:       {Seconds(recovery.ResolvedMail.SeenAt - start.At)}",
            $"MEASURED server start -> resolved Discord:      {Seconds(recovery.ResolvedDiscord.At - start.At)}",
            $"MEASURED server start -> outage rows in agent_runs: {Seconds(recovery.RowsWrittenAt - start.At)} ({recovery.OutageRows.Count} failed heartbeats)",
            $"MEASURED outage lasted {Seconds(start.At - stop.At)}",
        };
        foreach (var line in lines)
        {
            output.WriteLine(line);
            Console.WriteLine(line);
        }
    }

    private static (long Recorded, int Consecutive) ParseRecovery(string line)
    {
        var m = Regex.Match(line, @"recovered: (?<r>\d+) heartbeats recorded, (?<n>\d+) consecutive failures");
        Assert.True(m.Success, "not a recovery line: " + line);
        return (long.Parse(m.Groups["r"].Value, CultureInfo.InvariantCulture), int.Parse(m.Groups["n"].Value, CultureInfo.InvariantCulture));
    }

    private bool Dump(DatabaseOutageScenario s)
    {
        try
        {
            output.WriteLine(s.Context());
        }
        catch (Exception e)
        {
            output.WriteLine($"(no context: {e.Message})");
        }
        return false;
    }
}
