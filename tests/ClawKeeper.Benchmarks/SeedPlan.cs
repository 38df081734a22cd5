using System.Globalization;

namespace ClawKeeper.Benchmarks;

/// <summary>One journal line to write (id 0 = let the identity column assign it).</summary>
public readonly record struct PlannedLine(long Id, string AccountId, long DebitCents, long CreditCents);

/// <summary>One balanced journal entry.</summary>
public sealed record PlannedEntry(long Number, int Tenant, string Id, DateTime PostedAt, PlannedLine[] Lines);

/// <summary>The content of one audit entry (seq, prev_hash and hash aside).</summary>
public readonly record struct PlannedAudit(
    int Tenant, long Seq, DateTime OccurredAt, long OccurredAtMicros, string Actor, string Action, string? EntityType, string? EntityId, string Payload);

/// <summary>
/// The deterministic data set: tenants, their charts of accounts, audit entries and journal
/// entries. Everything is a pure function of the options, so the bulk loader, the sample check and
/// the appended rows agree without keeping 10M rows in memory.
/// </summary>
public sealed class SeedPlan
{
    public static readonly DateTime Epoch = new(2025, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    /// <summary>Two accounts of each type per tenant: (code, name, type).</summary>
    public static readonly (string Code, string Name, string Type)[] Accounts =
    [
        ("1000", "Cash", "asset"), ("1100", "Receivables", "asset"),
        ("2000", "Payables", "liability"), ("2100", "Loans", "liability"),
        ("3000", "Owner equity", "equity"), ("3100", "Retained earnings", "equity"),
        ("4000", "Sales", "revenue"), ("4100", "Services", "revenue"),
        ("5000", "Salaries", "expense"), ("5100", "Software", "expense"),
    ];

    private const int Asset = 0, Liability = 1, Equity = 2, Revenue = 3, Expense = 4;

    /// <summary>Entry shapes (debit type, credit type): sales, expenses, borrowing, capital, repayment.</summary>
    private static readonly (int Debit, int Credit)[] Patterns =
        [(Asset, Revenue), (Expense, Asset), (Asset, Liability), (Asset, Equity), (Liability, Asset)];

    private static readonly string[] Actions = ["invoice.created", "invoice.approved", "payment.recorded", "journal.posted", "bank.reconciled", "task.completed"];
    private static readonly string[] EntityTypes = ["invoice", "invoice", "payment", "journal_entry", "bank_transaction", "task"];
    private static readonly string[] ActorNames = ClawKeeper.Platform.Orchestrators.All.Select(o => "agent:" + o).ToArray();

    public SeedPlan(BenchOptions options)
    {
        Tenants = options.Tenants;
        AuditRows = options.AuditRows;
        JournalLines = options.JournalLines;
        Layout = options.Layout;
        var width = Math.Max(4, Tenants.ToString(CultureInfo.InvariantCulture).Length);
        TenantIds = Enumerable.Range(1, Tenants).Select(i => "t-" + i.ToString(CultureInfo.InvariantCulture).PadLeft(width, '0')).ToArray();
    }

    public int Tenants { get; }
    public long AuditRows { get; }
    public long JournalLines { get; }
    public AuditLayout Layout { get; }
    public string[] TenantIds { get; }

    public static string AccountId(string tenantId, string code) => tenantId + ":" + code;

    public long ChainLength(int tenant) => AuditRows / Tenants + (tenant < AuditRows % Tenants ? 1 : 0);

    /// <summary>(tenant, seq) in the physical order of the bulk load.</summary>
    public IEnumerable<(int Tenant, long Seq)> AuditOrder()
    {
        if (Layout == AuditLayout.Interleaved)
        {
            for (long g = 0; g < AuditRows; g++)
                yield return ((int)(g % Tenants), g / Tenants + 1);
        }
        else
        {
            for (var t = 0; t < Tenants; t++)
            {
                var length = ChainLength(t);
                for (long seq = 1; seq <= length; seq++)
                    yield return (t, seq);
            }
        }
    }

    /// <summary>The seeded entry (tenant, seq): one second apart in platform-wide time order. Every
    /// tenth has no entity (NULL fields), every thousandth a non-ASCII actor (UTF-8 byte lengths).</summary>
    public PlannedAudit Audit(int tenant, long seq)
    {
        var n = (seq - 1) * Tenants + tenant;
        var occurredAt = Epoch.AddSeconds(n);
        var micros = (occurredAt - DateTime.UnixEpoch).Ticks / 10;
        var actor = n % 1000 == 999 ? "user:zoë.müller@example.com" : ActorNames[n % ActorNames.Length];
        var kind = (int)(n % Actions.Length);
        var noEntity = n % 10 == 7;
        return new PlannedAudit(
            tenant, seq, occurredAt, micros, actor, Actions[kind],
            noEntity ? null : EntityTypes[kind],
            noEntity ? null : EntityTypes[kind] + "-" + n.ToString(CultureInfo.InvariantCulture),
            // jsonb's canonical text of this object: exactly what audit_entry_canonical reads back.
            "{\"n\": " + n.ToString(CultureInfo.InvariantCulture) + "}");
    }

    /// <summary>Balanced entries totalling exactly <paramref name="totalLines"/> lines, tenants in
    /// turn; mostly two lines, every fourth entry of a tenant three (one debit split over two
    /// credits). Line ids from <paramref name="firstLineId"/> (0 = identity assigns them).</summary>
    public IEnumerable<PlannedEntry> Entries(long totalLines, string idPrefix, long firstLineId, DateTime postedFrom)
    {
        var remaining = totalLines;
        var lineId = firstLineId;
        for (long k = 0; remaining > 0; k++)
        {
            var tenant = (int)(k % Tenants);
            var round = k / Tenants;
            var size = round % 4 == 3 ? 3 : 2;
            if (remaining - size == 1) size++;
            if (size > remaining) size = (int)remaining;
            remaining -= size;

            var tenantId = TenantIds[tenant];
            var (debitType, creditType) = Patterns[round % Patterns.Length];
            var variant = (int)((round / Patterns.Length) % 2);
            var amount = 100 + (k * 7919 % 250_000);
            var lines = new PlannedLine[size];
            lines[0] = new PlannedLine(Next(), AccountId(tenantId, Accounts[debitType * 2 + variant].Code), amount, 0);
            var credits = size - 1;
            for (var i = 0; i < credits; i++)
            {
                var part = i < credits - 1 ? amount / credits : amount - amount / credits * (credits - 1);
                lines[i + 1] = new PlannedLine(Next(), AccountId(tenantId, Accounts[creditType * 2 + (variant + i) % 2].Code), 0, part);
            }

            yield return new PlannedEntry(k, tenant, idPrefix + k.ToString(CultureInfo.InvariantCulture), postedFrom.AddSeconds(k * 30), lines);
        }

        long Next() => firstLineId == 0 ? 0 : lineId++;
    }
}
