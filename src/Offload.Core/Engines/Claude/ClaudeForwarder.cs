using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Offload.Engines.Claude;

/// <summary>
/// The sandbox's end of Claude Code's model bridge (<c>offload-daemon claude-bridge PORT SOCKET -- claude …</c>,
/// the first program inside bubblewrap): listens on 127.0.0.1:PORT of the sandbox's own network, copies
/// each connection's bytes to the daemon's Unix socket bound in at SOCKET, and only then starts Claude
/// Code, so its first request finds the bridge open. Claude Code inherits stdin, stdout and stderr; an
/// interrupt is passed on to it (it then ends its commands and exits), and its exit code is this one's.
/// </summary>
public static class ClaudeForwarder
{
    public static async Task<int> RunAsync(int port, string socket, IReadOnlyList<string> command, CancellationToken interrupted)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, port));
        listener.Listen(64);
        _ = AcceptAsync(listener, socket);

        var info = new ProcessStartInfo(command[0]) { UseShellExecute = false };
        foreach (var argument in command.Skip(1))
        {
            info.ArgumentList.Add(argument);
        }

        using var child = Process.Start(info)!;
        using var onInterrupt = interrupted.Register(() => ClaudeProcess.Interrupt(child.Id));
        await child.WaitForExitAsync(CancellationToken.None);
        return child.ExitCode;
    }

    private static async Task AcceptAsync(Socket listener, string socket)
    {
        while (true)
        {
            var client = await listener.AcceptAsync();
            _ = PipeAsync(client, socket);
        }
    }

    private static async Task PipeAsync(Socket client, string socket)
    {
        using (client)
        using (var daemon = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            try
            {
                await daemon.ConnectAsync(new UnixDomainSocketEndPoint(socket));
                await Task.WhenAll(CopyAsync(client, daemon), CopyAsync(daemon, client));
            }
            catch (SocketException)
            {
                // the daemon is gone or the client hung up: Claude Code sees a closed connection and retries
            }
        }
    }

    private static async Task CopyAsync(Socket from, Socket to)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            int read;
            while ((read = await from.ReceiveAsync(buffer, SocketFlags.None)) > 0)
            {
                await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None);
            }

            to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            from.Close();
            to.Close();
        }
    }
}
