using Prometheus;

namespace ClawKeeper.Host.Ops;

/// <summary>
/// The metrics of one node: a prometheus-net registry of its own (so that several nodes in one
/// process, as in the specs, do not share series) with the process and .NET runtime collectors of
/// prometheus-net (<c>process_*</c>, <c>dotnet_*</c>). <c>/metrics</c> exports exactly this registry.
/// </summary>
public sealed class NodeMetrics
{
    public NodeMetrics()
    {
        Registry = Metrics.NewCustomRegistry();
        DotNetStats.Register(Registry);
        Factory = Metrics.WithCustomRegistry(Registry);
    }

    public CollectorRegistry Registry { get; }

    public IMetricFactory Factory { get; }

    /// <summary>Writes the registry in the Prometheus text exposition format 0.0.4.</summary>
    public Task ExportAsync(Stream output, CancellationToken cancellationToken) =>
        Registry.CollectAndExportAsTextAsync(output, ExpositionFormat.PrometheusText, cancellationToken);
}

/// <summary>
/// A gauge whose series are a snapshot: each <see cref="Update"/> sets the series given and removes
/// the ones not given (a check that left the report, a tenant gone), so nothing stale is exported.
/// </summary>
public sealed class SnapshotGauge
{
    private readonly Gauge _gauge;

    public SnapshotGauge(IMetricFactory factory, string name, string help, params string[] labels) =>
        _gauge = factory.CreateGauge(name, help, labels, new GaugeConfiguration { SuppressInitialValue = true });

    public void Update(IEnumerable<(string[] Labels, double Value)> samples)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (labels, value) in samples)
        {
            if (labels.Length == 0) _gauge.Set(value);
            else _gauge.WithLabels(labels).Set(value);
            seen.Add(string.Join('\u0001', labels));
        }
        if (_gauge.LabelNames.Length == 0)
        {
            if (seen.Count == 0) _gauge.Unpublish();
            return;
        }
        foreach (var labels in _gauge.GetAllLabelValues().ToList())
            if (!seen.Contains(string.Join('\u0001', labels)))
                _gauge.WithLabels(labels).Remove();
    }

    public void Set(double value) => Update([([], value)]);

    public void Clear() => Update([]);
}

/// <summary>A counter set to a total read elsewhere (it never goes down: a smaller total is ignored); series not given are removed.</summary>
public sealed class SnapshotCounter
{
    private readonly Counter _counter;

    public SnapshotCounter(IMetricFactory factory, string name, string help, params string[] labels) =>
        _counter = factory.CreateCounter(name, help, labels, new CounterConfiguration { SuppressInitialValue = true });

    public void Update(IEnumerable<(string[] Labels, double Total)> totals)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (labels, total) in totals)
        {
            if (labels.Length == 0) _counter.IncTo(total);
            else _counter.WithLabels(labels).IncTo(total);
            seen.Add(string.Join('\u0001', labels));
        }
        if (_counter.LabelNames.Length == 0)
        {
            if (seen.Count == 0) _counter.Unpublish();
            return;
        }
        foreach (var labels in _counter.GetAllLabelValues().ToList())
            if (!seen.Contains(string.Join('\u0001', labels)))
                _counter.WithLabels(labels).Remove();
    }

    public void Clear() => Update([]);
}
