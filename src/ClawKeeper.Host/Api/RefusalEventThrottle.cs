using ClawKeeper.Platform.Api;
using ILogger = Serilog.ILogger;

namespace ClawKeeper.Host.Api;

/// <summary>One refused request, as the throttle aggregates it.</summary>
public sealed record ApiRefusal(string TenantId, string Source, string Reason, string? KeyFingerprint, string? KeyId, string Method, string? Path, string Remote, DateTimeOffset At);

/// <summary>
/// Refused API requests become <c>security_events</c> rows of kind <c>unauthorized_access</c>, but at
/// most ONE row per tenant, source and reason per window: the refusals of a window are counted in
/// memory and written when the window ends, with <c>detail.count</c> = how many there were (and the
/// first and last time, a few key fingerprints and paths). A flood of 401s therefore costs one insert
/// per source and reason per window instead of one per request. The row's <c>occurred_at</c> is when
/// it is written, so it always falls into a heartbeat window that has not been evaluated yet
/// (<c>unauthorized_access_attempts</c> sums <c>detail.count</c>). A row that cannot be written (database
/// down, pool busy) stays pending and is retried at the next flush; at most <see cref="MaxPending"/>
/// sources are kept apart, further ones are folded into one "(many sources)" entry.
/// </summary>
public sealed class RefusalEventThrottle : IAsyncDisposable
{
    public const int MaxPending = 10_000;
    private const int SampleSize = 5;
    private static readonly ILogger Log = Serilog.Log.ForContext("SourceContext", "ClawKeeper.Api");

    private readonly Func<string, string, IReadOnlyDictionary<string, object?>, CancellationToken, Task> _write;
    private readonly TimeSpan _window;
    private readonly Func<DateTimeOffset> _clock;
    private readonly object _lock = new();
    private readonly Dictionary<(string Tenant, string Source, string Reason), Entry> _pending = new();
    private readonly SemaphoreSlim _flushing = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;

    /// <param name="write">Inserts one row (tenant, source, detail).</param>
    public RefusalEventThrottle(Func<string, string, IReadOnlyDictionary<string, object?>, CancellationToken, Task> write, TimeSpan window, Func<DateTimeOffset>? clock = null)
    {
        _write = write;
        _window = window;
        _clock = clock ?? (() => DateTimeOffset.UtcNow);
    }

    public static RefusalEventThrottle For(ApiKeyStore keys, TimeSpan window) =>
        new((tenant, source, detail, ct) => keys.RecordUnauthorizedAccessAsync(tenant, source, detail, ct), window);

    /// <summary>Refusals counted and not yet written.</summary>
    public long PendingRefusals
    {
        get
        {
            lock (_lock) return _pending.Values.Sum(e => e.Count);
        }
    }

    /// <summary>Counts <paramref name="refusal"/>; never touches the database.</summary>
    public void Record(ApiRefusal refusal)
    {
        lock (_lock)
        {
            var key = (refusal.TenantId, refusal.Source, refusal.Reason);
            if (!_pending.TryGetValue(key, out var entry))
            {
                if (_pending.Count >= MaxPending) key = (refusal.TenantId, "api (many sources)", refusal.Reason);
                if (!_pending.TryGetValue(key, out entry))
                {
                    entry = new Entry(refusal.At);
                    _pending[key] = entry;
                }
            }
            entry.Count++;
            entry.Last = refusal.At;
            if (refusal.KeyFingerprint is { } key1 && entry.Keys.Count < SampleSize) entry.Keys.Add(key1);
            if (refusal.KeyId is { } id && entry.KeyIds.Count < SampleSize) entry.KeyIds.Add(id);
            if (refusal.Path is { } path && entry.Paths.Count < SampleSize) entry.Paths.Add($"{refusal.Method} {path}");
            entry.Remote = refusal.Remote;
        }
    }

    /// <summary>Starts writing windows as they end (checked every second).</summary>
    public void Start() => _loop ??= Task.Run(LoopAsync);

    private async Task LoopAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
                await FlushAsync(all: false, _stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Writes the entries whose window has ended (all of them with <paramref name="all"/>); returns the rows written.</summary>
    public async Task<int> FlushAsync(bool all, CancellationToken ct)
    {
        await _flushing.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            List<((string Tenant, string Source, string Reason) Key, Entry Entry)> due;
            var now = _clock();
            lock (_lock)
            {
                due = _pending.Where(p => all || now - p.Value.First >= _window).Select(p => (p.Key, p.Value)).ToList();
                foreach (var (key, _) in due) _pending.Remove(key);
            }
            var written = 0;
            foreach (var (key, entry) in due)
            {
                var detail = new Dictionary<string, object?>
                {
                    ["reason"] = key.Reason,
                    ["count"] = entry.Count,
                    ["first"] = entry.First,
                    ["last"] = entry.Last,
                    ["window"] = $"{_window.TotalSeconds:0.###}s",
                    ["keys"] = entry.Keys.ToArray(),
                    ["keyIds"] = entry.KeyIds.ToArray(),
                    ["paths"] = entry.Paths.ToArray(),
                    ["remote"] = entry.Remote,
                };
                try
                {
                    await _write(key.Tenant, key.Source, detail, ct).ConfigureAwait(false);
                    written++;
                    Log.Information("{Count} unauthorized API request(s) from {Source} ({Reason}) recorded in security_events", entry.Count, key.Source, key.Reason);
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
                {
                    // Kept (merged with anything counted meanwhile) and tried again at the next flush.
                    lock (_lock)
                    {
                        if (_pending.TryGetValue(key, out var newer))
                        {
                            newer.Count += entry.Count;
                            newer.First = entry.First;
                        }
                        else _pending[key] = entry;
                    }
                    Log.Warning("{Count} unauthorized API request(s) from {Source} could not be recorded in security_events yet: {Error}",
                        entry.Count, key.Source, ex.Message);
                }
            }
            return written;
        }
        finally
        {
            _flushing.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        if (_loop is not null) await _loop.ConfigureAwait(false);
        try
        {
            using var last = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await FlushAsync(all: true, last.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private sealed class Entry(DateTimeOffset first)
    {
        public DateTimeOffset First { get; set; } = first;
        public DateTimeOffset Last { get; set; } = first;
        public long Count { get; set; }
        public List<string> Keys { get; } = [];
        public List<string> KeyIds { get; } = [];
        public List<string> Paths { get; } = [];
        public string? Remote { get; set; }
    }
}
