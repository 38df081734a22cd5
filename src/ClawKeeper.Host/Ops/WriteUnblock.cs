using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.DataIntegrity;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Actors.Hosting;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Platform.WriteBlocks;
using Npgsql;

namespace ClawKeeper.Host.Ops;

/// <summary>What lifting a write block came to.</summary>
public enum UnblockResult
{
    /// <summary>The block was lifted (audited by <c>lift_write_block</c>).</summary>
    Lifted,

    /// <summary>No block was open (or another super_admin lifted it first).</summary>
    NothingOpen,

    /// <summary>The connection may not lift a block (the monitoring role): super_admin's database connection is needed (<see cref="WriteUnblock.AdminVariable"/>).</summary>
    NotPermitted,

    /// <summary>A data-integrity check still fails (or could not be evaluated) and the lift was not forced: the block stays.</summary>
    StillFailing,
}

/// <param name="Block">The open block as found before lifting (null when none was open).</param>
/// <param name="Failing">The data-integrity checks that failed or errored when re-run (empty when all passed).</param>
/// <param name="LiftReason">The reason recorded, with the forced checks named when the lift was forced.</param>
public sealed record UnblockOutcome(UnblockResult Result, WriteBlockRow? Block, IReadOnlyList<CheckResult> Failing, long? LiftedId, string? LiftedBy, string? LiftReason);

/// <summary>
/// Lifting the write block, the one implementation behind <c>clawkeeper writes unblock</c> and
/// <c>POST /writes/unblock</c> (the caller has already checked the super_admin credential): the
/// four data-integrity checks are re-run in full, against the heartbeat's verified positions; while one fails or cannot be evaluated the block
/// stays unless forced (the forced checks are named in the recorded reason); the lift is written
/// and audited by the database (<c>lift_write_block</c>: <c>lifted_by</c>, <c>lift_reason</c>, the
/// system tenant's audit chain).
/// </summary>
public sealed class WriteUnblock
{
    /// <summary>
    /// super_admin's own database connection string (the schema owner, or a role granted EXECUTE on
    /// <c>lift_write_block</c>), used for the lift only. The nodes and <c>check</c> connect as the
    /// monitoring role, which may not lift (docs/security.md). Never logged.
    /// </summary>
    public const string AdminVariable = "CLAWKEEPER_ADMIN_DB";

    private readonly NpgsqlDataSource _platform;
    private readonly NpgsqlDataSource? _admin;
    private readonly DataIntegritySettings _integrity;
    private readonly Func<CancellationToken, Task<IntegrityWatermarks>>? _anchors;

    /// <param name="platform">Reads the block and re-runs the checks (the monitoring role will do).</param>
    /// <param name="admin">Lifts the block: super_admin's connection; null = <paramref name="platform"/> (which must then be allowed to lift).</param>
    /// <param name="anchors">
    /// Reads the heartbeat's verified positions (from the journal: <see cref="IntegrityAnchors"/>); the re-run
    /// compares against them like a full verification of the heartbeat does, so a chain rewritten consistently or
    /// truncated after it was verified keeps the block. Null: no positions are known (nothing to compare).
    /// </param>
    public WriteUnblock(NpgsqlDataSource platform, DataIntegritySettings integrity, NpgsqlDataSource? admin = null,
        Func<CancellationToken, Task<IntegrityWatermarks>>? anchors = null)
    {
        _platform = platform;
        _integrity = integrity;
        _admin = admin;
        _anchors = anchors;
    }

    /// <summary>The admin connection string from <see cref="AdminVariable"/>, or null when unset.</summary>
    public static string? AdminConnectionStringFromEnvironment() =>
        Environment.GetEnvironmentVariable(AdminVariable) is { Length: > 0 } value ? value.Trim() : null;

    /// <summary>What to say when the connection used may not lift.</summary>
    public static string NotPermittedProblem(bool adminGiven) => adminGiven
        ? $"the connection in {AdminVariable} may not lift a write block (it needs EXECUTE on lift_write_block: the schema owner, super_admin's connection); the block is unchanged"
        : $"this connection (the monitoring role) may not lift a write block; give super_admin's own database connection in {AdminVariable} (or --admin-db-file); the block is unchanged";

    public async Task<UnblockOutcome> LiftAsync(string liftedBy, string reason, bool force, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(liftedBy);
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        var store = new WriteBlockStore(_platform);
        var current = await store.StatusAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        if (current.Open is not { } open)
            return new UnblockOutcome(UnblockResult.NothingOpen, null, Array.Empty<CheckResult>(), null, null, null);

        // The block stays while the failure that caused it is still there (or cannot be ruled out).
        // Against the verified positions too: what a full verification of the heartbeat would find, no less.
        IntegrityWatermarks? anchors = null;
        CheckResult? unreadable = null;
        if (_anchors is not null)
        {
            try
            {
                anchors = await _anchors(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                unreadable = new CheckResult("audit_log_continuous", CheckStatus.Error, "verified positions not read", "compared against the verified positions",
                    $"the heartbeat's verified positions could not be read from the journal ({ex.GetBaseException().Message}): a chain rewritten after it was verified cannot be ruled out", 0);
            }
        }
        var context = new CheckContext("writes-unblock", DateTimeOffset.UtcNow, null, anchors, FullVerification: true);
        var results = await CheckRunner.RunAllAsync(HeartbeatComponents.DataIntegrity(_platform, _integrity), context, cancellationToken).ConfigureAwait(false);
        var failing = results.Where(r => r.Status is CheckStatus.Fail or CheckStatus.Error).ToList();
        if (unreadable is not null) failing.Insert(0, unreadable);
        if (failing.Count > 0 && !force)
            return new UnblockOutcome(UnblockResult.StillFailing, open, failing, null, null, null);

        var liftReason = failing.Count > 0 ? $"[forced while failing: {string.Join(", ", failing.Select(f => f.Check))}] {reason.Trim()}" : reason.Trim();
        long? lifted;
        try
        {
            lifted = await new WriteBlockStore(_admin ?? _platform).LiftAsync(liftedBy, liftReason, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            return new UnblockOutcome(UnblockResult.NotPermitted, open, failing, null, null, null);
        }
        return lifted is { } id
            ? new UnblockOutcome(UnblockResult.Lifted, open, failing, id, liftedBy, liftReason)
            : new UnblockOutcome(UnblockResult.NothingOpen, open, failing, null, null, null);
    }

    /// <summary>
    /// Records a refused super_admin attempt as an <c>unauthorized_access</c> security event (the
    /// heartbeat's <c>unauthorized_access_attempts</c> check reports it). Never the presented
    /// credential. Best effort: the refusal stands when the database is down.
    /// </summary>
    public static async Task RecordRefusedAttemptAsync(NpgsqlDataSource platform, string source, string refusal, string who, CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await platform.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (var context = new NpgsqlCommand("select set_config('app.tenant_id', 'system', true)", connection, transaction))
                await context.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            await using (var insert = new NpgsqlCommand(
                "insert into security_events (tenant_id, kind, source, detail) values ('system', 'unauthorized_access', @source, jsonb_build_object('refusal', @refusal, 'by', @who))",
                connection, transaction))
            {
                insert.Parameters.AddWithValue("source", source);
                insert.Parameters.AddWithValue("refusal", refusal);
                insert.Parameters.AddWithValue("who", who);
                await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (NpgsqlException)
        {
            // The refusal itself stands; recording it is best effort when the database is down.
        }
    }
}
