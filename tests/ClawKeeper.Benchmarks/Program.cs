using System.Runtime.InteropServices;
using ClawKeeper.Benchmarks;

// `failover` mode: singleton failover time over real node processes (issue 7); otherwise the data-integrity benchmark (issue 3).
if (args.Length > 0 && args[0] == "failover")
    return await RunAsync(() => FailoverOptions.Parse(args.Skip(1).ToList()), FailoverOptions.Usage,
        "dispose the node processes before exiting",
        (failover, ct) =>
        {
            if (!failover.ResultsPathGiven)
                failover = failover with { ResultsPath = Path.Combine(ProjectDirectory(), "RESULTS-failover.md") };
            return new FailoverBenchmark(failover, FailoverBenchmark.HostAssembly(ProjectDirectory())).RunAsync(ct);
        });

// `escalation` mode: time from a persistent failure to super_admin's e-mail and Discord message on a real node (issue 11).
if (args.Length > 0 && args[0] == "escalation")
    return await RunAsync(() => EscalationOptions.Parse(args.Skip(1).ToList()), EscalationOptions.Usage,
        "the node process is killed",
        (escalation, ct) =>
        {
            if (!escalation.ResultsPathGiven)
                escalation = escalation with { ResultsPath = Path.Combine(ProjectDirectory(), "RESULTS-escalation.md") };
            return new EscalationBenchmark(escalation, FailoverBenchmark.HostAssembly(ProjectDirectory())).RunAsync(ct);
        });

return await RunAsync(() => BenchOptions.Parse(args), BenchOptions.Usage,
    "the server is stopped and its directory deleted",
    (options, ct) =>
    {
        if (!options.ResultsPathGiven && !options.Small)
            options = options with { ResultsPath = Path.Combine(ProjectDirectory(), "RESULTS.md") };
        return new IntegrityBenchmark(options).RunAsync(ct);
    });

// One mode: parse (usage on --help, exit 2 on a bad argument), run until done or SIGINT/SIGTERM (exit 130), 1 when the benchmark failed.
static async Task<int> RunAsync<TOptions>(Func<TOptions> parse, string usage, string onCancel, Func<TOptions, CancellationToken, Task<int>> run)
{
    TOptions options;
    try
    {
        options = parse();
    }
    catch (HelpRequestedException)
    {
        Console.WriteLine(usage);
        return 0;
    }
    catch (ArgumentException ex)
    {
        Console.Error.WriteLine(ex.Message);
        Console.Error.WriteLine();
        Console.Error.WriteLine(usage);
        return 2;
    }

    using var cancellation = new CancellationTokenSource();
    void Cancel(PosixSignalContext context)
    {
        context.Cancel = true; // clean up (see onCancel) before exiting
        if (!cancellation.IsCancellationRequested)
        {
            Console.Error.WriteLine($"{context.Signal}: cancelling; {onCancel} ...");
            cancellation.Cancel();
        }
    }
    using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Cancel);
    using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Cancel);

    try
    {
        return await run(options, cancellation.Token);
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
