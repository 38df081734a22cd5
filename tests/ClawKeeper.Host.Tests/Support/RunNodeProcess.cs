using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Xunit;

namespace ClawKeeper.Host.Tests.Support;

/// <summary>
/// One real <c>clawkeeper run</c> process for node specs: free API and ops ports, a config file in its own working
/// directory, the platform database from the test, an embedded SQLite journal; its output is captured and the process
/// tree is killed on dispose.
/// </summary>
public sealed class RunNodeProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private RunNodeProcess(Process process, int apiPort, int opsPort)
    {
        _process = process;
        ApiPort = apiPort;
        OpsPort = opsPort;
    }

    public int ApiPort { get; }

    public int OpsPort { get; }

    /// <summary>Everything the node wrote to stdout and stderr so far.</summary>
    public string Output
    {
        get
        {
            lock (_output) return _output.ToString();
        }
    }

    /// <param name="hocon">The node's config file.</param>
    /// <param name="environment">Extra environment variables (e.g. the ops read token).</param>
    public static RunNodeProcess Start(string platformDb, string hocon, string directoryPrefix, IReadOnlyDictionary<string, string>? environment = null)
    {
        var (apiPort, opsPort) = (FreePort(), FreePort());
        var directory = Directory.CreateTempSubdirectory(directoryPrefix).FullName;
        var config = Path.Combine(directory, "node.conf");
        File.WriteAllText(config, hocon);

        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(ClawKeeperProcess.AssemblyPath);
        foreach (var arg in new[] { "run", "--config", config }) start.ArgumentList.Add(arg);
        start.Environment["CLAWKEEPER_PLATFORM_DB"] = platformDb;
        start.Environment.Remove("CLAWKEEPER_JOURNAL_DB");
        start.Environment["CLAWKEEPER_API_PORT"] = apiPort.ToString();
        start.Environment["CLAWKEEPER_OPS_PORT"] = opsPort.ToString();
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) start.Environment[name] = value;
        var node = new RunNodeProcess(Process.Start(start)!, apiPort, opsPort);
        node._process.OutputDataReceived += (_, e) => { lock (node._output) node._output.AppendLine(e.Data); };
        node._process.ErrorDataReceived += (_, e) => { lock (node._output) node._output.AppendLine(e.Data); };
        node._process.BeginOutputReadLine();
        node._process.BeginErrorReadLine();
        return node;
    }

    /// <summary>Polls the ops port's <c>GET /heartbeat/latest</c> until the first report is there (3 minutes at most).</summary>
    public async Task<JsonElement> FirstReportAsync(HttpClient http)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        while (true)
        {
            Assert.False(_process.HasExited, $"the node exited: {Output}");
            Assert.True(DateTime.UtcNow < deadline, $"no heartbeat report within 3 minutes: {Output}");
            try
            {
                var response = await http.GetAsync($"http://127.0.0.1:{OpsPort}/heartbeat/latest");
                if (response.StatusCode == HttpStatusCode.OK)
                    return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
            }
            catch (HttpRequestException)
            {
                // not up yet
            }
            await Task.Delay(500);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
        _process.Dispose();
    }
}
