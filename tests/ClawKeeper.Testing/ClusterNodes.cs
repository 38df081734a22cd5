using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace ClawKeeper.Testing;

/// <summary>One line a node wrote (stdout or stderr), with when this process read it.</summary>
public sealed record NodeLine(int Index, TimeSpan At, string Text);

/// <summary>
/// One real <c>clawkeeper run</c> process on loopback: its remoting and ops ports, its log lines as
/// they arrive, and the three ways a node goes away (hard kill, POST /cluster/leave, SIGTERM).
/// </summary>
public sealed partial class ClawKeeperNodeProcess : IAsyncDisposable
{
    /// <summary>The supervisor's line once its state is recovered from the journal (HeartbeatSupervisor.OnReplaySuccess).</summary>
    public const string RecoveredMarker = "Heartbeat supervisor recovered:";

    private readonly List<NodeLine> _lines = new();
    private readonly object _gate = new();
    private readonly Stopwatch _clock;
    private readonly HttpClient _http;

    internal ClawKeeperNodeProcess(string name, int remotingPort, int opsPort, Process process, Stopwatch clock)
    {
        Name = name;
        RemotingPort = remotingPort;
        OpsPort = opsPort;
        Process = process;
        _clock = clock;
        OpsUri = new Uri($"http://127.0.0.1:{opsPort}/");
        _http = new HttpClient { BaseAddress = OpsUri, Timeout = TimeSpan.FromSeconds(15) };
        process.OutputDataReceived += (_, e) => Add(e.Data);
        process.ErrorDataReceived += (_, e) => Add(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Name { get; }
    public int RemotingPort { get; }
    public int OpsPort { get; }
    public Uri OpsUri { get; }
    public Process Process { get; }
    public string Address => ClawKeeperCluster.AddressOf(RemotingPort);
    public bool HasExited => Process.HasExited;
    public HttpClient Http => _http;

    public int LineCount
    {
        get { lock (_gate) return _lines.Count; }
    }

    public IReadOnlyList<NodeLine> Lines
    {
        get { lock (_gate) return _lines.ToList(); }
    }

    private void Add(string? text)
    {
        if (text is null) return;
        lock (_gate)
        {
            _lines.Add(new NodeLine(_lines.Count, _clock.Elapsed, text));
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>The first line from <paramref name="fromIndex"/> on that matches, or null when the time is up or the process ended.</summary>
    public async Task<NodeLine?> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout, int fromIndex = 0, CancellationToken cancellationToken = default)
    {
        var deadline = Stopwatch.StartNew();
        var next = fromIndex;
        while (true)
        {
            lock (_gate)
            {
                for (; next < _lines.Count; next++)
                    if (match(_lines[next].Text))
                        return _lines[next];
            }
            if (deadline.Elapsed >= timeout) return null;
            if (Process.HasExited)
            {
                // Let the last lines drain before giving up.
                await Task.Delay(200, cancellationToken);
                lock (_gate)
                {
                    for (; next < _lines.Count; next++)
                        if (match(_lines[next].Text))
                            return _lines[next];
                }
                return null;
            }
            await Task.Delay(25, cancellationToken);
        }
    }

    /// <summary>Lines that say the heartbeat supervisor recovered on this node.</summary>
    public IReadOnlyList<NodeLine> Recoveries => Lines.Where(l => l.Text.Contains(RecoveredMarker, StringComparison.Ordinal)).ToList();

    /// <summary>Completed heartbeats this node logged (the supervisor's summary line).</summary>
    public IReadOnlyList<(NodeLine Line, string Id, string Status, int ConsecutiveFailures)> Heartbeats =>
        Lines.Select(l => (l, m: SummaryLine().Match(l.Text)))
            .Where(x => x.m.Success)
            .Select(x => (x.l, x.m.Groups["id"].Value, x.m.Groups["status"].Value, int.Parse(x.m.Groups["n"].Value, CultureInfo.InvariantCulture)))
            .ToList();

    [GeneratedRegex(@"Heartbeat (?<id>heartbeat-\S+) (?<status>pass|fail) in \d+ ms: .*; consecutive failures (?<n>\d+)")]
    public static partial Regex SummaryLine();

    /// <summary>Hard kill: the process tree gets SIGKILL (nothing runs: no leave, no hand-over).</summary>
    public void Kill()
    {
        try
        {
            if (!Process.HasExited) Process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
        }
    }

    /// <summary>SIGTERM: the generic host stops, Akka's coordinated shutdown leaves the cluster (singleton hand-over).</summary>
    public void Terminate()
    {
        if (!Process.HasExited && SendSignal(Process.Id, 15) != 0)
            throw new InvalidOperationException($"kill -TERM {Process.Id} failed: errno {Marshal.GetLastPInvokeError()}");
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);

    /// <summary><c>POST /cluster/leave</c> with the ops token: a graceful leave, then the node shuts down.</summary>
    public async Task<HttpStatusCode> LeaveAsync(string opsToken, CancellationToken cancellationToken = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "cluster/leave") { Content = new ByteArrayContent(Array.Empty<byte>()) };
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + opsToken);
        using var response = await _http.SendAsync(request, cancellationToken);
        return response.StatusCode;
    }

    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancellation = new CancellationTokenSource(timeout);
        try
        {
            await Process.WaitForExitAsync(cancellation.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>The last <paramref name="count"/> lines, for failure messages.</summary>
    public string Tail(int count = 60) =>
        $"--- {Name} ({Address}, ops {OpsPort}, {(Process.HasExited ? "exited " + Process.ExitCode : "running")}) ---\n"
        + string.Join("\n", Lines.TakeLast(count).Select(l => $"{l.At.TotalSeconds,8:0.000}s {l.Text}"));

    public async ValueTask DisposeAsync()
    {
        Kill();
        await WaitForExitAsync(TimeSpan.FromSeconds(10));
        _http.Dispose();
        Process.Dispose();
    }
}

/// <summary>How to start the nodes of a <see cref="ClawKeeperCluster"/>.</summary>
public sealed record ClusterNodeOptions
{
    /// <summary>The built Host: <c>src/ClawKeeper.Host/bin/&lt;cfg&gt;/net10.0/clawkeeper.dll</c>.</summary>
    public required string AssemblyPath { get; init; }

    public required string PlatformDb { get; init; }

    /// <summary>The shared Akka journal (PostgreSQL).</summary>
    public required string JournalDb { get; init; }

    /// <summary>A --config file for every node (heartbeat interval, providers, SMTP ...), or null.</summary>
    public string? ConfigFile { get; init; }

    /// <summary>Lower-hex SHA-256 of the ops token (POST /cluster/leave).</summary>
    public string? OpsTokenSha256 { get; init; }

    /// <summary>More environment for every node (null value = removed).</summary>
    public IReadOnlyDictionary<string, string?> Environment { get; init; } = new Dictionary<string, string?>();

    /// <summary>How many of the first nodes are seed nodes.</summary>
    public int Seeds { get; init; } = 2;
}

/// <summary>
/// N real <c>clawkeeper run</c> processes on 127.0.0.1 forming one cluster: free remoting and ops ports,
/// one seed list, one shared PostgreSQL journal. Every child is killed on dispose, at process exit,
/// and by a watchdog shell if this process dies without either (no orphans on the CI machine).
/// </summary>
public sealed class ClawKeeperCluster : IAsyncDisposable
{
    private static readonly ConcurrentDictionary<int, Process> Live = new();
    private static int _exitHookInstalled;

    private readonly ClusterNodeOptions _options;
    private readonly List<(int Remoting, int Ops)> _ports = new();
    private readonly List<ClawKeeperNodeProcess> _nodes = new();

    public ClawKeeperCluster(ClusterNodeOptions options)
    {
        _options = options;
        Clock = Stopwatch.StartNew();
        LogDirectory = Directory.CreateTempSubdirectory("clawkeeper-cluster-").FullName;
    }

    /// <summary>The clock of every <see cref="NodeLine.At"/>.</summary>
    public Stopwatch Clock { get; }

    public string LogDirectory { get; }

    public IReadOnlyList<ClawKeeperNodeProcess> Nodes => _nodes;

    public IEnumerable<ClawKeeperNodeProcess> Running => _nodes.Where(n => !n.HasExited);

    public static string AddressOf(int port) => $"akka.tcp://clawkeeper@127.0.0.1:{port}";

    /// <summary>A port nobody listens on right now (the OS picks it; free again when this returns).</summary>
    public static int FreeTcpPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>
    /// Starts <paramref name="count"/> nodes: the first alone until its supervisor recovered (it is the
    /// oldest, so it holds the singleton), then the others; returns when every node sees all as up.
    /// </summary>
    public async Task StartAsync(int count, TimeSpan timeout)
    {
        for (var i = 0; i < count; i++) _ports.Add((FreeTcpPort(), FreeTcpPort()));
        var first = StartNode(0);
        if (await first.WaitForLineAsync(l => l.Contains(ClawKeeperNodeProcess.RecoveredMarker), timeout) is null)
            throw new TimeoutException($"the first node did not recover the heartbeat supervisor within {timeout}\n{first.Tail()}");
        for (var i = 1; i < count; i++) StartNode(i);
        await WaitForMembersAsync(count, timeout);
    }

    /// <summary>Until every running node lists exactly <paramref name="count"/> members, all up and reachable.</summary>
    public async Task WaitForMembersAsync(int count, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var views = new List<string>();
            var agreed = true;
            foreach (var node in Running.ToList())
            {
                var (up, view) = await UpMembersAsync(node);
                views.Add($"{node.Name}: {view}");
                if (up != count) agreed = false;
            }
            if (agreed && Running.Count() >= count) return;
            if (deadline.Elapsed > timeout)
                throw new TimeoutException($"the cluster did not reach {count} up members within {timeout}: {string.Join("; ", views)}\n{Tails()}");
            await Task.Delay(250);
        }
    }

    private static async Task<(int Up, string View)> UpMembersAsync(ClawKeeperNodeProcess node)
    {
        try
        {
            var json = await node.Http.GetStringAsync("cluster/members");
            // Akka Management's ClusterMembers: members with their status, and the unreachable ones.
            using var document = System.Text.Json.JsonDocument.Parse(json);
            var unreachable = document.RootElement.GetProperty("unreachable").EnumerateArray().Select(u => u.GetProperty("node").GetString()).ToHashSet();
            var members = document.RootElement.GetProperty("members").EnumerateArray()
                .Select(m => (Status: m.GetProperty("status").GetString(), Reachable: !unreachable.Contains(m.GetProperty("node").GetString())))
                .ToList();
            return (members.Count(m => m is { Status: "Up", Reachable: true }) == members.Count ? members.Count : -1, json);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or System.Text.Json.JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return (-1, e.Message);
        }
    }

    /// <summary>
    /// Starts an exited node again as a new process (named "node1-2", ...): the same remoting and ops ports,
    /// seed list and working directory, so the same local files (journal, spool, submission buffer).
    /// Returns at once; wait for what the test needs (a log line, the ops port).
    /// </summary>
    public ClawKeeperNodeProcess StartAgain(ClawKeeperNodeProcess node)
    {
        if (!node.HasExited) throw new InvalidOperationException($"{node.Name} still runs: kill it first");
        var index = _ports.FindIndex(p => p.Remoting == node.RemotingPort);
        if (index < 0) throw new ArgumentException($"{node.Name} is not a node of this cluster", nameof(node));
        var incarnation = _nodes.Count(n => n.RemotingPort == node.RemotingPort) + 1;
        return StartNode(index, $"node{index + 1}-{incarnation}");
    }

    private ClawKeeperNodeProcess StartNode(int index, string? name = null)
    {
        InstallExitHook();
        var (remoting, ops) = _ports[index];
        var seeds = string.Join(",", _ports.Take(Math.Max(1, _options.Seeds)).Select(p => AddressOf(p.Remoting)));
        name ??= $"node{index + 1}";
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = Directory.CreateDirectory(Path.Combine(LogDirectory, $"node{index + 1}")).FullName,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(_options.AssemblyPath);
        start.ArgumentList.Add("run");
        if (_options.ConfigFile is not null)
        {
            start.ArgumentList.Add("--config");
            start.ArgumentList.Add(_options.ConfigFile);
        }
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("CLAWKEEPER_", StringComparison.Ordinal)).ToList())
            start.Environment.Remove(key);
        start.Environment["CLAWKEEPER_PLATFORM_DB"] = _options.PlatformDb;
        start.Environment["CLAWKEEPER_JOURNAL_DB"] = _options.JournalDb;
        start.Environment["CLAWKEEPER_NODE_HOSTNAME"] = "127.0.0.1";
        start.Environment["CLAWKEEPER_NODE_PORT"] = remoting.ToString(CultureInfo.InvariantCulture);
        start.Environment["CLAWKEEPER_SEED_NODES"] = seeds;
        start.Environment["CLAWKEEPER_OPS_PORT"] = ops.ToString(CultureInfo.InvariantCulture);
        start.Environment["CLAWKEEPER_OPS_BIND_HOSTNAME"] = "127.0.0.1";
        // Every node hosts the API: each on a free port (its submission buffer lives in its own working directory).
        start.Environment["CLAWKEEPER_API_PORT"] = "0";
        if (_options.OpsTokenSha256 is not null) start.Environment["CLAWKEEPER_OPS_TOKEN_SHA256"] = _options.OpsTokenSha256;
        start.Environment["DOTNET_gcServer"] = "0";
        foreach (var (key, value) in _options.Environment)
            if (value is null) start.Environment.Remove(key);
            else start.Environment[key] = value;

        var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start");
        Live[process.Id] = process;
        process.Exited += (_, _) => Live.TryRemove(process.Id, out _);
        process.EnableRaisingEvents = true;
        StartWatchdog(process.Id);
        var node = new ClawKeeperNodeProcess(name, remoting, ops, process, Clock);
        _nodes.Add(node);
        return node;
    }

    /// <summary>The node whose supervisor recovered last among the running nodes (the singleton's current home), or null.</summary>
    public ClawKeeperNodeProcess? SingletonHolder() =>
        Running.Select(n => (Node: n, Last: n.Recoveries.LastOrDefault()))
            .Where(x => x.Last is not null)
            .OrderByDescending(x => x.Last!.At)
            .Select(x => x.Node)
            .FirstOrDefault();

    /// <summary>
    /// The first supervisor recovery on a node other than <paramref name="except"/> logged after <paramref name="after"/>
    /// (the singleton's new home and when it got there), or null when the time is up.
    /// </summary>
    public async Task<(ClawKeeperNodeProcess Node, NodeLine Line)?> WaitForRecoveryElsewhereAsync(ClawKeeperNodeProcess except, TimeSpan after, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < timeout)
        {
            var found = _nodes.Where(n => n != except)
                .SelectMany(n => n.Recoveries.Where(l => l.At >= after).Select(l => (Node: n, Line: l)))
                .OrderBy(x => x.Line.At)
                .FirstOrDefault();
            if (found.Node is not null) return found;
            await Task.Delay(25);
        }
        return null;
    }

    /// <summary>Every node's last lines, for failure messages; the full logs are written to <see cref="LogDirectory"/>.</summary>
    public string Tails(int count = 40)
    {
        foreach (var node in _nodes)
            File.WriteAllLines(Path.Combine(LogDirectory, node.Name + ".log"), node.Lines.Select(l => $"{l.At.TotalSeconds:0.000}s {l.Text}"));
        return $"(full logs in {LogDirectory})\n" + string.Join("\n", _nodes.Select(n => n.Tail(count)));
    }

    private static void InstallExitHook()
    {
        if (Interlocked.Exchange(ref _exitHookInstalled, 1) == 1) return;
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            foreach (var process in Live.Values)
                try
                {
                    process.Kill(entireProcessTree: true);
                }
                catch (Exception)
                {
                    // best effort at exit; the watchdog shell kills it otherwise
                }
        };
    }

    /// <summary>A detached shell that SIGKILLs the node once this process is gone (even after a SIGKILL of the test host).</summary>
    private static void StartWatchdog(int nodePid)
    {
        const string script = """
            exec </dev/null >/dev/null 2>&1
            while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
            kill -0 "$1" 2>/dev/null || kill -9 "$2" 2>/dev/null
            """;
        var setsid = new[] { "/usr/bin/setsid", "/bin/setsid" }.FirstOrDefault(File.Exists);
        var start = new ProcessStartInfo(setsid ?? "/bin/sh") { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        if (setsid is not null)
        {
            start.ArgumentList.Add("-f");
            start.ArgumentList.Add("/bin/sh");
        }
        foreach (var argument in new[] { "-c", script, "clawkeeper-node-watchdog", Environment.ProcessId.ToString(CultureInfo.InvariantCulture), nodePid.ToString(CultureInfo.InvariantCulture) })
            start.ArgumentList.Add(argument);
        try
        {
            using var watchdog = Process.Start(start);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Console.Error.WriteLine($"no watchdog for node process {nodePid}: {e.Message}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_nodes.Count > 0) Tails();
        foreach (var node in _nodes) node.Kill();
        foreach (var node in _nodes) await node.DisposeAsync();
    }
}
