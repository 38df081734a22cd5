using ClawKeeper.Actors.Checks.DataIntegrity;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;

namespace ClawKeeper.Actors.Tests.Checks.DataIntegrity;

/// <summary>
/// The two forms of "written since the last verified round" (real PostgreSQL): the listed transaction ids
/// (<c>xmin = any(@changed_xids)</c>, parallel-safe) select exactly the tuples that <c>age(xmin)</c> selects,
/// and only the listed form lets the planner scan in parallel.
/// </summary>
public class ChangeHorizonSpec
{
    private static async Task<long[]> ChangedIdsAsync(NpgsqlConnection connection, ChangeHorizon horizon)
    {
        await using var command = horizon.Bind(new NpgsqlCommand($"select id from rows_under_watch r where {horizon.ChangedSql("r")} order by id", connection));
        var ids = new List<long>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) ids.Add(reader.GetInt64(0));
        return ids.ToArray();
    }

    [Fact]
    public async Task The_listed_transaction_ids_select_exactly_what_age_selects_and_only_they_scan_in_parallel()
    {
        var database = await TestDatabases.CreateEmptyAsync();
        await Sql.ExecuteAsync(database, "create table rows_under_watch (id bigint primary key, value int not null)");
        for (var i = 0; i < 5; i++)   // five transactions before the verified round
            await Sql.ExecuteAsync(database, "insert into rows_under_watch select g, 0 from generate_series($1::bigint, $1::bigint + 9) g", i * 10L + 1);

        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        long verifiedHorizon;
        await using (var round = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead))
        {
            verifiedHorizon = (await ChangeHorizon.ReadAsync(connection, null, default)).Snapshot;
            await round.CommitAsync();
        }

        // Since: an insert, an update of an old row, a row rewritten in replica mode, and a frozen rewrite.
        await Sql.ExecuteAsync(database, "insert into rows_under_watch values (100, 1)");
        await Sql.ExecuteAsync(database, "update rows_under_watch set value = 2 where id = 7");
        await Sql.ExecuteAsync(database, "set session_replication_role = replica; update rows_under_watch set value = 3 where id = 23");
        await Sql.ExecuteAsync(database, "update rows_under_watch set value = 4 where id = 41");
        await Sql.ExecuteAsync(database, "vacuum (freeze) rows_under_watch");

        await using var check = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead);
        var listed = await ChangeHorizon.ReadAsync(connection, verifiedHorizon, default);
        var aged = listed with { ListLimit = 0 };
        Assert.NotNull(listed.ChangedXids);
        Assert.Null(aged.ChangedXids);
        Assert.Contains("any(@changed_xids)", listed.ChangedSql("r"));
        Assert.Contains("age(r.xmin)", aged.ChangedSql("r"));

        var byList = await ChangedIdsAsync(connection, listed);
        var byAge = await ChangedIdsAsync(connection, aged);
        // Exactly these four, unless a transaction of another database on the server was still open at the verified
        // round (the snapshot horizon is server-wide): then the rows inserted after it are re-examined too.
        Assert.Subset(byAge.ToHashSet(), new HashSet<long> { 7, 23, 41, 100 });
        Assert.Equal(byAge, byList);

        // With parallel plans made free, only the listed predicate is evaluated in parallel workers (age() is
        // parallel-restricted: the workers may only ship every tuple to the leader, which tests them all).
        await Sql.ExecuteAsync(connection, "set local parallel_setup_cost = 0; set local parallel_tuple_cost = 0; set local min_parallel_table_scan_size = 0");
        async Task<string> PlanAsync(ChangeHorizon horizon)
        {
            await using var explain = horizon.Bind(new NpgsqlCommand($"explain (costs off) select count(*) filter (where {horizon.ChangedSql("r")}) from rows_under_watch r", connection));
            var lines = new List<string>();
            await using var reader = await explain.ExecuteReaderAsync();
            while (await reader.ReadAsync()) lines.Add(reader.GetString(0));
            return string.Join("\n", lines);
        }
        Assert.Contains("Partial Aggregate", await PlanAsync(listed));
        Assert.DoesNotContain("Partial Aggregate", await PlanAsync(aged));
    }

    [Fact]
    public void The_listed_ids_wrap_around_32_bits_and_skip_the_special_ids()
    {
        var horizon = new ChangeHorizon(Snapshot: (1L << 32) + 2, Limit: 6, CommitTimestamps: false, Why: null) { Previous = (1L << 32) - 3 };
        Assert.Equal([4294967293u, 4294967294u, 4294967295u, 3u], horizon.ChangedXids!);
        Assert.Null((horizon with { Limit = ChangeHorizon.MaxListedXids + 1 }).ChangedXids);
        Assert.Null((horizon with { Limit = null }).ChangedXids);
    }
}
