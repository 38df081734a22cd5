using System.Globalization;
using System.Text;

namespace ClawKeeper.Actors.Alerts.Channels;

/// <summary>The words every channel uses for a <see cref="Notification"/>, so e-mail and Discord say the same thing.</summary>
public static class NotificationText
{
    /// <summary><c>CRITICAL</c> / <c>WARNING</c> (the severity) for a firing alert, <c>RESOLVED</c>, <c>REMINDER</c>.</summary>
    public static string Label(Notification n) => n.Kind switch
    {
        NotificationKind.Resolved => "RESOLVED",
        NotificationKind.Reminder => "REMINDER",
        _ => SeverityLabel(n),
    };

    /// <summary>The severity in capitals (<c>ALERT</c> when empty).</summary>
    public static string SeverityLabel(Notification n) =>
        string.IsNullOrWhiteSpace(n.Severity) ? "ALERT" : OneLine(n.Severity).ToUpperInvariant();

    /// <summary>The notification's title, or "3 checks failing" / "3 checks recovered" from its lines.</summary>
    public static string Title(Notification n)
    {
        if (!string.IsNullOrWhiteSpace(n.Title)) return OneLine(n.Title);
        var count = n.Lines.Count;
        var checks = count == 1 ? "1 check" : $"{count.ToString(CultureInfo.InvariantCulture)} checks";
        return n.Kind == NotificationKind.Resolved ? $"{checks} recovered" : $"{checks} failing";
    }

    /// <summary><c>system_health/api_server_responding fail</c></summary>
    public static string LineName(NotificationLine line) => OneLine($"{line.Group}/{line.Check} {line.Status}");

    /// <summary><c>observed 1200 ms vs threshold &lt; 100 ms</c> (parts that are empty are left out).</summary>
    public static string ObservedVsThreshold(NotificationLine line)
    {
        var observed = OneLine(line.Observed);
        var threshold = OneLine(line.Threshold);
        return (observed.Length, threshold.Length) switch
        {
            (0, 0) => "",
            (_, 0) => $"observed {observed}",
            (0, _) => $"threshold {threshold}",
            _ => $"observed {observed} vs threshold {threshold}",
        };
    }

    /// <summary>Folds line breaks and runs of white space into single spaces (for subjects and names).</summary>
    public static string OneLine(string? text)
    {
        if (string.IsNullOrEmpty(text)) return "";
        var builder = new StringBuilder(text.Length);
        var space = false;
        foreach (var c in text)
        {
            if (char.IsWhiteSpace(c) || char.IsControl(c))
            {
                space = builder.Length > 0;
                continue;
            }
            if (space) builder.Append(' ');
            space = false;
            builder.Append(c);
        }
        return builder.ToString();
    }

    /// <summary>
    /// Cuts <paramref name="text"/> to at most <paramref name="max"/> UTF-16 characters, ending with "…" when cut,
    /// never splitting a surrogate pair.
    /// </summary>
    public static string Truncate(string text, int max)
    {
        if (max <= 0) return "";
        if (text.Length <= max) return text;
        if (max == 1) return "…";
        var keep = max - 1;
        if (char.IsHighSurrogate(text[keep - 1])) keep--;
        return text[..keep] + "…";
    }
}
