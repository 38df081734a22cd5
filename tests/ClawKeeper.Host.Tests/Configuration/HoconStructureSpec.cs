using System.Collections;
using ClawKeeper.Host.Configuration;
using Xunit;

namespace ClawKeeper.Host.Tests.Configuration;

/// <summary>
/// Malformed HOCON is named with its file and position instead of being half-read (Akka's parser accepts an unclosed
/// '{' and the process would run on defaults); well-formed HOCON, the shipped files included, is untouched.
/// </summary>
public class HoconStructureSpec
{
    private static string RepositoryRoot
    {
        get
        {
            var directory = new DirectoryInfo(AppContext.BaseDirectory);
            while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "ClawKeeper.Actors.sln"))) directory = directory.Parent;
            return directory?.FullName ?? throw new DirectoryNotFoundException("repository root not found");
        }
    }

    public static IEnumerable<object[]> ShippedFiles() =>
        Directory.GetFiles(Path.Combine(RepositoryRoot, "hocon"), "*.conf").Order(StringComparer.Ordinal).Select(f => new object[] { Path.GetFileName(f) });

    [Theory]
    [MemberData(nameof(ShippedFiles))]
    public void The_shipped_files_are_well_formed(string file) =>
        Assert.Null(HoconStructure.Check(File.ReadAllText(Path.Combine(RepositoryRoot, "hocon", file))));

    [Theory]
    [InlineData("clawkeeper.heartbeat.interval = 5s")]
    [InlineData("clawkeeper {\n  heartbeat { interval = 5s, retry { interval = 1m, max-attempts = 3 } }\n}\n")]
    [InlineData("{ a = 1 }")]
    [InlineData("a : [1, 2, 3]\nb = [\n  { x = 1 }\n  { x = 2 },\n]\n")]
    [InlineData("a = \"quoted } { ] [ # not a comment\" # a comment with } and {\n// another { comment\nb = 2")]
    [InlineData("a = \"\"\"triple\n{ quoted\n\"\"\"\nb = 1")]
    [InlineData("a = ${?HOME}\nb = ${a} suffix\nc += 1")]
    [InlineData("include \"other.conf\"\ninclude required(\"x.conf\")\na = 1")]
    [InlineData("akka.remote.dot-netty.tcp.hostname = \"127.0.0.1\"\nseed-nodes = [\"akka.tcp://clawkeeper@node1:4053\"]\nemail = root@example.test")]
    [InlineData("a = 5s oops is a concatenated string in HOCON")]
    [InlineData("\uFEFFa = 1\r\nb = 2\r\n")]
    [InlineData("")]
    public void Well_formed_hocon_passes(string text) => Assert.Null(HoconStructure.Check(text));

    [Theory]
    [InlineData("clawkeeper {\n  heartbeat { interval = 5s }\n", 1, 12, "unclosed '{'")]
    [InlineData("clawkeeper {\n  heartbeat {\n    interval = 5s\n}\n", 1, 12, "unclosed '{'")]
    [InlineData("clawkeeper { heartbeat.interval = 5s } }\n", 1, 40, "'}' closes nothing")]
    [InlineData("clawkeeper { heartbeat.interval = 5s }\noops\n", 2, 5, "expected '=', ':' or '{' after the key 'oops'")]
    [InlineData("clawkeeper {\n  heartbeat.interval = 5s ]\n}", 2, 27, "unexpected ']'")]
    [InlineData("clawkeeper.heartbeat.interval =\nclawkeeper.x = 1", 1, 32, "has no value")]
    [InlineData("= 3", 1, 1, "expected a key")]
    [InlineData("a = [1, 2\nb = 3", 2, 3, "inside the array opened at line 1, column 5")]
    [InlineData("a = [1, 2\n", 1, 5, "unclosed '['")]
    [InlineData("a = \"unclosed\nb = 1", 1, 5, "unclosed string")]
    [InlineData("a = ${HOME\nb = 1", 1, 5, "unclosed substitution")]
    public void Malformed_hocon_is_named_with_its_position(string text, int line, int column, string problem)
    {
        var error = HoconStructure.Check(text);
        Assert.NotNull(error);
        Assert.Equal((line, column), (error.Line, error.Column));
        Assert.Contains(problem, error.Problem);
    }

    [Fact]
    public void The_loader_names_the_config_file_and_the_position()
    {
        var file = Path.Combine(Directory.CreateTempSubdirectory("clawkeeper-hocon-").FullName, "broken.conf");
        File.WriteAllText(file, "clawkeeper {\n  heartbeat { interval = 5s }\n");
        var error = Assert.Throws<ConfigurationProblemException>(() => ConfigurationLoader.Load(Array.Empty<string>(), new FileInfo(file), new Hashtable()));
        Assert.Contains($"--config {file}", error.Message);
        Assert.Contains($"{file}:1:12 (line 1, column 12)", error.Message);
        Assert.Contains("unclosed '{'", error.Message);
    }
}
