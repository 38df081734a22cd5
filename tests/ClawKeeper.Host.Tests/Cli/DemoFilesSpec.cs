using ClawKeeper.Host.Cli;
using Xunit;

namespace ClawKeeper.Host.Tests.Cli;

/// <summary>demo.env holds a connection string with a password: it is created with mode 600, never widened then narrowed.</summary>
public class DemoFilesSpec
{
    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task A_private_file_is_created_with_mode_600_also_over_an_older_world_readable_one()
    {
        var directory = Directory.CreateTempSubdirectory("ck-demo-files-").FullName;
        try
        {
            var path = Path.Combine(directory, "demo.env");
            await File.WriteAllTextAsync(path, "old");
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

            await DemoCommand.WritePrivateFileAsync(path, "CLAWKEEPER_PLATFORM_DB='Host=127.0.0.1;Password=secret'\n", CancellationToken.None);

            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            Assert.Equal("CLAWKEEPER_PLATFORM_DB='Host=127.0.0.1;Password=secret'\n", await File.ReadAllTextAsync(path));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
