namespace ClawKeeper.Platform.Tests;

public sealed class ConnectionStringsSpec
{
    [Fact]
    public void Describes_host_port_database_and_user_without_the_password()
    {
        var description = ConnectionStrings.Describe(
            "Host=db.internal;Port=6543;Database=books;Username=ck_app;Password=S3cret-Pa55;SSL Mode=Disable");

        Assert.Equal("db.internal:6543/books as ck_app", description);
    }

    [Fact]
    public void Defaults_are_named_when_the_string_leaves_them_out()
    {
        Assert.Equal("localhost:5432/(default database) as (default user)", ConnectionStrings.Describe("Password=S3cret-Pa55"));
    }

    [Theory]
    [InlineData("Host=db;Password=S3cret-Pa55;Unknown Keyword=1")]
    [InlineData("postgres://ck:S3cret-Pa55@db:5432/books")]
    [InlineData("Host=db;Password='S3cret-Pa55")]
    [InlineData("S3cret-Pa55")]
    public void Malformed_strings_give_a_placeholder_that_names_no_secret(string malformed)
    {
        var description = ConnectionStrings.Describe(malformed);

        Assert.Equal(ConnectionStrings.Unparseable, description);
        Assert.DoesNotContain("S3cret", description);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData(null)]
    public void Empty_input_is_described_as_such(string? empty)
    {
        Assert.Equal("(empty connection string)", ConnectionStrings.Describe(empty));
    }

    [Fact]
    public void A_password_that_also_appears_in_another_field_is_masked_there()
    {
        var description = ConnectionStrings.Describe("Host=db;Database=postgres;Username=postgres;Password=postgres");

        Assert.DoesNotContain("postgres", description);
        Assert.Equal("db:5432/*** as ***", description);
    }
}
