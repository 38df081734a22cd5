using Npgsql;

namespace ClawKeeper.Actors.Checks.DataIntegrity;

/// <summary>
/// The triggers that enforce the platform's integrity, and how each must be enabled. PostgreSQL fires a
/// trigger according to <c>pg_trigger.tgenabled</c> and the session's <c>session_replication_role</c>:
/// <c>O</c> (ENABLE, the default) fires in ordinary sessions, <c>A</c> (ENABLE ALWAYS) in every session,
/// <c>R</c> (ENABLE REPLICA) ONLY in replica sessions — so for the application it is as off as <c>D</c>
/// (DISABLE). A trigger that must hold even for a replica, a restore or a superuser working as a replica
/// (the write-block guard, the TRUNCATE handlers) must stay ALWAYS.
/// </summary>
public static class EnforcementTriggers
{
    /// <summary>A trigger the platform relies on: where it is, what it enforces, and whether it must be ENABLE ALWAYS.</summary>
    public sealed record Expected(string Table, string Trigger, string Enforces, bool Always);

    public static readonly IReadOnlyList<string> BooksTables = ["ledger_accounts", "journal_entries", "journal_lines", "ledger_balances"];

    /// <summary>The write-block guard (migration 0002): ENABLE ALWAYS on every books table.</summary>
    public static readonly IReadOnlyList<Expected> WriteBlockGuard = BooksTables
        .SelectMany(t => new[] { new Expected(t, "write_block_guard", "write-block guard", true), new Expected(t, "write_block_guard_truncate", "write-block guard", true) })
        .ToList();

    /// <summary>Every trigger of the platform schema that enforces something (migrations 0001, 0002, 0007).</summary>
    public static readonly IReadOnlyList<Expected> Platform = WriteBlockGuard.Concat(new Expected[]
    {
        new("journal_lines", "ledger_balances_after_insert", "running totals", false),
        new("journal_lines", "ledger_balances_after_update", "running totals", false),
        new("journal_lines", "ledger_balances_after_delete", "running totals", false),
        new("journal_lines", "ledger_balances_after_truncate", "running totals on TRUNCATE", true),
        new("ledger_balances", "ledger_balances_refuse_truncate", "running totals on TRUNCATE", true),
        new("audit_log", "audit_log_assign_chain", "audit chain", false),
        new("audit_log", "audit_log_refuse_update_delete", "append-only audit log", false),
        new("audit_log", "audit_log_refuse_truncate", "append-only audit log", false),
    }).ToList();

    /// <summary>What a <c>tgenabled</c> value means for the application's sessions.</summary>
    public static string Describe(char state) => state switch
    {
        'O' => "enabled (ordinary sessions only)",
        'A' => "ENABLE ALWAYS",
        'R' => "ENABLE REPLICA (ordinary sessions no longer fire it)",
        'D' => "disabled",
        _ => $"in state '{state}'",
    };

    /// <summary>
    /// Everything wrong with enforcement, one line per table: an expected trigger missing, disabled or
    /// replica-only, an ALWAYS trigger changed from ALWAYS; foreign-key (internal) triggers disabled or
    /// replica-only; any other trigger of the schema disabled. Empty when all is enforced.
    /// </summary>
    public static async Task<IReadOnlyList<string>> ProblemsAsync(NpgsqlConnection connection, IReadOnlyList<Expected> expected, bool includeOthers, CancellationToken cancellationToken)
    {
        var triggers = new List<(string Table, string Trigger, char State, bool Internal)>();
        await using (var command = new NpgsqlCommand("""
            select c.relname::text, t.tgname::text, t.tgenabled::text, t.tgisinternal
            from pg_trigger t join pg_class c on c.oid = t.tgrelid
            where c.relnamespace = 'public'::regnamespace
            order by 1, 2
            """, connection) { CommandTimeout = 0 })
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                triggers.Add((reader.GetString(0), reader.GetString(1), reader.GetString(2)[0], reader.GetBoolean(3)));

        var byTable = new SortedDictionary<string, List<string>>(StringComparer.Ordinal);
        void Add(string table, string problem)
        {
            if (!byTable.TryGetValue(table, out var list)) byTable[table] = list = [];
            list.Add(problem);
        }

        if (includeOthers)
        {
            foreach (var table in triggers.Where(t => t.Internal && t.State is 'D' or 'R').GroupBy(t => t.Table))
            {
                var disabled = table.Count(t => t.State == 'D');
                var replica = table.Count(t => t.State == 'R');
                if (disabled > 0) Add(table.Key, $"{disabled} foreign-key enforcement trigger(s) disabled (ALTER TABLE ... DISABLE TRIGGER ALL?)");
                if (replica > 0) Add(table.Key, $"{replica} foreign-key enforcement trigger(s) ENABLE REPLICA (ordinary sessions no longer fire them)");
            }
            var others = triggers.Where(t => !t.Internal && t.State == 'D' && !expected.Any(e => e.Table == t.Table && e.Trigger == t.Trigger));
            foreach (var table in others.GroupBy(t => t.Table))
                Add(table.Key, $"trigger(s) {string.Join(", ", table.Select(t => t.Trigger))} disabled");
        }

        foreach (var want in expected)
        {
            var found = triggers.FirstOrDefault(t => t.Table == want.Table && t.Trigger == want.Trigger);
            if (found.Trigger is null)
                Add(want.Table, $"trigger {want.Trigger} ({want.Enforces}) missing");
            else if (want.Always && found.State != 'A')
                Add(want.Table, $"trigger {want.Trigger} ({want.Enforces}) {Describe(found.State)}, must be ENABLE ALWAYS");
            else if (found.State is 'D' or 'R')
                Add(want.Table, $"trigger {want.Trigger} ({want.Enforces}) {Describe(found.State)}");
        }

        return byTable.Select(t => $"{t.Key}: {string.Join("; ", t.Value)}").ToList();
    }
}
