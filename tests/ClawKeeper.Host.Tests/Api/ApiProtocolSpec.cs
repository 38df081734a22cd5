using System.Text.Json;
using ClawKeeper.Host.Api;
using Xunit;

namespace ClawKeeper.Host.Tests.Api;

/// <summary>Pure parts: the task request, task ids, the reconnect backoff, the presented key.</summary>
public class ApiProtocolSpec
{
    private static (ApiTaskRequest? Request, string? Error) Parse(string json) => ApiTaskRequest.Parse(JsonDocument.Parse(json).RootElement);

    [Fact]
    public void A_minimal_request_gets_defaults_and_a_full_one_keeps_its_values()
    {
        var (minimal, error) = Parse("""{"orchestrator": "cfo"}""");
        Assert.Null(error);
        Assert.Equal(new ApiTaskRequest("cfo", "generic", "{}", 0, null), minimal);

        var (full, _) = Parse("""{"orchestrator": "data-etl-lead", "kind": "bank.import", "payload": {"a": [1, 2]}, "priority": -3, "id": "k:1"}""");
        Assert.Equal(new ApiTaskRequest("data-etl-lead", "bank.import", """{"a": [1, 2]}""", -3, "k:1"), full);
    }

    [Theory]
    [InlineData("""{"orchestrator": "cfo", "kind": "Upper Case"}""", "'kind'")]
    [InlineData("""{"orchestrator": "cfo", "id": "has space"}""", "'id'")]
    [InlineData("""{"orchestrator": 7}""", "'orchestrator' is required")]
    [InlineData("""[]""", "must be a JSON object")]
    public void Bad_fields_are_named(string json, string expected)
    {
        var (request, error) = Parse(json);
        Assert.Null(request);
        Assert.Contains(expected, error);
    }

    [Fact]
    public void Task_ids_are_idempotent_per_tenant_and_distinct_across_tenants()
    {
        Assert.Equal(ApiTaskRequest.TaskIdFor("acme", "x"), ApiTaskRequest.TaskIdFor("acme", "x"));
        Assert.NotEqual(ApiTaskRequest.TaskIdFor("acme", "x"), ApiTaskRequest.TaskIdFor("globex", "x"));
        Assert.NotEqual(ApiTaskRequest.TaskIdFor("acme", null), ApiTaskRequest.TaskIdFor("acme", null));
        Assert.Matches("^api-[0-9a-f]{32}$", ApiTaskRequest.TaskIdFor("acme", "x"));
    }

    [Fact]
    public void The_backoff_doubles_with_jitter_up_to_its_maximum()
    {
        var min = TimeSpan.FromMilliseconds(100);
        var max = TimeSpan.FromSeconds(5);
        Assert.Equal(TimeSpan.FromMilliseconds(50), ReconnectBackoff.Delay(0, min, max, 0));
        Assert.Equal(TimeSpan.FromMilliseconds(100), ReconnectBackoff.Delay(0, min, max, 1));
        Assert.Equal(TimeSpan.FromMilliseconds(600), ReconnectBackoff.Delay(3, min, max, 0.5)); // ceiling 800: 400 + 0.5 x 400
        Assert.Equal(TimeSpan.FromSeconds(5), ReconnectBackoff.Delay(40, min, max, 1));
        Assert.Equal(TimeSpan.FromMilliseconds(2500), ReconnectBackoff.Delay(40, min, max, 0));
    }

    [Fact]
    public void The_key_comes_from_X_Api_Key_or_a_bearer_token()
    {
        Assert.Equal("k1", ApiAuthenticator.PresentedKey(null, "k1"));
        Assert.Equal("k2", ApiAuthenticator.PresentedKey("Bearer k2", null));
        Assert.Null(ApiAuthenticator.PresentedKey("Basic abc", null));
        Assert.Null(ApiAuthenticator.PresentedKey("Bearer   ", ""));
    }
}
