using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Offload.Daemon;
using Offload.Tests.EndToEnd;

namespace Offload.Tests.Sandbox;

/// <summary>The API socket answers its owner only, by the peer's uid, even when its file mode would let another user in.</summary>
public sealed class DaemonDoorTests : IAsyncLifetime
{
    private const string OtherUser = "offload-test-peer";

    private readonly OffloadHarness _h = new("/var/tmp");

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [RootFact]
    public async Task ApiSocket_OpenedToEveryone_StillRefusesAnotherUser()
    {
        Assert.Equal(0, (await _h.OffloadAsync("daemon", "start")).ExitCode);
        if ((await RunAsync("id", "-u", OtherUser)).Exit != 0)
        {
            var added = await RunAsync("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", OtherUser);
            Assert.True(added.Exit == 0, $"useradd failed: {added.Output}");
        }

        var uid = (await RunAsync("id", "-u", OtherUser)).Output.Trim();
        var gid = (await RunAsync("id", "-g", OtherUser)).Output.Trim();
        // The daemon narrows the socket to 0600 just after it starts answering; loosen it only after that.
        await WaitUntilAsync(() => File.GetUnixFileMode(_h.SocketPath) == (UnixFileMode.UserRead | UnixFileMode.UserWrite), TimeSpan.FromSeconds(10));
        // Loosen every mode on the way, so only the daemon's uid check stands between the other user and the API.
        foreach (var dir in new[] { _h.Root, _h.OffloadHome, Path.GetDirectoryName(_h.SocketPath)! })
        {
            File.SetUnixFileMode(dir, (UnixFileMode)Convert.ToInt32("777", 8));
        }

        File.SetUnixFileMode(_h.SocketPath, (UnixFileMode)Convert.ToInt32("666", 8));

        var owner = await RunAsync("curl", "-sS", "--max-time", "10", "--unix-socket", _h.SocketPath, "http://offload/v1/daemon");
        var other = await RunAsync("setpriv", $"--reuid={uid}", $"--regid={gid}", "--clear-groups",
            "curl", "-sS", "--max-time", "10", "--unix-socket", _h.SocketPath, "http://offload/v1/daemon");

        Assert.True(owner.Exit == 0 && owner.Output.Contains("\"pid\"", StringComparison.Ordinal), $"the owner was refused: {owner}");
        // Refused by the uid check (not the modes): connected, then closed unanswered, and the daemon says why.
        Assert.True(other.Exit != 0 && !other.Output.Contains("\"pid\"", StringComparison.Ordinal), $"another user got an answer: {other}");
        var log = Path.Combine(_h.OffloadHome, "data", "daemon.log");
        var refused = $"refused an API connection from uid {uid}";
        try
        {
            await WaitUntilAsync(() => File.ReadAllText(log).Contains(refused, StringComparison.Ordinal), TimeSpan.FromSeconds(10));
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"the daemon log never said \"{refused}\":\n{File.ReadAllText(log)}");
        }
    }

    [Fact]
    public async Task PeerUid_OfAConnectionFromThisProcess_IsOurUid()
    {
        Assert.Equal(0, (await _h.OffloadAsync("daemon", "start")).ExitCode);
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        await socket.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(_h.SocketPath));

        Assert.Equal(OwnerOnlyConnections.CurrentUid, OwnerOnlyConnections.PeerUid(socket));
    }

    private static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(20));
        while (!condition())
        {
            await timer.WaitForNextTickAsync(cts.Token);
        }
    }

    private static async Task<(int Exit, string Output)> RunAsync(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }
}

/// <summary>A fact that needs root (to create a second user); skipped, with the reason, for anyone else.</summary>
public sealed class RootFactAttribute : FactAttribute
{
    public RootFactAttribute()
    {
        if (geteuid() != 0)
        {
            Skip = "needs root to create a second user and run a client as it (CI runs as root)";
        }
    }

    [DllImport("libc")]
#pragma warning disable SYSLIB1054
    private static extern uint geteuid();
#pragma warning restore SYSLIB1054
}
