using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.SecurityPosture;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;
using static ClawKeeper.Actors.Tests.Checks.SecurityPosture.SecurityPostureTesting;

namespace ClawKeeper.Actors.Tests.Checks.SecurityPosture;

/// <summary>unauthorized_access_attempts reads exactly the window (last completed heartbeat, this start].</summary>
public class UnauthorizedAccessAttemptsCheckSpec
{
    private static Task AddEventAsync(string database, string? tenant, string source, DateTimeOffset at, string kind = "unauthorized_access") =>
        Sql.ExecuteAsync(database, "insert into security_events (tenant_id, kind, source, occurred_at, detail) values ($1, $2, $3, $4, '{\"ip\": \"198.51.100.9\"}'::jsonb)",
            tenant, kind, source, at);

    [Fact]
    public async Task Events_are_counted_in_the_window_only_the_same_window_twice_gives_the_same_count_and_the_next_window_moves_on()
    {
        var database = await TestDatabases.CreateSeededAsync();
        var started = Now();
        var previous = started.AddHours(-4);
        await AddEventAsync(database, "t-acme-bakery", "api", previous);                  // the previous window's last instant: not ours
        await AddEventAsync(database, "t-acme-bakery", "api", previous.AddSeconds(1));
        await AddEventAsync(database, "t-acme-bakery", "api", started.AddMinutes(-10));
        await AddEventAsync(database, "t-harbor-dental", "admin-portal", started);          // our last instant: ours
        await AddEventAsync(database, null, "ops-endpoint", started.AddMinutes(-1));
        await AddEventAsync(database, "t-summit-hvac", "api", started.AddMinutes(-2), kind: "login_succeeded"); // another kind
        await AddEventAsync(database, "t-northwind-legal", "api", started.AddSeconds(1));   // the next window's
        await using var platform = NpgsqlDataSource.Create(database);
        var check = new UnauthorizedAccessAttemptsCheck(platform, Posture);

        var first = await RunAsync(check, Context(started, previous));
        Assert.Equal(CheckStatus.Fail, first.Status);
        Assert.StartsWith("4 unauthorized_access event(s) in (", first.Observed);
        Assert.Contains("since the last completed heartbeat", first.Observed);
        Assert.Contains("4 attempt(s) across 3 tenant(s), by tenant/source: t-acme-bakery/api ×2", first.Detail);
        Assert.Contains("(no tenant)/ops-endpoint ×1", first.Detail);
        Assert.Contains($"t-harbor-dental/admin-portal ×1 (latest {started.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ})", first.Detail);
        Assert.DoesNotContain("t-northwind-legal", first.Detail);
        Assert.DoesNotContain("t-summit-hvac", first.Detail);

        // A restart re-running the same heartbeat reads the same window: same count, nothing repeated or lost.
        var again = await RunAsync(new UnauthorizedAccessAttemptsCheck(platform, Posture), Context(started, previous));
        Assert.Equal(first.Observed, again.Observed);
        Assert.Equal(first.Detail, again.Detail);

        // The next heartbeat starts where this one ended.
        var next = await RunAsync(check, Context(started.AddHours(4), started));
        Assert.Equal(CheckStatus.Fail, next.Status);
        Assert.StartsWith("1 unauthorized_access event(s)", next.Observed);
        Assert.Contains("t-northwind-legal/api ×1", next.Detail);

        var quiet = await RunAsync(check, Context(started.AddHours(8), started.AddHours(4)));
        Assert.Equal(CheckStatus.Pass, quiet.Status);
        Assert.StartsWith("0 unauthorized_access event(s)", quiet.Observed);
        Assert.Contains("no unauthorized_access event recorded in (", quiet.Detail);
    }

    [Fact]
    public async Task Without_a_completed_heartbeat_the_look_back_is_used_and_the_old_seeded_event_is_outside_it()
    {
        var database = await TestDatabases.CreateSeededAsync();
        Assert.Equal(1L, await Sql.ScalarAsync<long>(database, "select count(*) from security_events where kind = 'unauthorized_access' and occurred_at < now() - interval '29 days'"));
        await using var platform = NpgsqlDataSource.Create(database);
        var check = new UnauthorizedAccessAttemptsCheck(platform, Posture);
        var started = Now();

        var clean = await RunAsync(check, Context(started, null));
        Assert.Equal(CheckStatus.Pass, clean.Status);
        Assert.Contains("no completed heartbeat yet: look-back of 4 h", clean.Observed);

        await AddEventAsync(database, "t-summit-hvac", "api", started.AddHours(-3));
        var recent = await RunAsync(check, Context(started, null));
        Assert.Equal(CheckStatus.Fail, recent.Status);
        Assert.Contains("t-summit-hvac/api ×1", recent.Detail);
    }

    [Fact]
    public async Task A_custom_watermark_moves_the_window_start()
    {
        var database = await TestDatabases.CreateSeededAsync();
        var started = Now();
        await AddEventAsync(database, "t-acme-bakery", "api", started.AddMinutes(-3));
        await using var platform = NpgsqlDataSource.Create(database);

        // The previous heartbeat completed 1 min ago but started 5 min ago: a watermark at its start covers the event.
        var byCompletion = await RunAsync(new UnauthorizedAccessAttemptsCheck(platform, Posture), Context(started, started.AddMinutes(-1)));
        var byStart = await RunAsync(new UnauthorizedAccessAttemptsCheck(platform, Posture, _ => started.AddMinutes(-5)), Context(started, started.AddMinutes(-1)));
        Assert.Equal(CheckStatus.Pass, byCompletion.Status);
        Assert.Equal(CheckStatus.Fail, byStart.Status);
    }

    [Fact]
    public void The_window_is_half_open_and_says_where_it_comes_from()
    {
        var started = new DateTimeOffset(2026, 11, 28, 4, 0, 0, TimeSpan.FromHours(1));
        var window = EventWindow.For(started, started.AddHours(-4), TimeSpan.FromHours(4));
        Assert.Equal(TimeSpan.Zero, window.After.Offset);
        Assert.Equal(started, window.UpTo);
        Assert.True(window.FromWatermark);
        Assert.Equal("(2026-11-27T23:00:00.000Z, 2026-11-28T03:00:00.000Z] since the last completed heartbeat", window.Describe());
        var first = EventWindow.For(started, null, TimeSpan.FromMinutes(30));
        Assert.Equal(started.AddMinutes(-30), first.After);
        Assert.False(first.FromWatermark);
        Assert.True(EventWindow.For(started, started.AddSeconds(1), TimeSpan.FromHours(1)).IsEmpty);
    }
}
