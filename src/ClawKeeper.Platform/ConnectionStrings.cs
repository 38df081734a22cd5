using Npgsql;

namespace ClawKeeper.Platform;

/// <summary>Helpers for Npgsql connection strings that must never leak a secret.</summary>
public static class ConnectionStrings
{
    /// <summary>What <see cref="Describe"/> returns for input it cannot parse.</summary>
    public const string Unparseable = "(unparseable connection string)";

    /// <summary>
    /// <c>host:port/database as user</c>, for logs and error messages. Never contains the password
    /// (nor any other setting; a password that equals the user or database name is masked as
    /// <c>***</c> there too); a malformed string gives <see cref="Unparseable"/>.
    /// </summary>
    public static string Describe(string? connectionString)
    {
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            return "(empty connection string)";
        }

        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or InvalidOperationException)
        {
            return Unparseable;
        }

        var host = string.IsNullOrWhiteSpace(builder.Host) ? "localhost" : builder.Host;
        var user = string.IsNullOrWhiteSpace(builder.Username) ? "(default user)" : builder.Username;
        var database = string.IsNullOrWhiteSpace(builder.Database) ? "(default database)" : builder.Database;
        var description = $"{host}:{builder.Port}/{database} as {user}";

        // A password that also appears in another field (Password=postgres;Username=postgres)
        // must not come out through that field either.
        return builder.Password is { Length: > 0 } password
            ? description.Replace(password, "***", StringComparison.Ordinal)
            : description;
    }
}
