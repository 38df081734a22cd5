namespace ClawKeeper.Actors.Heartbeat;

/// <summary>The write block as the supervisor holds it; <see cref="BlockId"/> is null until the database has it.</summary>
public sealed record WriteBlockState(bool Active, string? Reason, IReadOnlyList<string> Checks, DateTimeOffset? Since, long? BlockId)
{
    public static readonly WriteBlockState None = new(false, null, Array.Empty<string>(), null, null);

    public bool AwaitingDatabase => Active && BlockId is null;

    public WriteBlockReport ToReport() => new(Active, Reason, Since, BlockId);
}

/// <summary>An integrity failure that calls for a write block.</summary>
public sealed record IntegrityFailure(string Reason, IReadOnlyList<string> Checks);
