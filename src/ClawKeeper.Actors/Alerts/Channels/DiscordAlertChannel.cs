using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ClawKeeper.Actors.Alerts.Channels;

/// <summary>
/// The <c>discord</c> channel: one webhook post per notification — a short <c>content</c> line and one embed
/// (title, severity colour, summary, one field per line, heartbeat id in the footer, the status page as link),
/// cut to Discord's limits. 2xx = delivered; 429 = <see cref="DeliveryResult.RetryAfter"/> with Discord's
/// <c>retry_after</c>; anything else = failed. The webhook URL holds a secret token: results name it only as
/// <see cref="Redact"/> does (scheme-less host), never its path. Never throws.
/// </summary>
public sealed class DiscordAlertChannel : IAlertChannel
{
    public const string ChannelName = "discord";

    // https://discord.com/developers/docs/resources/message#embed-object-embed-limits
    public const int MaxContentLength = 2000;
    public const int MaxTitleLength = 256;
    public const int MaxDescriptionLength = 4096;
    public const int MaxFields = 25;
    public const int MaxFieldNameLength = 256;
    public const int MaxFieldValueLength = 1024;
    public const int MaxFooterLength = 2048;
    public const int MaxEmbedTotalLength = 6000;

    public const int ColorCritical = 0xE74C3C;
    public const int ColorWarning = 0xE67E22;
    public const int ColorInfo = 0x3498DB;
    public const int ColorResolved = 0x2ECC71;

    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan DefaultRetryAfter = TimeSpan.FromSeconds(1);

    private const int MaxBodySnippet = 300;

    private readonly HttpClient _http;
    private readonly Uri? _statusPage;
    private readonly TimeSpan _timeout;

    /// <param name="http">The client to post with (owned by the caller).</param>
    /// <param name="statusPage">Linked from the embed title when set.</param>
    /// <param name="timeout">Per post (connect + answer); default 10 s.</param>
    public DiscordAlertChannel(HttpClient http, Uri? statusPage = null, TimeSpan? timeout = null)
    {
        _http = http ?? throw new ArgumentNullException(nameof(http));
        _statusPage = statusPage;
        _timeout = timeout is { } t && t > TimeSpan.Zero ? t : DefaultTimeout;
    }

    public string Name => ChannelName;

    /// <summary><c>discord webhook (discord.com)</c>: how a webhook is named in results and logs; never its path (the token).</summary>
    public static string Redact(Uri webhook)
    {
        ArgumentNullException.ThrowIfNull(webhook);
        if (!webhook.IsAbsoluteUri) return "discord webhook (relative URL)";
        return $"discord webhook ({(webhook.IsDefaultPort ? webhook.IdnHost : webhook.Authority)})";
    }

    public async Task<DeliveryResult> SendAsync(Notification notification, AudienceRoute route, CancellationToken cancellationToken)
    {
        var webhook = route?.DiscordWebhook;
        try
        {
            ArgumentNullException.ThrowIfNull(notification);
            ArgumentNullException.ThrowIfNull(route);
            if (webhook is null)
                return new DeliveryResult.NotConfigured($"discord: no webhook for audience '{route.Audience}'");
            if (!webhook.IsAbsoluteUri || (webhook.Scheme != Uri.UriSchemeHttps && webhook.Scheme != Uri.UriSchemeHttp))
                return new DeliveryResult.Failed($"discord: the webhook of audience '{route.Audience}' is not an absolute http(s) URL");
            return await PostAsync(webhook, notification, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            return new DeliveryResult.Failed(Scrub($"discord: {e.GetType().Name}: {e.Message}", webhook));
        }
    }

    private async Task<DeliveryResult> PostAsync(Uri webhook, Notification notification, CancellationToken cancellationToken)
    {
        var where = Redact(webhook);
        var json = BuildPayload(notification, _statusPage).ToJsonString();
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_timeout);
        try
        {
            using var response = await _http.PostAsync(webhook, content, deadline.Token).ConfigureAwait(false);
            if (response.IsSuccessStatusCode) return new DeliveryResult.Delivered();

            var body = await ReadBodyAsync(response, deadline.Token).ConfigureAwait(false);
            var code = (int)response.StatusCode;
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                var delay = RetryDelay(body, response);
                var scope = IsGlobal(body) ? " (global limit)" : "";
                return new DeliveryResult.RetryAfter(delay,
                    $"{where}: rate limited{scope} (HTTP 429), retry after {delay.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s");
            }
            var snippet = NotificationText.Truncate(NotificationText.OneLine(body), MaxBodySnippet);
            var text = $"HTTP {code.ToString(CultureInfo.InvariantCulture)} {response.ReasonPhrase} from {where}";
            return new DeliveryResult.Failed(Scrub(snippet.Length > 0 ? $"{text}: {snippet}" : text, webhook));
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new DeliveryResult.Failed($"{where}: no answer within {_timeout.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s");
        }
        catch (OperationCanceledException)
        {
            return new DeliveryResult.Failed($"{where}: cancelled");
        }
        catch (HttpRequestException e)
        {
            var inner = e.InnerException is { } i && !e.Message.Contains(i.Message, StringComparison.Ordinal) ? $" ({i.Message})" : "";
            return new DeliveryResult.Failed(Scrub($"{where} unreachable: {e.Message}{inner}", webhook));
        }
    }

    /// <summary>The JSON posted to the webhook (public for the outbox's logs and the specs).</summary>
    public static JsonObject BuildPayload(Notification notification, Uri? statusPage = null)
    {
        var label = NotificationText.Label(notification);
        var title = NotificationText.Title(notification);

        var embedTitle = NotificationText.Truncate($"{label}: {title}", MaxTitleLength);
        var footer = NotificationText.Truncate(
            string.IsNullOrWhiteSpace(notification.HeartbeatId) ? $"ClawKeeper {NotificationText.OneLine(notification.Id)}" : NotificationText.OneLine(notification.HeartbeatId),
            MaxTitleLength);
        var description = string.IsNullOrWhiteSpace(notification.Summary) ? title : notification.Summary.Trim();

        // One field per line; above 25 lines the last field names the rest.
        var names = new List<string>();
        var values = new List<string>();
        var shown = notification.Lines.Count > MaxFields ? MaxFields - 1 : notification.Lines.Count;
        foreach (var line in notification.Lines.Take(shown))
        {
            names.Add(NotificationText.LineName(line));
            var measured = NotificationText.ObservedVsThreshold(line);
            var detail = line.Detail?.Trim() ?? "";
            values.Add((measured, detail) switch
            {
                ({ Length: 0 }, { Length: 0 }) => "-",
                (_, { Length: 0 }) => measured,
                ({ Length: 0 }, _) => detail,
                _ => $"{measured}\n{detail}",
            });
        }
        if (notification.Lines.Count > shown)
        {
            var rest = notification.Lines.Skip(shown).ToList();
            names.Add($"… and {rest.Count.ToString(CultureInfo.InvariantCulture)} more");
            values.Add(string.Join(", ", rest.Select(NotificationText.LineName)));
        }

        // Every text must fit its own limit, and all of them together the embed's 6000 characters.
        var wants = new List<int> { Math.Min(description.Length, MaxDescriptionLength) };
        wants.AddRange(names.Select(n => Math.Min(n.Length, MaxFieldNameLength)));
        wants.AddRange(values.Select(v => Math.Min(v.Length, MaxFieldValueLength)));
        var caps = Share(wants, MaxEmbedTotalLength - embedTitle.Length - footer.Length);

        var fields = new JsonArray();
        for (var i = 0; i < names.Count; i++)
        {
            fields.Add(new JsonObject
            {
                ["name"] = NonEmpty(NotificationText.Truncate(names[i], caps[1 + i])),
                ["value"] = NonEmpty(NotificationText.Truncate(values[i], caps[1 + names.Count + i])),
                ["inline"] = false,
            });
        }

        var embed = new JsonObject
        {
            ["title"] = embedTitle,
            ["description"] = NotificationText.Truncate(description, caps[0]),
            ["color"] = ColorFor(notification),
            ["fields"] = fields,
            ["footer"] = new JsonObject { ["text"] = footer },
            ["timestamp"] = notification.CreatedAt.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
        };
        if (statusPage is not null) embed["url"] = statusPage.AbsoluteUri;

        return new JsonObject
        {
            ["content"] = NotificationText.Truncate($"**{label}** ClawKeeper: {title}", MaxContentLength),
            ["embeds"] = new JsonArray(embed),
            // Text from checks must never ping @everyone or a role.
            ["allowed_mentions"] = new JsonObject { ["parse"] = new JsonArray() },
        };
    }

    /// <summary>Green when resolved; otherwise by severity: critical red, warning orange, info blue (unknown = red).</summary>
    public static int ColorFor(Notification notification)
    {
        if (notification.Kind == NotificationKind.Resolved) return ColorResolved;
        return (notification.Severity ?? "").Trim().ToLowerInvariant() switch
        {
            "warning" or "warn" or "medium" => ColorWarning,
            "info" or "information" or "notice" or "low" => ColorInfo,
            _ => ColorCritical,
        };
    }

    /// <summary>
    /// Caps for texts that want <paramref name="wants"/> characters so that together they stay within
    /// <paramref name="budget"/>: short texts keep their length, the long ones share the rest equally.
    /// </summary>
    internal static int[] Share(IReadOnlyList<int> wants, int budget)
    {
        if (wants.Sum() <= budget) return wants.ToArray();
        int low = 0, high = wants.Max();
        while (low < high)
        {
            var level = (low + high + 1) / 2;
            if (wants.Sum(w => Math.Min(w, level)) <= budget) low = level;
            else high = level - 1;
        }
        return wants.Select(w => Math.Max(1, Math.Min(w, low))).ToArray();
    }

    private static string NonEmpty(string text) => string.IsNullOrWhiteSpace(text) ? "-" : text;

    private static async Task<string> ReadBodyAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            return await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            return "";
        }
    }

    /// <summary>Discord's JSON <c>retry_after</c> (seconds, fractional), else the <c>Retry-After</c> header, else 1 s.</summary>
    internal static TimeSpan RetryDelay(string body, HttpResponseMessage response)
    {
        if (JsonNumber(body, "retry_after") is { } seconds) return Seconds(seconds);
        if (response.Headers.RetryAfter is RetryConditionHeaderValue header)
        {
            if (header.Delta is { } delta) return delta < TimeSpan.Zero ? TimeSpan.Zero : delta;
            if (header.Date is { } date)
            {
                var wait = date - DateTimeOffset.UtcNow;
                return wait < TimeSpan.Zero ? TimeSpan.Zero : wait;
            }
        }
        if (response.Headers.TryGetValues("X-RateLimit-Reset-After", out var resetAfter)
            && double.TryParse(resetAfter.FirstOrDefault(), NumberStyles.Float, CultureInfo.InvariantCulture, out var reset))
            return Seconds(reset);
        return DefaultRetryAfter;
    }

    private static TimeSpan Seconds(double seconds) =>
        double.IsFinite(seconds) && seconds > 0 ? TimeSpan.FromSeconds(Math.Min(seconds, TimeSpan.FromDays(1).TotalSeconds)) : TimeSpan.Zero;

    private static bool IsGlobal(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            return doc.RootElement.ValueKind == JsonValueKind.Object
                   && doc.RootElement.TryGetProperty("global", out var global)
                   && global.ValueKind == JsonValueKind.True;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static double? JsonNumber(string body, string property)
    {
        if (string.IsNullOrWhiteSpace(body)) return null;
        try
        {
            using var doc = JsonDocument.Parse(body);
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty(property, out var value)) return null;
            return value.ValueKind switch
            {
                JsonValueKind.Number => value.GetDouble(),
                JsonValueKind.String when double.TryParse(value.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) => parsed,
                _ => null,
            };
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Whatever an exception or a server echoed: the webhook's URL, path and long path segments (id, token) go.</summary>
    private static string Scrub(string text, Uri? webhook)
    {
        if (webhook is null || !webhook.IsAbsoluteUri) return text;
        var redacted = Redact(webhook);
        foreach (var secret in new[] { webhook.OriginalString, webhook.AbsoluteUri, webhook.PathAndQuery, webhook.AbsolutePath })
            if (secret.Length > 1) text = text.Replace(secret, redacted, StringComparison.OrdinalIgnoreCase);
        foreach (var segment in webhook.Segments.Select(s => s.Trim('/')).Where(s => s.Length >= 8))
        {
            text = text.Replace(segment, "***", StringComparison.Ordinal);
            var decoded = Uri.UnescapeDataString(segment);
            if (decoded != segment) text = text.Replace(decoded, "***", StringComparison.Ordinal);
        }
        return text;
    }
}
