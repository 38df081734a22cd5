using System.Text.Json;
using Akka.Actor;
using Akka.Configuration;
using ClawKeeper.Actors.Serialization;
using Xunit;

namespace ClawKeeper.Actors.Tests.Serialization;

/// <summary>Something no serializer is bound to: strict serialization must refuse to send it.</summary>
public sealed record UnboundMessage(string Text);

/// <summary>Tells the probe whatever arrives (from another node).</summary>
public sealed class Relay : ReceiveActor
{
    public Relay(IActorRef probe) => ReceiveAny(message => probe.Tell(message));
}

/// <summary>
/// Every ClawKeeper message crosses real remoting on loopback, from one ActorSystem to another, both with
/// the ClawKeeper serializer and <c>allow-unregistered-types = false</c>, and arrives equal.
/// </summary>
public class CrossNodeSerializationSpec : Akka.TestKit.Xunit2.TestKit
{
    private static readonly string Remote = """
        akka.loglevel = WARNING
        akka.actor.provider = remote
        akka.remote.dot-netty.tcp { hostname = "127.0.0.1", port = 0 }
        akka.actor.serialization-settings.allow-unregistered-types = false
        akka.actor.serializers.clawkeeper-json = "ClawKeeper.Actors.Serialization.ClawKeeperSerializer, ClawKeeper.Actors"
        akka.actor.serialization-bindings { "ClawKeeper.Actors.Serialization.IClawKeeperMessage, ClawKeeper.Actors" = clawkeeper-json }
        akka.actor.serialization-identifiers { "ClawKeeper.Actors.Serialization.ClawKeeperSerializer, ClawKeeper.Actors" = 4242 }
        """;

    public CrossNodeSerializationSpec() : base(ConfigurationFactory.ParseString(Remote), "receiver")
    {
    }

    /// <summary>A sample of every registered manifest (from the round-trip spec); a new manifest without a sample fails here.</summary>
    private static IReadOnlyList<object> Samples()
    {
        var samples = ClawKeeperSerializerSpec.Messages().Select(m => m[0]).ToList();
        var serializer = new ClawKeeperSerializer(null!);
        Assert.Equal(ClawKeeperSerializer.Manifests.OrderBy(m => m, StringComparer.Ordinal),
            samples.Select(serializer.Manifest).Distinct().OrderBy(m => m, StringComparer.Ordinal));
        return samples;
    }

    [Fact]
    public async Task Every_registered_message_crosses_remoting_to_another_node_and_arrives_equal()
    {
        var samples = Samples();
        Sys.ActorOf(Props.Create(() => new Relay(TestActor)), "relay");
        var receiverAddress = ((ExtendedActorSystem)Sys).Provider.DefaultAddress;
        Assert.NotEqual(0, receiverAddress.Port);

        using var sender = ActorSystem.Create("sender", ConfigurationFactory.ParseString(Remote));
        try
        {
            var relay = await sender.ActorSelection(new RootActorPath(receiverAddress) / "user" / "relay").ResolveOne(TimeSpan.FromSeconds(20));
            foreach (var message in samples)
            {
                relay.Tell(message);
                var arrived = ExpectMsg<object>(TimeSpan.FromSeconds(20));
                Assert.IsType(message.GetType(), arrived);
                Assert.NotSame(message, arrived);
                Assert.Equal(JsonSerializer.Serialize(message, message.GetType()), JsonSerializer.Serialize(arrived, arrived.GetType()));
            }

            // Strict: a type without a bound serializer is refused at the sender, never delivered.
            relay.Tell(new UnboundMessage("must not travel"));
            relay.Tell(samples[0]);
            var next = ExpectMsg<object>(TimeSpan.FromSeconds(20));
            Assert.IsNotType<UnboundMessage>(next);
            ExpectNoMsg(TimeSpan.FromMilliseconds(500));
        }
        finally
        {
            await sender.Terminate();
        }
    }
}
