namespace ClawKeeper.Platform.Seeding;

/// <summary>One demo tenant; <paramref name="AmountPercent"/> scales its book amounts so tenants differ.</summary>
public sealed record DemoTenant(string Id, string Name, int AmountPercent);

internal sealed record DemoAccount(string Code, string Name, string Type);

internal sealed record DemoJournalLine(string AccountCode, long DebitCents, long CreditCents);

internal sealed record DemoJournalEntry(string Id, int DaysAgo, string Description, IReadOnlyList<DemoJournalLine> Lines)
{
    public long TotalCents => Lines.Sum(line => line.DebitCents);
}

/// <summary>A task whose timestamps are "seconds before now()" (null = not set).</summary>
internal sealed record DemoTask(
    string Id,
    string TenantId,
    string Orchestrator,
    string Kind,
    string Status,
    string Summary,
    int Priority,
    int CreatedSecondsAgo,
    int? AssignedSecondsAgo,
    int? StartedSecondsAgo,
    int? CompletedSecondsAgo,
    int Attempts,
    string? LastError,
    string? ClaimedBy,
    long Tokens);

internal sealed record DemoIntegration(string Provider, int LastSuccessSecondsAgo, int ImportedItems);

/// <summary>An audit entry to append, <paramref name="SecondsAgo"/> before now().</summary>
internal sealed record DemoAuditEntry(long SecondsAgo, string Actor, string Action, string EntityType, string EntityId, string PayloadJson);

/// <summary>
/// The demo platform as data (no I/O): tenants, their books, tasks and integrations, arranged so
/// that a heartbeat passes every check on it. All times are relative to the seeding transaction's now().
/// </summary>
internal static class DemoPlatformPlan
{
    public static IReadOnlyList<DemoTenant> Tenants { get; } =
    [
        new("t-acme-bakery", "Acme Bakery", 100),
        new("t-harbor-dental", "Harbor Dental", 137),
        new("t-northwind-legal", "Northwind Legal", 212),
        new("t-summit-hvac", "Summit HVAC", 85),
    ];

    public static IReadOnlyList<DemoAccount> ChartOfAccounts { get; } =
    [
        new("1000", "Cash", "asset"),
        new("1100", "Accounts Receivable", "asset"),
        new("1500", "Equipment", "asset"),
        new("2000", "Accounts Payable", "liability"),
        new("2100", "Bank Loan", "liability"),
        new("2200", "Payroll Liabilities", "liability"),
        new("3000", "Owner's Equity", "equity"),
        new("4000", "Sales Revenue", "revenue"),
        new("5000", "Cost of Goods Sold", "expense"),
        new("5100", "Rent", "expense"),
        new("5200", "Payroll", "expense"),
    ];

    public static string AccountId(string tenantId, string code) => $"acct-{tenantId}-{code}";

    public static IReadOnlyList<DemoJournalEntry> JournalEntries(DemoTenant tenant)
    {
        long Scale(long baseCents) => baseCents * tenant.AmountPercent / 100;

        DemoJournalEntry Simple(int number, int daysAgo, string description, string debit, string credit, long baseCents)
        {
            var cents = Scale(baseCents);
            return new DemoJournalEntry(
                EntryId(tenant.Id, number), daysAgo, description,
                [new DemoJournalLine(debit, cents, 0), new DemoJournalLine(credit, 0, cents)]);
        }

        var payrollCash = Scale(410_000);
        var payrollWithheld = Scale(70_000);
        var entries = new List<DemoJournalEntry>
        {
            Simple(1, 60, "Owner investment", "1000", "3000", 5_000_000),
            Simple(2, 55, "Bank loan drawn", "1000", "2100", 2_000_000),
            Simple(3, 50, "Equipment purchase", "1500", "1000", 1_800_000),
            Simple(4, 40, "Invoice to customer", "1100", "4000", 950_000),
            Simple(5, 35, "Cash sales", "1000", "4000", 420_000),
            Simple(6, 30, "Customer payment received", "1000", "1100", 600_000),
            Simple(7, 25, "Supplier bill", "5000", "2000", 310_000),
            Simple(8, 20, "Monthly rent", "5100", "1000", 250_000),
            new(EntryId(tenant.Id, 9), 10, "Payroll run",
            [
                new DemoJournalLine("5200", payrollCash + payrollWithheld, 0),
                new DemoJournalLine("1000", 0, payrollCash),
                new DemoJournalLine("2200", 0, payrollWithheld),
            ]),
            Simple(10, 7, "Supplier payment", "2000", "1000", 200_000),
            Simple(11, 3, "Loan repayment", "2100", "1000", 150_000),
        };

        foreach (var entry in entries)
        {
            if (entry.Lines.Sum(line => line.DebitCents) != entry.Lines.Sum(line => line.CreditCents))
            {
                throw new InvalidOperationException($"Demo journal entry {entry.Id} is not balanced");
            }
        }

        return entries;
    }

    private static string EntryId(string tenantId, int number) => $"je-{tenantId}-{number:00}";

    public static IReadOnlyList<DemoIntegration> Integrations(int tenantIndex)
    {
        var integrations = new List<DemoIntegration>
        {
            new("plaid", 600 + 120 * tenantIndex, 40 + 7 * tenantIndex),
            new("stripe", 900 + 150 * tenantIndex, 12 + 3 * tenantIndex),
        };
        if (tenantIndex is 0 or 1)
        {
            integrations.Add(new DemoIntegration("quickbooks", 1500 + 200 * tenantIndex, 25 + tenantIndex));
        }

        if (tenantIndex == 2)
        {
            integrations.Add(new DemoIntegration("xero", 1800, 31));
        }

        return integrations;
    }

    private static readonly Dictionary<string, (string Kind, string Summary)> WorkByOrchestrator = new()
    {
        [Orchestrators.Cfo] = ("cash_forecast", "13-week cash forecast"),
        [Orchestrators.AccountsPayableLead] = ("bill_entry", "Enter supplier bill"),
        [Orchestrators.AccountsReceivableLead] = ("invoice_follow_up", "Follow up overdue invoice"),
        [Orchestrators.ReconciliationLead] = ("bank_reconciliation", "Reconcile bank feed"),
        [Orchestrators.ComplianceLead] = ("sales_tax_review", "Review sales tax return"),
        [Orchestrators.ReportingLead] = ("monthly_report", "Prepare monthly P&L"),
        [Orchestrators.IntegrationLead] = ("provider_sync", "Sync provider transactions"),
        [Orchestrators.DataEtlLead] = ("statement_import", "Import bank statement"),
        [Orchestrators.SupportLead] = ("customer_question", "Answer customer question"),
    };

    /// <summary>
    /// Platform-wide task plan (69 tasks): 18 pending (2 per orchestrator), 4 assigned a few minutes
    /// ago, 5 running (started 2–9 minutes ago), 40 completed in the last 30 minutes taking 2–30 s
    /// each, 1 failed in that window (1 of 41 finished ≈ 2.4 %), 1 cancelled.
    /// </summary>
    public static IReadOnlyList<DemoTask> Tasks()
    {
        var tenants = Tenants;
        var orchestrators = Orchestrators.All;
        var numbers = tenants.ToDictionary(tenant => tenant.Id, _ => 0);
        var tasks = new List<DemoTask>();

        DemoTask Task(
            string tenantId, string orchestrator, string status, int createdAgo, int? assignedAgo = null,
            int? startedAgo = null, int? completedAgo = null, int attempts = 0, string? lastError = null, int priority = 0)
        {
            var number = ++numbers[tenantId];
            var (kind, summary) = WorkByOrchestrator[orchestrator];
            var claimedBy = status is "assigned" or "running" ? $"demo-seed/{orchestrator}" : null;
            var tokens = status is "completed" or "failed" ? 900 + (number * 523 + orchestrator.Length * 97) % 3100 : 0;
            return new DemoTask(
                $"task-{tenantId}-{number:000}", tenantId, orchestrator, kind, status, summary, priority,
                createdAgo, assignedAgo, startedAgo, completedAgo, attempts, lastError, claimedBy, tokens);
        }

        for (var i = 0; i < 18; i++)
        {
            tasks.Add(Task(tenants[i % 4].Id, orchestrators[i / 2], "pending", createdAgo: 60 + 37 * i, priority: i % 3));
        }

        for (var i = 0; i < 4; i++)
        {
            tasks.Add(Task(tenants[i].Id, orchestrators[2 * i % 9], "assigned",
                createdAgo: 300 + 60 * i, assignedAgo: 240 + 60 * i));
        }

        for (var i = 0; i < 5; i++)
        {
            var startedAgo = 120 + 100 * i;
            tasks.Add(Task(tenants[i % 4].Id, orchestrators[(2 * i + 1) % 9], "running",
                createdAgo: startedAgo + 30, assignedAgo: startedAgo + 10, startedAgo: startedAgo, attempts: 1));
        }

        for (var i = 0; i < 40; i++)
        {
            var completedAgo = 40 + 34 * i; // 40 s .. 22¾ min ago
            var durationSeconds = 2 + 7 * i % 29;
            var startedAgo = completedAgo + durationSeconds;
            var assignedAgo = startedAgo + 1 + i % 3;
            tasks.Add(Task(tenants[i % 4].Id, orchestrators[i % 9], "completed",
                createdAgo: assignedAgo + 2 + i % 5, assignedAgo: assignedAgo, startedAgo: startedAgo,
                completedAgo: completedAgo, attempts: 1));
        }

        tasks.Add(Task(tenants[1].Id, Orchestrators.ReconciliationLead, "failed",
            createdAgo: 870, assignedAgo: 860, startedAgo: 852, completedAgo: 840, attempts: 3,
            lastError: "Bank feed returned HTTP 503 three times; giving up until the next sync window"));

        tasks.Add(Task(tenants[3].Id, Orchestrators.SupportLead, "cancelled",
            createdAgo: 700, completedAgo: 640));

        return tasks;
    }
}
