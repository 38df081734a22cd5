using System.Globalization;
using System.Text;
using Xunit;

namespace ClawKeeper.Host.Tests.Ops;

/// <summary>One sample line: metric name, labels in their order, value.</summary>
public sealed record PromSample(string Name, IReadOnlyList<(string Name, string Value)> Labels, double Value)
{
    public string Key => Name + (Labels.Count == 0 ? "" : "{" + string.Join(",", Labels.Select(l => $"{l.Name}=\"{l.Value}\"")) + "}");

    public string? Label(string name) => Labels.FirstOrDefault(l => l.Name == name).Value;
}

/// <summary>A metric family: its TYPE, HELP and samples.</summary>
public sealed record PromFamily(string Name, string Type, string Help, List<PromSample> Samples);

/// <summary>
/// A strict parser of the Prometheus text exposition format 0.0.4 (what <c>/metrics</c> must be):
/// HELP and TYPE once per family and before its samples, every sample belonging to the family declared
/// last (histograms: <c>_bucket</c>, <c>_sum</c>, <c>_count</c>), label syntax and escapes, values, no
/// duplicate series; histograms with ascending <c>le</c> buckets ending in <c>+Inf</c>, cumulative counts,
/// <c>_count</c> equal to the <c>+Inf</c> bucket and a <c>_sum</c>. Anything else fails the test.
/// </summary>
public static class PrometheusExposition
{
    private static readonly string[] Types = ["counter", "gauge", "histogram", "summary", "untyped"];

    public static IReadOnlyDictionary<string, PromFamily> Parse(string text)
    {
        Assert.EndsWith("\n", text);
        var families = new Dictionary<string, PromFamily>(StringComparer.Ordinal);
        var helps = new Dictionary<string, string>(StringComparer.Ordinal);
        var keys = new HashSet<string>(StringComparer.Ordinal);
        PromFamily? current = null;
        var lineNumber = 0;
        foreach (var line in text[..^1].Split('\n'))
        {
            lineNumber++;
            string Where() => $"line {lineNumber}: '{line}'";
            if (line.Length == 0) continue;
            if (line.StartsWith("# HELP ", StringComparison.Ordinal))
            {
                var rest = line["# HELP ".Length..];
                var space = rest.IndexOf(' ');
                var name = space < 0 ? rest : rest[..space];
                Assert.True(IsMetricName(name), $"bad metric name in HELP, {Where()}");
                Assert.False(families.ContainsKey(name) || helps.ContainsKey(name), $"second HELP for {name}, {Where()}");
                helps[name] = space < 0 ? "" : rest[(space + 1)..];
                continue;
            }
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line["# TYPE ".Length..].Split(' ');
                Assert.True(parts.Length == 2 && IsMetricName(parts[0]) && Types.Contains(parts[1]), $"bad TYPE line, {Where()}");
                Assert.False(families.ContainsKey(parts[0]), $"second TYPE for {parts[0]}, {Where()}");
                Assert.True(helps.TryGetValue(parts[0], out var help), $"TYPE without a HELP before it, {Where()}");
                current = new PromFamily(parts[0], parts[1], help!, []);
                families[parts[0]] = current;
                continue;
            }
            if (line.StartsWith('#')) continue;

            var sample = ParseSample(line, Where);
            Assert.True(current is not null, $"sample before any TYPE, {Where()}");
            Assert.True(Belongs(current!, sample.Name), $"sample {sample.Name} is not of family {current!.Name} ({current.Type}), {Where()}");
            Assert.True(keys.Add(sample.Key), $"duplicate series {sample.Key}, {Where()}");
            current.Samples.Add(sample);
        }
        Assert.True(helps.Keys.All(families.ContainsKey), "a HELP without a TYPE: " + string.Join(", ", helps.Keys.Where(k => !families.ContainsKey(k))));
        foreach (var family in families.Values.Where(f => f.Type == "histogram")) CheckHistogram(family);
        return families;
    }

    /// <summary>Every sample by its key (<c>name{a="x",b="y"}</c>, labels in exposition order).</summary>
    public static IReadOnlyDictionary<string, double> Samples(IReadOnlyDictionary<string, PromFamily> families) =>
        families.Values.SelectMany(f => f.Samples).ToDictionary(s => s.Key, s => s.Value, StringComparer.Ordinal);

    private static bool Belongs(PromFamily family, string sample) => family.Type switch
    {
        "histogram" => sample == family.Name + "_bucket" || sample == family.Name + "_sum" || sample == family.Name + "_count",
        "summary" => sample == family.Name || sample == family.Name + "_sum" || sample == family.Name + "_count",
        _ => sample == family.Name,
    };

    private static void CheckHistogram(PromFamily family)
    {
        var series = family.Samples.GroupBy(s => string.Join(",", s.Labels.Where(l => l.Name != "le").Select(l => $"{l.Name}={l.Value}")));
        foreach (var one in series)
        {
            var buckets = one.Where(s => s.Name.EndsWith("_bucket", StringComparison.Ordinal)).ToList();
            Assert.True(buckets.Count >= 2, $"{family.Name}{{{one.Key}}} has fewer than 2 buckets");
            Assert.All(buckets, b => Assert.NotNull(b.Label("le")));
            var bounds = buckets.Select(b => ParseValue(b.Label("le")!)).ToList();
            Assert.Equal(double.PositiveInfinity, bounds[^1]);
            for (var i = 1; i < buckets.Count; i++)
            {
                Assert.True(bounds[i] > bounds[i - 1], $"{family.Name}{{{one.Key}}}: le not ascending");
                Assert.True(buckets[i].Value >= buckets[i - 1].Value, $"{family.Name}{{{one.Key}}}: buckets not cumulative");
            }
            var count = Assert.Single(one, s => s.Name == family.Name + "_count");
            Assert.Single(one, s => s.Name == family.Name + "_sum");
            Assert.Equal(buckets[^1].Value, count.Value);
        }
    }

    private static PromSample ParseSample(string line, Func<string> where)
    {
        var i = 0;
        while (i < line.Length && (char.IsAsciiLetterOrDigit(line[i]) || line[i] is '_' or ':')) i++;
        var name = line[..i];
        Assert.True(IsMetricName(name), $"bad metric name, {where()}");
        var labels = new List<(string, string)>();
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (line[i] != '}')
            {
                var start = i;
                while (char.IsAsciiLetterOrDigit(line[i]) || line[i] == '_') i++;
                var label = line[start..i];
                Assert.True(label.Length > 0 && !char.IsAsciiDigit(label[0]), $"bad label name, {where()}");
                Assert.True(line[i] == '=' && line[i + 1] == '"', $"label {label} without =\"value\", {where()}");
                i += 2;
                var value = new StringBuilder();
                while (line[i] != '"')
                {
                    if (line[i] == '\\')
                    {
                        i++;
                        value.Append(line[i] switch
                        {
                            '\\' => '\\',
                            '"' => '"',
                            'n' => '\n',
                            _ => throw new Xunit.Sdk.XunitException($"bad escape in a label value, {where()}"),
                        });
                    }
                    else value.Append(line[i]);
                    i++;
                }
                i++;
                Assert.DoesNotContain(labels, l => l.Item1 == label);
                labels.Add((label, value.ToString()));
                if (line[i] == ',') i++;
                else Assert.True(line[i] == '}', $"expected , or }} after a label, {where()}");
            }
            i++;
        }
        Assert.True(i < line.Length && line[i] == ' ', $"no space before the value, {where()}");
        var rest = line[(i + 1)..].Split(' ');
        Assert.True(rest.Length is 1 or 2, $"trailing text after the value, {where()}");
        return new PromSample(name, labels, ParseValue(rest[0]));
    }

    private static double ParseValue(string raw) => raw switch
    {
        "NaN" => double.NaN,
        "+Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        _ => double.TryParse(raw, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v
            : throw new Xunit.Sdk.XunitException($"not a number: '{raw}'"),
    };

    private static bool IsMetricName(string name) =>
        name.Length > 0 && !char.IsAsciiDigit(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or ':');
}
