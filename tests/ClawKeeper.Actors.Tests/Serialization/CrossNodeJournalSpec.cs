using System.Text.Json;
using Akka.Actor;
using Akka.Hosting;
using Akka.Persistence;
using ClawKeeper.Actors.Heartbeat;
using ClawKeeper.Actors.Hosting;
using ClawKeeper.Actors.Settings;
using ClawKeeper.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit;

namespace ClawKeeper.Actors.Tests.Serialization;

/// <summary>Persists what it is told, snapshots a <see cref="HeartbeatState"/>, and reports what it recovered.</summary>
public sealed class JournalWitness : ReceivePersistentActor
{
    public sealed record Snapshot(HeartbeatState State);
    public sealed record WhatWasRecovered;
    public sealed record Recovered(HeartbeatState? Snapshot, IReadOnlyList<IHeartbeatEvent> Events);

    private readonly List<IHeartbeatEvent> _recovered = new();
    private HeartbeatState? _snapshot;
    private IActorRef? _snapshotRequester;

    public JournalWitness(string persistenceId)
    {
        PersistenceId = persistenceId;
        Recover<SnapshotOffer>(offer => _snapshot = (HeartbeatState)offer.Snapshot);
        Recover<IHeartbeatEvent>(e => _recovered.Add(e));
        Command<IHeartbeatEvent>(e => Persist(e, persisted => Sender.Tell(persisted)));
        Command<Snapshot>(s =>
        {
            _snapshotRequester = Sender;
            SaveSnapshot(s.State);
        });
        Command<SaveSnapshotSuccess>(s => _snapshotRequester?.Tell(s));
        Command<SaveSnapshotFailure>(f => _snapshotRequester?.Tell(new Status.Failure(f.Cause)));
        Command<WhatWasRecovered>(_ => Sender.Tell(new Recovered(_snapshot, _recovered.ToList())));
    }

    public override string PersistenceId { get; }
}

/// <summary>
/// Two "nodes" (two ActorSystems built by the production Akka.Hosting chain: ClawKeeper serializer,
/// strict serialization, Akka.Persistence.Sql on one PostgreSQL journal): what one writes, the other recovers.
/// </summary>
public class CrossNodeJournalSpec
{
    private static async Task<IHost> NodeAsync(string journal)
    {
        var builder = new HostApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddAkka(ClawKeeperAkkaExtensions.ActorSystemName, (akka, _) =>
        {
            akka.AddHocon("akka.loglevel = WARNING\nakka.actor.serialization-settings.allow-unregistered-types = false", HoconAddMode.Prepend)
                .WithClawKeeperSerialization()
                .WithClawKeeperPersistence(new JournalSettings(journal, ""));
        });
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

    private static string Json(object o) => JsonSerializer.Serialize(o, o.GetType());

    [Fact]
    public async Task Events_and_a_snapshot_written_by_one_node_are_recovered_by_another()
    {
        var journal = await TestDatabases.CreateEmptyAsync();
        var samples = ClawKeeperSerializerSpec.Messages().Select(m => m[0]).ToList();
        var events = samples.OfType<IHeartbeatEvent>().ToList();
        var state = samples.OfType<HeartbeatState>().First();
        Assert.True(events.Count >= 10, "every event type is sampled");
        var timeout = TimeSpan.FromSeconds(30);

        using (var writer = await NodeAsync(journal))
        {
            var system = writer.Services.GetRequiredService<ActorSystem>();
            var all = system.ActorOf(Props.Create(() => new JournalWitness("witness-events")));
            foreach (var e in events)
                Assert.Same(e, await all.Ask<IHeartbeatEvent>(e, timeout));
            var snapshotted = system.ActorOf(Props.Create(() => new JournalWitness("witness-snapshot")));
            Assert.Same(events[0], await snapshotted.Ask<IHeartbeatEvent>(events[0], timeout));
            await snapshotted.Ask<SaveSnapshotSuccess>(new JournalWitness.Snapshot(state), timeout);
            Assert.Same(events[^1], await snapshotted.Ask<IHeartbeatEvent>(events[^1], timeout));
            await writer.StopAsync();
        }

        using var reader = await NodeAsync(journal);
        var other = reader.Services.GetRequiredService<ActorSystem>();
        var replayed = await other.ActorOf(Props.Create(() => new JournalWitness("witness-events")))
            .Ask<JournalWitness.Recovered>(new JournalWitness.WhatWasRecovered(), timeout);
        Assert.Null(replayed.Snapshot);
        Assert.Equal(events.Select(Json), replayed.Events.Select(Json));
        Assert.Equal(events.Select(e => e.GetType()), replayed.Events.Select(e => e.GetType()));

        var fromSnapshot = await other.ActorOf(Props.Create(() => new JournalWitness("witness-snapshot")))
            .Ask<JournalWitness.Recovered>(new JournalWitness.WhatWasRecovered(), timeout);
        Assert.NotNull(fromSnapshot.Snapshot);
        Assert.Equal(Json(state), Json(fromSnapshot.Snapshot!));
        Assert.Equal(new[] { Json(events[^1]) }, fromSnapshot.Events.Select(Json));
        await reader.StopAsync();
    }
}
