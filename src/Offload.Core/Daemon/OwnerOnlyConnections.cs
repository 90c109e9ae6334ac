using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Offload.Daemon;

/// <summary>
/// The API socket answers only the user the daemon runs as. The socket file is 0600 in a 0700
/// folder, but a mode can be loosened by mistake and root ignores it; the kernel's record of who
/// connected (SO_PEERCRED) cannot be. Any other user's connection is closed before a byte is read.
/// </summary>
public static partial class OwnerOnlyConnections
{
    private const int SolSocket = 1;
    private const int SoPeerCred = 17;

    /// <summary>Adds the check to a Kestrel listener: <c>ListenUnixSocket(path, OwnerOnlyConnections.Use)</c>.</summary>
    public static void Use(ListenOptions listen) => listen.Use(next => async connection =>
    {
        var socket = connection.Features.Get<IConnectionSocketFeature>()?.Socket;
        var peer = socket is null ? null : PeerUid(socket);
        var owner = CurrentUid;
        if (peer != owner)
        {
            var logger = listen.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(OwnerOnlyConnections));
            RefusedPeer(logger, peer?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "unknown", owner);
            connection.Abort(new ConnectionAbortedException("the Offload API answers only its owner"));
            return;
        }

        await next(connection);
    });

    /// <summary>The effective uid of this process.</summary>
    public static uint CurrentUid => geteuid();

    /// <summary>The uid of the process at the other end of a Unix socket (struct ucred: pid, uid, gid).</summary>
    public static uint? PeerUid(Socket socket)
    {
        Span<byte> ucred = stackalloc byte[12];
        try
        {
            return socket.GetRawSocketOption(SolSocket, SoPeerCred, ucred) == 12
                ? MemoryMarshal.Read<uint>(ucred[4..8])
                : null;
        }
        catch (SocketException)
        {
            return null;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "refused an API connection from uid {Peer}: only the daemon's owner (uid {Owner}) may use it")]
    private static partial void RefusedPeer(ILogger logger, string peer, uint owner);

    // DllImport rather than LibraryImport: the generated marshalling needs AllowUnsafeBlocks, and geteuid takes nothing.
    [DllImport("libc")]
#pragma warning disable SYSLIB1054
    private static extern uint geteuid();
#pragma warning restore SYSLIB1054
}
