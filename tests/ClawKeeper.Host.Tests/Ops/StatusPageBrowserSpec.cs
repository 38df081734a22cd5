using System.Diagnostics;
using System.Text.RegularExpressions;
using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Testing;
using Xunit;
using Xunit.Abstractions;

namespace ClawKeeper.Host.Tests.Ops;

/// <summary>Finds Debian's chromium (or <c>CLAWKEEPER_CHROMIUM</c>); never downloads a browser.</summary>
public static class Chromium
{
    public static readonly string? Path = Find();

    public const string Missing =
        "no chromium binary found (looked for $CLAWKEEPER_CHROMIUM, chromium, chromium-browser, google-chrome on PATH); install it with `apt-get install -y chromium` to run the headless-browser test";

    private static string? Find()
    {
        var configured = Environment.GetEnvironmentVariable("CLAWKEEPER_CHROMIUM");
        if (!string.IsNullOrWhiteSpace(configured) && File.Exists(configured)) return configured;
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var name in new[] { "chromium", "chromium-browser", "google-chrome" })
            foreach (var directory in path.Split(System.IO.Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            {
                var candidate = System.IO.Path.Combine(directory, name);
                if (File.Exists(candidate)) return candidate;
            }
        return null;
    }

    /// <summary>Loads <paramref name="url"/> in headless chromium with a fresh profile and returns the DOM after its scripts ran.</summary>
    public static async Task<string> DumpDomAsync(string url, TimeSpan timeout)
    {
        var profile = Directory.CreateTempSubdirectory("clawkeeper-chromium-");
        try
        {
            var start = new ProcessStartInfo(Path!)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var argument in new[]
                     {
                         "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                         "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", $"--user-data-dir={profile.FullName}", "--dump-dom", url,
                     })
                start.ArgumentList.Add(argument);
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var cancel = new CancellationTokenSource(timeout);
            try
            {
                await process.WaitForExitAsync(cancel.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"chromium did not finish within {timeout}: {await stderr}");
            }
            var dom = await stdout;
            Assert.True(process.ExitCode == 0 && dom.Length > 0, $"chromium exited with {process.ExitCode}: {await stderr}");
            return dom;
        }
        finally
        {
            try { profile.Delete(recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}

/// <summary>Skipped, with the reason, only when no chromium binary exists.</summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public ChromiumFactAttribute()
    {
        if (Chromium.Path is null) Skip = Chromium.Missing;
    }
}

/// <summary>The status page in a real headless browser: its script runs and shows what the latest heartbeat says.</summary>
public class StatusPageBrowserSpec(ITestOutputHelper output)
{
    [ChromiumFact]
    public async Task The_rendered_page_shows_the_failing_check_of_the_latest_heartbeat_and_the_write_block()
    {
        var database = await TestDatabases.CreateSeededAsync();
        var report = OpsSamples.Report(DateTimeOffset.UtcNow - TimeSpan.FromSeconds(90), failing: true, writeBlock: true, consecutiveFailures: 1);
        await OpsSamples.InsertRunAsync(database, report);
        await using var host = await OpsTestHost.StartAsync(database, OpsSamples.StateWith(report));

        output.WriteLine($"chromium: {Chromium.Path}, page: {host.BaseUri}");
        var dom = await Chromium.DumpDomAsync(host.BaseUri.ToString(), TimeSpan.FromSeconds(90));

        // The "needs attention" list was rebuilt by the page's script from the embedded report.
        var problems = Regex.Match(dom, "<ul class=\"problems\" id=\"problems\" data-rendered=\"(?<by>[a-z]+)\">(?<items>.*?)</ul>", RegexOptions.Singleline);
        Assert.True(problems.Success, "the problems list is in the DOM");
        Assert.Equal("js", problems.Groups["by"].Value);
        var failing = Regex.Match(problems.Groups["items"].Value, "<li data-check=\"error_rate\">(?<text>.*?)</li>", RegexOptions.Singleline);
        Assert.True(failing.Success, "the failing check is listed: " + problems.Groups["items"].Value);
        Assert.Contains("<span class=\"badge s-fail\">fail</span>", failing.Groups["text"].Value);
        Assert.Contains("12.5 % (1/8 failed)", failing.Groups["text"].Value);
        Assert.DoesNotContain("data-check=\"api_server_responding\"", problems.Groups["items"].Value);

        // The checks table, the banner and the relative times (set by the script).
        Assert.Contains("<tr data-check=\"error_rate\" data-status=\"fail\">", dom);
        Assert.Contains("WRITES BLOCKED (write block #7)", dom);
        Assert.Matches(new Regex("<time datetime=\"[^\"]+\" title=\"[^\"]+\">(\\d+ s|\\d+ min) ago</time>"), dom);
        Assert.Contains("<svg id=\"heartbeat-chart\"", dom);
    }

    [ChromiumFact]
    public async Task The_page_shows_soft_and_hard_states_the_flapping_badge_the_retry_round_and_each_action_with_outcome_and_recheck()
    {
        var database = await TestDatabases.CreateSeededAsync();
        var sample = OpsSamples.Report(DateTimeOffset.UtcNow - TimeSpan.FromSeconds(30), failing: true, consecutiveFailures: 1);
        var previous = "heartbeat-2026-11-28T07:59:00.000Z";
        // A retry round: api_server_responding re-ran (still failing, soft 2/3); error_rate is hard and flapping;
        // the rest is carried from the previous heartbeat.
        var groups = sample.Groups.Select(g =>
        {
            var checks = g.Checks.Select(c => c.Check switch
            {
                "api_server_responding" => new CheckResult(c.Check, CheckStatus.Fail, "connection refused", c.Threshold, "GET http://127.0.0.1:5080/health: connection refused", 3)
                    { State = "soft", Attempt = "2/3", Flapping = false },
                "error_rate" => c with { State = "hard", Attempt = "3/3", Flapping = true, CarriedFrom = previous },
                _ => c with { State = "hard", Attempt = "1/3", Flapping = false, CarriedFrom = previous },
            }).ToList();
            return new GroupReport(g.Group, CheckStatusExtensions.Worst(checks.Select(c => c.Status)), checks);
        }).ToList();
        var report = sample with
        {
            Groups = groups,
            Rechecked = ["system_health/api_server_responding"],
            Actions =
            [
                new ActionReport("restart_api_server", "fail: connection refused", "restarted: started again on http://127.0.0.1:5080/ in 38 ms")
                    { Recheck = "GET /health answered 200 in 6 ms" },
                new ActionReport("restart_orchestrator", "cfo: no answer to a ping within 500 ms (hung)", "restart failed: no new incarnation"),
            ],
        };
        await OpsSamples.InsertRunAsync(database, report);
        await using var host = await OpsTestHost.StartAsync(database, OpsSamples.StateWith(report));

        var dom = await Chromium.DumpDomAsync(host.BaseUri.ToString(), TimeSpan.FromSeconds(90));
        output.WriteLine(Regex.Match(dom, "<section id=\"checks\">.*?</section>", RegexOptions.Singleline).Value);

        // The checks table: status with its state and attempt, the flapping badge, what was carried.
        var api = Row(dom, "api_server_responding");
        Assert.Contains("data-state=\"soft\" data-attempt=\"2/3\"", api);
        Assert.Equal("fail · soft 2/3", Text(Cell(api, "status")));
        Assert.DoesNotContain("flapping", Text(api));
        Assert.DoesNotContain("carried from", Text(api));
        var errorRate = Row(dom, "error_rate");
        Assert.Equal("fail · hard 3/3 flapping", Text(Cell(errorRate, "status")));
        Assert.Contains("<span class=\"badge s-flapping\"", errorRate);
        Assert.Contains("carried from " + previous, Text(errorRate));
        // A check that is fine shows no state (a pass is not "hard 1/3" to a reader).
        Assert.Equal("pass", Text(Cell(Row(dom, "queue_depth"), "status")));

        // The retry round is named in the header.
        Assert.Contains("retry round: re-checked system_health/api_server_responding", Text(dom));

        // The "needs attention" list, rebuilt by the script, carries the states and the badge too.
        var problems = Regex.Match(dom, "<ul class=\"problems\" id=\"problems\" data-rendered=\"js\">(?<items>.*?)</ul>", RegexOptions.Singleline);
        Assert.True(problems.Success, "the script rebuilt the problems list");
        var apiItem = Regex.Match(problems.Groups["items"].Value, "<li data-check=\"api_server_responding\">(?<text>.*?)</li>", RegexOptions.Singleline);
        Assert.True(apiItem.Success, problems.Groups["items"].Value);
        Assert.StartsWith("fail · soft 2/3 system_health / api_server_responding", Text(apiItem.Groups["text"].Value));
        var errorItem = Regex.Match(problems.Groups["items"].Value, "<li data-check=\"error_rate\">(?<text>.*?)</li>", RegexOptions.Singleline);
        Assert.True(errorItem.Success, problems.Groups["items"].Value);
        Assert.StartsWith("fail · hard 3/3 flapping task_queue / error_rate", Text(errorItem.Groups["text"].Value));
        Assert.Contains("(carried from " + previous + ")", Text(errorItem.Groups["text"].Value));

        // The actions with their outcome and re-check.
        var restart = Regex.Match(dom, "<tr data-action=\"restart_api_server\">.*?</tr>", RegexOptions.Singleline).Value;
        Assert.Equal("restarted: started again on http://127.0.0.1:5080/ in 38 ms", Text(Cell(restart, "outcome")));
        Assert.Equal("GET /health answered 200 in 6 ms", Text(Cell(restart, "recheck")));
        var orchestrator = Regex.Match(dom, "<tr data-action=\"restart_orchestrator\">.*?</tr>", RegexOptions.Singleline).Value;
        Assert.Equal("restart failed: no new incarnation", Text(Cell(orchestrator, "outcome")));
        Assert.Equal("none", Text(Cell(orchestrator, "recheck")));
    }

    private static string Row(string dom, string check)
    {
        var row = Regex.Match(dom, $"<tr data-check=\"{check}\"[^>]*>.*?</tr>", RegexOptions.Singleline);
        Assert.True(row.Success, $"no row for {check} in the checks table");
        return row.Value;
    }

    private static string Cell(string row, string cssClass)
    {
        var cell = Regex.Match(row, $"<td class=\"{cssClass}\">(?<inner>.*?)</td>", RegexOptions.Singleline);
        Assert.True(cell.Success, $"no {cssClass} cell in {row}");
        return cell.Groups["inner"].Value;
    }

    /// <summary>The visible text: tags dropped, entities decoded, whitespace collapsed.</summary>
    private static string Text(string html) =>
        Regex.Replace(System.Net.WebUtility.HtmlDecode(Regex.Replace(html, "<[^>]+>", "")), "\\s+", " ").Trim();
}
