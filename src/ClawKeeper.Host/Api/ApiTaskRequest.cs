using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using ClawKeeper.Platform;

namespace ClawKeeper.Host.Api;

/// <summary>
/// The body of <c>POST /api/tasks</c>:
/// <c>{ "orchestrator": "accounts-payable-lead", "kind": "invoice.match", "payload": {...}, "priority": 0, "id": "client-123" }</c>.
/// Only <c>orchestrator</c> is required. <c>id</c> is the client's idempotency key: the task id is
/// derived from it and the key's tenant (<see cref="TaskIdFor"/>), so a repeat returns the same
/// task and two tenants can use the same client id without meeting.
/// </summary>
public sealed partial record ApiTaskRequest(string Orchestrator, string Kind, string PayloadJson, int Priority, string? ClientId)
{
    public const int MinPriority = -1000;
    public const int MaxPriority = 1000;

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$", RegexOptions.CultureInvariant)]
    private static partial Regex ClientIdPattern();

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,63}$", RegexOptions.CultureInvariant)]
    private static partial Regex KindPattern();

    /// <summary>Pure: the request, or an error message a client can act on.</summary>
    public static (ApiTaskRequest? Request, string? Error) Parse(JsonElement body)
    {
        if (body.ValueKind != JsonValueKind.Object)
            return (null, "the body must be a JSON object, e.g. {\"orchestrator\": \"accounts-payable-lead\", \"kind\": \"invoice.match\", \"payload\": {}}");
        var known = new HashSet<string>(StringComparer.Ordinal) { "orchestrator", "kind", "payload", "priority", "id" };
        var unknown = body.EnumerateObject().Select(p => p.Name).Where(n => !known.Contains(n)).ToList();
        if (unknown.Count > 0)
            return (null, $"unknown field(s) {string.Join(", ", unknown.Select(u => $"'{Shorten(u)}'"))}; allowed: orchestrator, kind, payload, priority, id");

        if (!body.TryGetProperty("orchestrator", out var orchestratorElement) || orchestratorElement.ValueKind != JsonValueKind.String)
            return (null, $"'orchestrator' is required: one of {string.Join(", ", Orchestrators.All)}");
        var orchestrator = orchestratorElement.GetString()!;
        if (!Orchestrators.All.Contains(orchestrator))
            return (null, $"unknown orchestrator '{Shorten(orchestrator)}': must be one of {string.Join(", ", Orchestrators.All)}");

        var kind = "generic";
        if (body.TryGetProperty("kind", out var kindElement) && kindElement.ValueKind != JsonValueKind.Null)
        {
            if (kindElement.ValueKind != JsonValueKind.String || !KindPattern().IsMatch(kindElement.GetString()!))
                return (null, "'kind' must be a string of 1-64 lower-case letters, digits, '.', '_' or '-' (e.g. \"invoice.match\")");
            kind = kindElement.GetString()!;
        }

        var payload = "{}";
        if (body.TryGetProperty("payload", out var payloadElement) && payloadElement.ValueKind != JsonValueKind.Null)
        {
            if (payloadElement.ValueKind != JsonValueKind.Object)
                return (null, "'payload' must be a JSON object");
            payload = payloadElement.GetRawText();
        }

        var priority = 0;
        if (body.TryGetProperty("priority", out var priorityElement) && priorityElement.ValueKind != JsonValueKind.Null)
        {
            if (priorityElement.ValueKind != JsonValueKind.Number || !priorityElement.TryGetInt32(out priority) || priority is < MinPriority or > MaxPriority)
                return (null, $"'priority' must be a whole number from {MinPriority} to {MaxPriority}");
        }

        string? clientId = null;
        if (body.TryGetProperty("id", out var idElement) && idElement.ValueKind != JsonValueKind.Null)
        {
            if (idElement.ValueKind != JsonValueKind.String || !ClientIdPattern().IsMatch(idElement.GetString()!))
                return (null, "'id' (your idempotency key) must be 1-100 characters: letters, digits, '.', '_', ':' or '-', starting with a letter or digit");
            clientId = idElement.GetString();
        }
        return (new ApiTaskRequest(orchestrator, kind, payload, priority, clientId), null);
    }

    /// <summary>
    /// The task id: <c>api-</c> + 32 hex of SHA-256(tenant, client id) when the client gave an id
    /// (idempotent per tenant), else <c>api-</c> + a time-ordered GUID.
    /// </summary>
    public static string TaskIdFor(string tenantId, string? clientId) =>
        clientId is null
            ? "api-" + Guid.CreateVersion7().ToString("N")
            : "api-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(tenantId + "\n" + clientId)))[..32];

    private static string Shorten(string value) => value.Length > 40 ? value[..40] + "..." : value;
}
