using ClawKeeper.Actors.Settings;
using MimeKit;

namespace ClawKeeper.Actors.Alerts.Channels;

/// <summary>How the SMTP connection is secured.</summary>
public enum SmtpTlsMode
{
    /// <summary>Plain SMTP (a local relay or a test sink). HOCON: <c>none</c>.</summary>
    None,

    /// <summary>Connect in plain text and upgrade with STARTTLS; refuse if the server cannot. HOCON: <c>starttls</c>.</summary>
    StartTls,

    /// <summary>TLS from the first byte (usually port 465). HOCON: <c>ssl-on-connect</c>.</summary>
    SslOnConnect,
}

/// <summary>
/// The SMTP server alerts are sent through. <see cref="Password"/> is a secret: <see cref="ToString"/>
/// masks it, and no channel result or log line contains it.
/// </summary>
public sealed record SmtpSettings(
    string Host,
    int Port,
    SmtpTlsMode Tls,
    string? Username,
    string? Password,
    string From,
    TimeSpan Timeout)
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    /// <summary>HOCON spelling of each <see cref="SmtpTlsMode"/>.</summary>
    public static string TlsName(SmtpTlsMode mode) => mode switch
    {
        SmtpTlsMode.None => "none",
        SmtpTlsMode.StartTls => "starttls",
        SmtpTlsMode.SslOnConnect => "ssl-on-connect",
        _ => mode.ToString(),
    };

    /// <summary>The usual port of a TLS mode: 25 (none), 587 (starttls), 465 (ssl-on-connect).</summary>
    public static int DefaultPort(SmtpTlsMode mode) => mode switch
    {
        SmtpTlsMode.None => 25,
        SmtpTlsMode.SslOnConnect => 465,
        _ => 587,
    };

    /// <summary>
    /// Reads the SMTP settings under <paramref name="prefix"/> (e.g. <c>clawkeeper.alerts.email.smtp</c>):
    /// <list type="table">
    /// <item><term><c>host</c></term><description>empty or absent = e-mail not configured (returns null, no error)</description></item>
    /// <item><term><c>tls</c></term><description><c>none</c> | <c>starttls</c> (default) | <c>ssl-on-connect</c></description></item>
    /// <item><term><c>port</c></term><description>1..65535; default by TLS mode: 25 / 587 / 465</description></item>
    /// <item><term><c>username</c>, <c>password</c></term><description>both or neither; empty = no AUTH. The password is never echoed.</description></item>
    /// <item><term><c>from</c></term><description>required when host is set: <c>alerts@example.com</c> or <c>"ClawKeeper &lt;alerts@example.com&gt;"</c></description></item>
    /// <item><term><c>timeout</c></term><description>connect + auth + send, default 30s, 100ms..10m</description></item>
    /// </list>
    /// Problems are added to <paramref name="r"/> (the caller throws on <see cref="SettingsReader.Errors"/>, as
    /// <c>ClawKeeperSettings.FromConfig</c> does); the returned value then holds fallbacks and must not be used.
    /// </summary>
    public static SmtpSettings? Read(SettingsReader r, string prefix)
    {
        ArgumentNullException.ThrowIfNull(r);
        ArgumentException.ThrowIfNullOrWhiteSpace(prefix);
        var host = r.String($"{prefix}.host").Trim();
        if (host.Length == 0) return null;
        if (host.Any(c => char.IsWhiteSpace(c) || c == '/' || c == '@'))
            r.AddError($"{prefix}.host", $"must be a host name or address such as smtp.example.com; got '{host}'");

        var tls = r.OneOf($"{prefix}.tls", "starttls", "none", "starttls", "ssl-on-connect") switch
        {
            "none" => SmtpTlsMode.None,
            "ssl-on-connect" => SmtpTlsMode.SslOnConnect,
            _ => SmtpTlsMode.StartTls,
        };
        var port = r.Int($"{prefix}.port", DefaultPort(tls), 1, 65535);

        var username = NullIfEmpty(r.String($"{prefix}.username"));
        var password = NullIfEmpty(r.String($"{prefix}.password")); // never echoed: String() does not quote values
        if (username is not null && password is null)
            r.AddError($"{prefix}.password", $"is required when {prefix}.username is set");
        if (username is null && password is not null)
            r.AddError($"{prefix}.username", $"is required when {prefix}.password is set");

        var from = r.String($"{prefix}.from").Trim();
        if (from.Length == 0)
            r.AddError($"{prefix}.from", $"is required when {prefix}.host is set (the sender address, e.g. clawkeeper@example.com)");
        else if (!IsMailbox(from))
            r.AddError($"{prefix}.from", $"must be an e-mail address such as clawkeeper@example.com or \"ClawKeeper <clawkeeper@example.com>\"; got '{from}'");

        var timeout = r.Duration($"{prefix}.timeout", DefaultTimeout, min: TimeSpan.FromMilliseconds(100), max: TimeSpan.FromMinutes(10));
        return new SmtpSettings(host, port, tls, username, password, from, timeout);
    }

    /// <summary>True when <paramref name="address"/> is one mailbox with a domain (<c>a@b</c> or <c>Name &lt;a@b&gt;</c>).</summary>
    public static bool IsMailbox(string address) =>
        MailboxAddress.TryParse(ParserOptions.Default, address, out var mailbox)
        && mailbox.Address.IndexOf('@') is > 0 and var at
        && at < mailbox.Address.Length - 1;

    public override string ToString() =>
        $"SmtpSettings {{ Host = {Host}, Port = {Port}, Tls = {TlsName(Tls)}, Username = {Username ?? "(none)"}, " +
        $"Password = {(Password is null ? "(none)" : "***")}, From = {From}, Timeout = {Timeout} }}";

    private static string? NullIfEmpty(string value) => string.IsNullOrWhiteSpace(value) ? null : value;
}
