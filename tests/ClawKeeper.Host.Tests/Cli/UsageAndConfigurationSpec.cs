using ClawKeeper.Host.Tests.Support;
using Xunit;

namespace ClawKeeper.Host.Tests.Cli;

/// <summary>Bad input gets a clear message and exit code 2, never a stack trace.</summary>
public class UsageAndConfigurationSpec
{
    private static void AssertNoStackTrace(ProcessResult result) => Assert.DoesNotContain("   at ", result.StandardError + result.StandardOutput);

    [Fact]
    public async Task Check_without_once_explains_itself()
    {
        var result = await ClawKeeperProcess.RunAsync(ClawKeeperProcess.PlatformDb("Host=127.0.0.1"), "check");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--once", result.StandardError);
        AssertNoStackTrace(result);
    }

    [Fact]
    public async Task An_unknown_verb_or_option_is_a_usage_error()
    {
        var verb = await ClawKeeperProcess.RunAsync(new Dictionary<string, string?>(), "hearbeat");
        Assert.Equal(2, verb.ExitCode);
        Assert.Contains("hearbeat", verb.StandardError);
        var option = await ClawKeeperProcess.RunAsync(new Dictionary<string, string?>(), "check", "--once", "--jsn");
        Assert.Equal(2, option.ExitCode);
        Assert.Contains("--jsn", option.StandardError);
    }

    [Fact]
    public async Task A_bad_setting_stops_start_up_with_the_key_named()
    {
        var file = Path.Combine(Directory.CreateTempSubdirectory().FullName, "bad.conf");
        await File.WriteAllTextAsync(file, "clawkeeper.heartbeat.interval = soon\nclawkeeper.checks.task-queue.max-error-rate = 12\n");
        var result = await ClawKeeperProcess.RunAsync(ClawKeeperProcess.PlatformDb("Host=127.0.0.1;Database=x"), "check", "--once", "--config", file);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("clawkeeper.heartbeat.interval", result.StandardError);
        Assert.Contains("'soon'", result.StandardError);
        Assert.Contains("clawkeeper.checks.task-queue.max-error-rate", result.StandardError);
        AssertNoStackTrace(result);
    }

    [Theory]
    [InlineData("check", "clawkeeper {\n  heartbeat { interval = 5s }\n", "line 1, column 12", "unclosed '{'")]
    [InlineData("run", "clawkeeper {\n  heartbeat { interval = 5s }\n}\n}\n", "line 4, column 1", "'}' closes nothing")]
    [InlineData("check", "clawkeeper.heartbeat.interval = 5s\nstray\n", "line 2, column 6", "after the key 'stray'")]
    public async Task Malformed_hocon_exits_2_naming_the_file_and_the_position_without_a_stack_trace(string verb, string text, string position, string problem)
    {
        var file = Path.Combine(Directory.CreateTempSubdirectory().FullName, "malformed.conf");
        await File.WriteAllTextAsync(file, text);
        var args = verb == "check" ? new[] { "check", "--once", "--config", file } : new[] { "run", "--config", file };
        var result = await ClawKeeperProcess.RunAsync(ClawKeeperProcess.PlatformDb("Host=127.0.0.1;Database=x"), args);
        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains(file, result.StandardError);
        Assert.Contains(position, result.StandardError);
        Assert.Contains(problem, result.StandardError);
        AssertNoStackTrace(result);
    }

    [Fact]
    public async Task A_missing_config_file_and_a_missing_platform_database_are_named()
    {
        var missingFile = await ClawKeeperProcess.RunAsync(ClawKeeperProcess.PlatformDb("Host=127.0.0.1"), "run", "--config", "/nonexistent/clawkeeper.conf");
        Assert.Equal(2, missingFile.ExitCode);
        Assert.Contains("/nonexistent/clawkeeper.conf", missingFile.StandardError);

        var noDatabase = await ClawKeeperProcess.RunAsync(new Dictionary<string, string?>(), "check", "--once");
        Assert.Equal(2, noDatabase.ExitCode);
        Assert.Contains("CLAWKEEPER_PLATFORM_DB", noDatabase.StandardError);
        AssertNoStackTrace(noDatabase);
    }
}
