using ClawKeeper.Actors.Checks;
using ClawKeeper.Actors.Checks.SecurityPosture;
using ClawKeeper.Testing;
using Npgsql;
using Xunit;
using static ClawKeeper.Actors.Tests.Checks.SecurityPosture.SecurityPostureTesting;

namespace ClawKeeper.Actors.Tests.Checks.SecurityPosture;

public class ApiKeysValidCheckSpec
{
    private static async Task AssertNoKeyMaterialAsync(string database, string detail)
    {
        foreach (var row in await Sql.RowsAsync(database, "select key_hash, key_prefix from api_keys"))
        {
            Assert.DoesNotContain((string)row[0]!, detail);
            Assert.DoesNotContain((string)row[1]!, detail);
        }
    }

    [Fact]
    public async Task The_seeded_keys_pass_and_revoked_expired_keys_do_not_count()
    {
        var database = await TestDatabases.CreateSeededAsync();
        // Revoked keys past their expiry are harmless: they must not fail the check.
        Assert.Equal(4, await Sql.ExecuteAsync(database, "update api_keys set expires_at = now() - interval '5 days' where revoked_at is not null"));
        await using var platform = NpgsqlDataSource.Create(database);

        var result = await RunAsync(new ApiKeysValidCheck(platform, Posture));

        Assert.Equal(CheckStatus.Pass, result.Status);
        Assert.Equal("0 expired, 0 expiring soon, of 4 active key(s)", result.Observed);
        Assert.Equal("no active key expired; none expiring within 7 d", result.Threshold);
        Assert.Contains("4 active key(s) examined", result.Detail);
    }

    [Fact]
    public async Task A_key_expiring_in_3_days_warns_and_an_expired_active_key_fails_naming_ids_and_tenants_never_key_material()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await Sql.ExecuteAsync(database, "update api_keys set expires_at = now() + interval '3 days' where id = 'key-t-harbor-dental-primary'");
        await using var platform = NpgsqlDataSource.Create(database);
        var check = new ApiKeysValidCheck(platform, Posture);

        var soon = await RunAsync(check);
        Assert.Equal(CheckStatus.Warn, soon.Status);
        Assert.Equal("0 expired, 1 expiring soon, of 4 active key(s)", soon.Observed);
        Assert.Matches(@"^expiring soon: key-t-harbor-dental-primary \(tenant t-harbor-dental, expires \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, in (3|2\.9) d\)$", soon.Detail);

        await Sql.ExecuteAsync(database, "update api_keys set expires_at = now() - interval '2 days' where id = 'key-t-acme-bakery-primary'");
        var expired = await RunAsync(check);
        Assert.Equal(CheckStatus.Fail, expired.Status);
        Assert.Equal("1 expired, 1 expiring soon, of 4 active key(s)", expired.Observed);
        Assert.Contains("active but expired: key-t-acme-bakery-primary (tenant t-acme-bakery, expired ", expired.Detail);
        Assert.Contains(", 2 d ago)", expired.Detail);
        Assert.Contains("expiring soon: key-t-harbor-dental-primary", expired.Detail);
        await AssertNoKeyMaterialAsync(database, expired.Detail + expired.Observed);
        await AssertNoKeyMaterialAsync(database, soon.Detail + soon.Observed);
    }

    [Fact]
    public async Task No_active_key_warns_that_nothing_was_examined()
    {
        var database = await TestDatabases.CreateSeededAsync();
        await Sql.ExecuteAsync(database, "update api_keys set revoked_at = now() where revoked_at is null");
        await using var platform = NpgsqlDataSource.Create(database);
        var result = await RunAsync(new ApiKeysValidCheck(platform, Posture));
        Assert.Equal(CheckStatus.Warn, result.Status);
        Assert.Contains("nothing was examined", result.Detail);
    }
}
