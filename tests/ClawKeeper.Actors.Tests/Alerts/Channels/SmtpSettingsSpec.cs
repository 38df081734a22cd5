using Akka.Configuration;
using ClawKeeper.Actors.Alerts.Channels;
using ClawKeeper.Actors.Settings;
using Xunit;

namespace ClawKeeper.Actors.Tests.Alerts.Channels;

public class SmtpSettingsSpec
{
    private const string Prefix = "clawkeeper.alerts.email.smtp";

    private static (SmtpSettings? Settings, IReadOnlyList<string> Errors) Read(string hocon)
    {
        var reader = new SettingsReader(ConfigurationFactory.ParseString(hocon));
        var settings = SmtpSettings.Read(reader, Prefix);
        return (settings, reader.Errors);
    }

    [Fact]
    public void Reads_every_key()
    {
        var (settings, errors) = Read($$"""
            {{Prefix}} {
              host = "smtp.example.test"
              port = 2525
              tls = ssl-on-connect
              username = "alerts"
              password = "hunter2-secret"
              from = "ClawKeeper <clawkeeper@example.test>"
              timeout = 7s
            }
            """);

        Assert.Empty(errors);
        Assert.Equal(new SmtpSettings("smtp.example.test", 2525, SmtpTlsMode.SslOnConnect, "alerts", "hunter2-secret",
            "ClawKeeper <clawkeeper@example.test>", TimeSpan.FromSeconds(7)), settings);
        Assert.DoesNotContain("hunter2-secret", settings!.ToString());
        Assert.Contains("Password = ***", settings.ToString());
    }

    [Fact]
    public void Defaults_follow_the_tls_mode()
    {
        var (starttls, e1) = Read($"{Prefix} {{ host = smtp.example.test, from = \"a@example.test\" }}");
        var (plain, e2) = Read($"{Prefix} {{ host = localhost, tls = none, from = \"a@example.test\" }}");
        var (ssl, e3) = Read($"{Prefix} {{ host = smtp.example.test, tls = SSL-ON-CONNECT, from = \"a@example.test\" }}");

        Assert.Empty(e1.Concat(e2).Concat(e3));
        Assert.Equal((SmtpTlsMode.StartTls, 587, TimeSpan.FromSeconds(30), (string?)null, (string?)null), (starttls!.Tls, starttls.Port, starttls.Timeout, starttls.Username, starttls.Password));
        Assert.Equal((SmtpTlsMode.None, 25), (plain!.Tls, plain.Port));
        Assert.Equal((SmtpTlsMode.SslOnConnect, 465), (ssl!.Tls, ssl.Port));
    }

    [Fact]
    public void An_empty_or_missing_host_means_not_configured()
    {
        var (missing, e1) = Read("clawkeeper.alerts {}");
        var (empty, e2) = Read($"{Prefix} {{ host = \"\", port = 99999 }}");

        Assert.Null(missing);
        Assert.Null(empty);
        Assert.Empty(e1.Concat(e2));
    }

    [Fact]
    public void Every_bad_key_is_reported_and_the_password_never_echoed()
    {
        var (_, errors) = Read($$"""
            {{Prefix}} {
              host = "smtp.example.test"
              port = 70000
              tls = maybe
              password = "hunter2-secret"
              from = "not-an-address"
              timeout = 10ms
            }
            """);

        Assert.Contains(errors, e => e.StartsWith($"{Prefix}.port:"));
        Assert.Contains(errors, e => e.StartsWith($"{Prefix}.tls:") && e.Contains("none, starttls, ssl-on-connect"));
        Assert.Contains(errors, e => e.StartsWith($"{Prefix}.username:") && e.Contains("required"));
        Assert.Contains(errors, e => e.StartsWith($"{Prefix}.from:") && e.Contains("not-an-address"));
        Assert.Contains(errors, e => e.StartsWith($"{Prefix}.timeout:"));
        Assert.All(errors, e => Assert.DoesNotContain("hunter2-secret", e));

        var (_, noPassword) = Read($"{Prefix} {{ host = smtp.example.test, username = alerts }}");
        Assert.Contains(noPassword, e => e.StartsWith($"{Prefix}.password:") && e.Contains("required"));
        Assert.Contains(noPassword, e => e.StartsWith($"{Prefix}.from:") && e.Contains("required"));
    }
}
