using Akka.Actor;
using Akka.Event;
using ClawKeeper.Actors.Heartbeat;

namespace ClawKeeper.Actors.Alerts;

/// <summary>Hand a persisted notification to its channels.</summary>
public sealed record DeliverNotification(QueuedNotification Queued);

/// <summary>Where and how the alerts child delivers.</summary>
public sealed record AlertDelivery(
    AlertPolicy Policy,
    IReadOnlyList<IAlertChannel> Channels,
    IReadOnlyDictionary<string, AudienceRoute> Routes,
    TimeSpan MinBackoff,
    TimeSpan MaxBackoff)
{
    public static AlertDelivery None => new(AlertPolicy.Unrouted, Array.Empty<IAlertChannel>(), new Dictionary<string, AudienceRoute>(),
        TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(5));
}

/// <summary>
/// <c>alerts</c>: delivers the supervisor's persisted notifications, each channel on its own —
/// a channel that is down never holds back the other. Failures retry with exponential backoff
/// (with jitter, capped); Discord's 429 <c>retry_after</c> is honoured. Each hand-off is reported
/// to the supervisor, which persists it, so a restart re-sends only what was not handed off.
/// </summary>
public sealed class AlertDeliveryActor : ReceiveActor, IWithTimers
{
    private readonly AlertDelivery _delivery;
    private readonly Dictionary<string, IAlertChannel> _channels;
    private readonly Dictionary<(string Id, string Channel), Attempting> _attempts = new();
    private readonly ILoggingAdapter _log = Context.GetLogger();

    public AlertDeliveryActor(AlertDelivery delivery)
    {
        _delivery = delivery;
        _channels = delivery.Channels.ToDictionary(c => c.Name, StringComparer.Ordinal);

        Receive<DeliverNotification>(deliver =>
        {
            foreach (var channel in deliver.Queued.PendingChannels)
            {
                var key = (deliver.Queued.Notification.Id, channel);
                if (_attempts.ContainsKey(key)) continue;
                _attempts[key] = new Attempting(deliver.Queued.Notification, 0);
                Attempt(key);
            }
        });
        Receive<AttemptFinished>(OnAttemptFinished);
        Receive<RetryDelivery>(retry =>
        {
            if (_attempts.ContainsKey(retry.Key)) Attempt(retry.Key);
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(AlertDelivery delivery) => Akka.Actor.Props.Create(() => new AlertDeliveryActor(delivery));

    private void Attempt((string Id, string Channel) key)
    {
        var attempting = _attempts[key];
        _attempts[key] = attempting with { Number = attempting.Number + 1 };
        var notification = attempting.Notification;
        if (!_channels.TryGetValue(key.Channel, out var channel))
        {
            Self.Tell(new AttemptFinished(key, new DeliveryResult.NotConfigured($"no {key.Channel} channel is configured")));
            return;
        }
        var route = _delivery.Routes.TryGetValue(notification.Audience, out var r) ? r : new AudienceRoute(notification.Audience, Array.Empty<string>(), null);
        channel.SendAsync(notification, route, CancellationToken.None).PipeTo(Self,
            success: result => new AttemptFinished(key, result),
            failure: ex => new AttemptFinished(key, new DeliveryResult.Failed(ex.GetBaseException().GetType().Name)));
    }

    private void OnAttemptFinished(AttemptFinished finished)
    {
        if (!_attempts.TryGetValue(finished.Key, out var attempting)) return;
        var (id, channel) = finished.Key;
        switch (finished.Result)
        {
            case DeliveryResult.Delivered:
                _attempts.Remove(finished.Key);
                _log.Info("Alert {NotificationId} handed off via {Channel} (attempt {Attempt})", id, channel, attempting.Number);
                Context.Parent.Tell(new NotificationDelivered(id, channel, Context.System.Scheduler.Now));
                break;
            case DeliveryResult.NotConfigured notConfigured:
                _attempts.Remove(finished.Key);
                _log.Warning("Alert {NotificationId} not sent via {Channel}: {Reason}", id, channel, notConfigured.Reason);
                Context.Parent.Tell(new NotificationDelivered(id, channel, Context.System.Scheduler.Now));
                break;
            case DeliveryResult.RetryAfter retryAfter:
                _log.Warning("Alert {NotificationId} via {Channel}: {Reason}; retrying in {Delay}", id, channel, retryAfter.Reason, retryAfter.Delay);
                Timers.StartSingleTimer(finished.Key, new RetryDelivery(finished.Key), retryAfter.Delay);
                break;
            case DeliveryResult.Failed failed:
                var delay = Backoff(attempting.Number);
                _log.Warning("Alert {NotificationId} via {Channel} failed (attempt {Attempt}): {Reason}; retrying in {Delay}", id, channel, attempting.Number, failed.Reason, delay);
                Timers.StartSingleTimer(finished.Key, new RetryDelivery(finished.Key), delay);
                break;
        }
    }

    /// <summary>1 s, 2 s, 4 s ... capped, with ±20 % jitter so channels do not retry in lockstep.</summary>
    private TimeSpan Backoff(int attempt)
    {
        var exponential = _delivery.MinBackoff.TotalMilliseconds * Math.Pow(2, Math.Min(attempt - 1, 20));
        var capped = Math.Min(exponential, _delivery.MaxBackoff.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(capped * (0.8 + Random.Shared.NextDouble() * 0.4));
    }

    private sealed record Attempting(Notification Notification, int Number);

    private sealed record AttemptFinished((string Id, string Channel) Key, DeliveryResult Result);

    private sealed record RetryDelivery((string Id, string Channel) Key);
}
