using System.Runtime.InteropServices;
using ClawKeeper.Benchmarks;

if (args.Length > 0 && args[0] == "failover")
    return await RunFailoverAsync(args.Skip(1).ToList());

BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (HelpRequestedException)
{
    Console.WriteLine(BenchOptions.Usage);
    return 0;
}
catch (ArgumentException ex)
{
    Console.Error.WriteLine(ex.Message);
    Console.Error.WriteLine();
    Console.Error.WriteLine(BenchOptions.Usage);
    return 2;
}

if (!options.ResultsPathGiven && !options.Small)
    options = options with { ResultsPath = Path.Combine(ProjectDirectory(), "RESULTS.md") };

using var cancellation = new CancellationTokenSource();
void Cancel(PosixSignalContext context)
{
    context.Cancel = true; // stop the server and delete its directory before exiting
    if (!cancellation.IsCancellationRequested)
    {
        Console.Error.WriteLine($"{context.Signal}: cancelling; the server is stopped and its directory deleted ...");
        cancellation.Cancel();
    }
}

using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Cancel);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Cancel);

try
{
    var benchmark = new IntegrityBenchmark(options);
    return await benchmark.RunAsync(cancellation.Token);
}
catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
{
    Console.Error.WriteLine("cancelled.");
    return 130;
}
catch (BenchmarkFailedException ex)
{
    Console.Error.WriteLine($"BENCHMARK FAILED: {ex.Message}");
    return 1;
}

// `failover` mode: singleton failover time over real node processes (issue 7).
static async Task<int> RunFailoverAsync(IReadOnlyList<string> arguments)
{
    FailoverOptions failover;
    try
    {
        failover = FailoverOptions.Parse(arguments);
    }
    catch (HelpRequestedException)
    {
        Console.WriteLine(FailoverOptions.Usage);
        return 0;
    }
    catch (ArgumentException ex)
    {
        Console.Error.WriteLine(ex.Message);
        Console.Error.WriteLine();
        Console.Error.WriteLine(FailoverOptions.Usage);
        return 2;
    }
    if (!failover.ResultsPathGiven)
        failover = failover with { ResultsPath = Path.Combine(ProjectDirectory(), "RESULTS-failover.md") };

    using var cancellation = new CancellationTokenSource();
    void Cancel(PosixSignalContext context)
    {
        context.Cancel = true; // dispose the node processes before exiting
        cancellation.Cancel();
    }
    using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Cancel);
    using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Cancel);
    try
    {
        return await new FailoverBenchmark(failover, FailoverBenchmark.HostAssembly(ProjectDirectory())).RunAsync(cancellation.Token);
    }
    catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
    {
        Console.Error.WriteLine("cancelled.");
        return 130;
    }
    catch (BenchmarkFailedException ex)
    {
        Console.Error.WriteLine($"BENCHMARK FAILED: {ex.Message}");
        return 1;
    }
}

// tests/ClawKeeper.Benchmarks, found from the build output (bin/<config>/<tfm>/) or the working directory.
static string ProjectDirectory()
{
    for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        if (File.Exists(Path.Combine(directory.FullName, "ClawKeeper.Benchmarks.csproj")))
            return directory.FullName;
    var fromRoot = Path.Combine(Directory.GetCurrentDirectory(), "tests", "ClawKeeper.Benchmarks");
    return Directory.Exists(fromRoot) ? fromRoot : Directory.GetCurrentDirectory();
}
