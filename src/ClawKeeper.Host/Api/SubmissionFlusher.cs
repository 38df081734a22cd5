using ClawKeeper.Platform.Api;
using Npgsql;
using Serilog;

namespace ClawKeeper.Host.Api;

/// <summary>
/// Writes the buffered submissions to <c>tasks</c> once the database is back, oldest first, each
/// exactly once (insert idempotent by task id, removed from the buffer only after the insert
/// committed). While the database is down it retries with exponential backoff and jitter
/// (<see cref="ApiSettings.ReconnectMinBackoff"/> .. <see cref="ApiSettings.ReconnectMaxBackoff"/>) and
/// reopens the <see cref="DatabaseGate"/> when a round trip succeeds.
/// </summary>
public sealed class SubmissionFlusher : IAsyncDisposable
{
    private const int BatchSize = 100;
    private static readonly ILogger Log = Serilog.Log.ForContext("SourceContext", "ClawKeeper.Api.Flusher");

    private readonly SubmissionBuffer _buffer;
    private readonly ApiTaskStore _tasks;
    private readonly NpgsqlDataSource _platform;
    private readonly DatabaseGate _gate;
    private readonly ApiSettings _settings;
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;
    private long _flushed;
    private int _disposed;

    public SubmissionFlusher(SubmissionBuffer buffer, ApiTaskStore tasks, NpgsqlDataSource platform, DatabaseGate gate, ApiSettings settings)
    {
        _buffer = buffer;
        _tasks = tasks;
        _platform = platform;
        _gate = gate;
        _settings = settings;
        _gate.Closed += Wake;
    }

    /// <summary>Tasks written from the buffer to the database since start.</summary>
    public long Flushed => Interlocked.Read(ref _flushed);

    public void Start() => _loop ??= Task.Run(() => RunAsync(_stop.Token));

    /// <summary>Something was buffered or the gate closed: look now rather than at the next poll.</summary>
    public void Wake() => _wake.Release();

    private async Task RunAsync(CancellationToken ct)
    {
        var failures = 0;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var pending = await _buffer.CountAsync(ct).ConfigureAwait(false);
                if (pending == 0 && _gate.Available)
                {
                    failures = 0;
                    await _wake.WaitAsync(TimeSpan.FromSeconds(5), ct).ConfigureAwait(false);
                    continue;
                }
                if (pending == 0)
                    await ProbeAsync(ct).ConfigureAwait(false);
                else
                    await FlushAsync(ct).ConfigureAwait(false);
                if (failures > 0)
                    Log.Information("Platform database reachable again after {Failures} failed attempt(s); {Pending} buffered task(s) written so far", failures, Flushed);
                failures = 0;
                _gate.MarkAvailable();
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (WritesBlockedException ex)
            {
                var delay = ReconnectBackoff.Delay(failures++, _settings.ReconnectMinBackoff, _settings.ReconnectMaxBackoff, Random.Shared.NextDouble());
                Log.Warning("Buffered tasks wait: the database refuses writes ({Reason}); next attempt in {Delay}", ex.Message, delay);
                await DelayAsync(delay, ct).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                if (ApiTaskStore.IsUnavailable(ex)) _gate.MarkUnavailable($"{ex.GetType().Name}: {ex.Message}");
                var delay = ReconnectBackoff.Delay(failures++, _settings.ReconnectMinBackoff, _settings.ReconnectMaxBackoff, Random.Shared.NextDouble());
                if (failures == 1 || failures % 10 == 0)
                    Log.Warning("Platform database unreachable for the API ({Error}); buffered tasks wait, attempt {Attempt}, next in {Delay}",
                        ex.Message, failures, delay);
                await DelayAsync(delay, ct).ConfigureAwait(false);
            }
        }
    }

    private static async Task DelayAsync(TimeSpan delay, CancellationToken ct)
    {
        try
        {
            await Task.Delay(delay, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
    }

    private async Task ProbeAsync(CancellationToken ct)
    {
        await using var command = _platform.CreateCommand("SELECT 1");
        command.CommandTimeout = (int)Math.Max(1, _settings.CommandTimeout.TotalSeconds);
        await command.ExecuteScalarAsync(ct).ConfigureAwait(false);
    }

    private async Task FlushAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            var batch = await _buffer.OldestAsync(BatchSize, ct).ConfigureAwait(false);
            if (batch.Count == 0) return;
            foreach (var task in batch)
            {
                ApiTaskInsertOutcome outcome;
                try
                {
                    (outcome, _) = await _tasks.InsertAsync(task, ct).ConfigureAwait(false);
                }
                catch (Npgsql.PostgresException ex) when (IsPermanentRefusal(ex))
                {
                    // This task can never be written (e.g. its tenant is gone): set it aside, keep the rest moving.
                    await _buffer.RejectAsync(task.Id, $"{ex.SqlState}: {ex.MessageText}", ct).ConfigureAwait(false);
                    Log.Error("Buffered task {TaskId} of tenant {TenantId} was refused by the database ({SqlState}: {Message}); kept in rejected_submissions of {Path}",
                        task.Id, task.TenantId, ex.SqlState, ex.MessageText, _buffer.Path);
                    continue;
                }
                if (outcome == ApiTaskInsertOutcome.IdTaken)
                {
                    // Ids are derived from the tenant, so this needs a hash collision or a hand-made row; keep the task.
                    await _buffer.RejectAsync(task.Id, "the task id is taken by another tenant's task", ct).ConfigureAwait(false);
                    Log.Error("Buffered task {TaskId} of tenant {TenantId} was not written: its id is taken by another tenant's task; kept in rejected_submissions of {Path}",
                        task.Id, task.TenantId, _buffer.Path);
                    continue;
                }
                await _buffer.RemoveAsync(task.Id, ct).ConfigureAwait(false);
                Interlocked.Increment(ref _flushed);
            }
            _gate.MarkAvailable();
        }
    }

    /// <summary>Refusals of this one row that no retry will change (integrity, data, privilege/RLS); not CK001 (a block is lifted).</summary>
    private static bool IsPermanentRefusal(Npgsql.PostgresException ex) =>
        ex.SqlState != "CK001" && (ex.SqlState.StartsWith("23", StringComparison.Ordinal) || ex.SqlState.StartsWith("22", StringComparison.Ordinal) || ex.SqlState == "42501");

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        _gate.Closed -= Wake;
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            try
            {
                await _loop.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // stopped
            }
        }
        _stop.Dispose();
    }
}
