using Xunit;

namespace ClawKeeper.Testing;

/// <summary>xUnit class fixture: one migrated platform database shared by the tests of a class
/// (use distinct tenant ids per test, or roll back).</summary>
public sealed class MigratedDatabaseFixture : IAsyncLifetime
{
    public string ConnectionString { get; private set; } = "";

    public async Task InitializeAsync() => ConnectionString = await TestDatabases.CreateMigratedAsync();

    public Task DisposeAsync() => Task.CompletedTask;
}

/// <summary>xUnit class fixture: one migrated and demo-seeded platform database shared by the
/// tests of a class (treat it as read-only, or roll back).</summary>
public sealed class SeededDatabaseFixture : IAsyncLifetime
{
    public string ConnectionString { get; private set; } = "";

    public async Task InitializeAsync() => ConnectionString = await TestDatabases.CreateSeededAsync();

    public Task DisposeAsync() => Task.CompletedTask;
}
