using System.Diagnostics;
using System.Text.RegularExpressions;
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
}
