using System.Diagnostics;

namespace ClawKeeper.Host.Tests.Support;

public sealed record ProcessResult(int ExitCode, string StandardOutput, string StandardError)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{StandardOutput}\n--- stderr ---\n{StandardError}";
}

/// <summary>Runs the real <c>clawkeeper</c> executable (the built Host assembly) as a child process.</summary>
public static class ClawKeeperProcess
{
    /// <summary>
    /// The Host's own build output (same configuration as the tests): next to the tests the ASP.NET
    /// shared framework of the test helpers hides assemblies the Host itself must carry.
    /// </summary>
    public static string AssemblyPath
    {
        get
        {
            var testOutput = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
            var framework = testOutput.Name;              // net10.0
            var configuration = testOutput.Parent!.Name;  // Debug | Release
            var root = testOutput;
            while (root is not null && !File.Exists(Path.Combine(root.FullName, "ClawKeeper.Actors.sln"))) root = root.Parent;
            if (root is null) throw new DirectoryNotFoundException("repository root not found above " + AppContext.BaseDirectory);
            var path = Path.Combine(root.FullName, "src", "ClawKeeper.Host", "bin", configuration, framework, "clawkeeper.dll");
            return File.Exists(path) ? path : throw new FileNotFoundException("build src/ClawKeeper.Host first", path);
        }
    }

    public static async Task<ProcessResult> RunAsync(IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        var workingDirectory = Directory.CreateTempSubdirectory("clawkeeper-cli-").FullName;
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(AssemblyPath);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        start.Environment.Remove("CLAWKEEPER_PLATFORM_DB");
        start.Environment.Remove("CLAWKEEPER_JOURNAL_DB");
        foreach (var (key, value) in environment)
            if (value is null) start.Environment.Remove(key);
            else start.Environment[key] = value;

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"clawkeeper {string.Join(' ', args)} did not exit within 2 minutes: {await stderr}");
        }
        return new ProcessResult(process.ExitCode, await stdout, await stderr);
    }

    public static Dictionary<string, string?> PlatformDb(string connectionString) => new() { ["CLAWKEEPER_PLATFORM_DB"] = connectionString };

    /// <summary>A --config file pointing every provider (plaid, stripe, quickbooks, xero) at a loopback stand-in.</summary>
    public static string ProvidersConfig(Uri standIn)
    {
        var file = Path.Combine(Directory.CreateTempSubdirectory("clawkeeper-config-").FullName, "providers.conf");
        File.WriteAllText(file, ClawKeeper.Testing.ProviderStandIns.Hocon(standIn));
        return file;
    }
}
