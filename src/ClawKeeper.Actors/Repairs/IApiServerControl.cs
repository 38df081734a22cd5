namespace ClawKeeper.Actors.Repairs;

/// <summary>
/// The API server hosted by this node, as the heartbeat's repair action sees it
/// (ARCHITECTURE.md §1: "API server down → restart it, alert admin").
/// </summary>
public interface IApiServerControl
{
    /// <summary>The base URL the server listens on now (e.g. <c>http://127.0.0.1:5080</c>); null while it is not listening.</summary>
    Uri? BaseUrl { get; }

    /// <summary>Stops the listener (if it still runs) and starts it again; never throws for an ordinary failure, it reports it.</summary>
    Task<ApiRestartResult> RestartAsync(CancellationToken cancellationToken);
}

/// <summary>What a restart did: whether the listener is up again, and evidence for the report's <c>actions</c>.</summary>
public sealed record ApiRestartResult(bool Listening, string Detail);
