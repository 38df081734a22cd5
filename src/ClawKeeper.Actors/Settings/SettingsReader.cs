using System.Globalization;
using Akka.Configuration;

namespace ClawKeeper.Actors.Settings;

/// <summary>
/// Reads typed values from HOCON and collects every problem with the key that caused it, so an
/// operator sees all bad settings at once instead of one stack trace.
/// </summary>
public sealed class SettingsReader
{
    private readonly Config _config;
    private readonly List<string> _errors = new();

    public SettingsReader(Config config) => _config = config;

    public IReadOnlyList<string> Errors => _errors;

    public void AddError(string key, string problem) => _errors.Add($"{key}: {problem}");

    public bool Has(string key) => _config.HasPath(key);

    public Config? Section(string key) => _config.HasPath(key) ? _config.GetConfig(key) : null;

    public string String(string key, string fallback = "")
    {
        if (!_config.HasPath(key)) return fallback;
        try
        {
            return _config.GetString(key) ?? fallback;
        }
        catch (Exception)
        {
            AddError(key, "must be a string");
            return fallback;
        }
    }

    public string OneOf(string key, string fallback, params string[] allowed)
    {
        var value = String(key, fallback);
        if (allowed.Contains(value, StringComparer.OrdinalIgnoreCase))
            return allowed.First(a => string.Equals(a, value, StringComparison.OrdinalIgnoreCase));
        AddError(key, $"must be one of {string.Join(", ", allowed)}; got '{value}'");
        return fallback;
    }

    public TimeSpan Duration(string key, TimeSpan fallback, TimeSpan? min = null, TimeSpan? max = null)
    {
        if (!_config.HasPath(key)) return fallback;
        var raw = RawText(key);
        TimeSpan value;
        try
        {
            value = _config.GetTimeSpan(key, fallback, allowInfinite: false);
        }
        catch (Exception)
        {
            AddError(key, $"must be a duration such as 250ms, 30s, 5m or 4h; got '{raw}'");
            return fallback;
        }
        var lowest = min ?? TimeSpan.FromMilliseconds(1);
        if (value < lowest)
        {
            AddError(key, $"must be at least {Describe(lowest)}; got '{raw}'");
            return fallback;
        }
        if (max is { } highest && value > highest)
        {
            AddError(key, $"must be at most {Describe(highest)}; got '{raw}'");
            return fallback;
        }
        return value;
    }

    public int Int(string key, int fallback, int min = int.MinValue, int max = int.MaxValue)
    {
        if (!_config.HasPath(key)) return fallback;
        var raw = RawText(key);
        if (!int.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
        {
            AddError(key, $"must be a whole number; got '{raw}'");
            return fallback;
        }
        if (value < min || value > max)
        {
            AddError(key, max == int.MaxValue
                ? $"must be at least {min}; got {value}"
                : $"must be between {min} and {max}; got {value}");
            return fallback;
        }
        return value;
    }

    public double Ratio(string key, double fallback)
    {
        if (!_config.HasPath(key)) return fallback;
        var raw = RawText(key);
        if (!double.TryParse(raw, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || value < 0 || value > 1)
        {
            AddError(key, $"must be a ratio between 0 and 1 (0.05 = 5 %); got '{raw}'");
            return fallback;
        }
        return value;
    }

    public bool Boolean(string key, bool fallback)
    {
        if (!_config.HasPath(key)) return fallback;
        var raw = RawText(key).Trim().ToLowerInvariant();
        switch (raw)
        {
            case "true" or "on" or "yes": return true;
            case "false" or "off" or "no": return false;
            default:
                AddError(key, $"must be true or false; got '{raw}'");
                return fallback;
        }
    }

    public IReadOnlyList<string> StringList(string key)
    {
        if (!_config.HasPath(key)) return Array.Empty<string>();
        try
        {
            return _config.GetStringList(key).ToArray();
        }
        catch (Exception)
        {
            AddError(key, "must be a list of strings, e.g. [\"a\", \"b\"]");
            return Array.Empty<string>();
        }
    }

    public Uri? AbsoluteHttpUrl(string key)
    {
        var raw = String(key);
        if (string.IsNullOrWhiteSpace(raw)) return null;
        if (Uri.TryCreate(raw, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps))
            return uri;
        AddError(key, $"must be an absolute http(s) URL; got '{raw}'");
        return null;
    }

    private string RawText(string key)
    {
        try
        {
            return _config.GetString(key) ?? "";
        }
        catch (Exception)
        {
            return "(not a single value)";
        }
    }

    private static string Describe(TimeSpan span) =>
        span.TotalMilliseconds < 1000 ? $"{span.TotalMilliseconds:0}ms" : $"{span.TotalSeconds:0.###}s";
}

/// <summary>Start-up stops on this: every bad key is listed, nothing else.</summary>
public sealed class InvalidSettingsException : Exception
{
    public InvalidSettingsException(IReadOnlyList<string> problems)
        : base("Invalid configuration:" + Environment.NewLine + string.Join(Environment.NewLine, problems.Select(p => "  - " + p)))
    {
        Problems = problems;
    }

    public IReadOnlyList<string> Problems { get; }
}
