using System.Net.Sockets;
using System.Text;

namespace Offload.Tests.Resilience;

/// <summary>
/// A stand-in that answers every HTTP request on a Unix socket with one fixed JSON body: for example a daemon
/// of another version answering <c>GET /v1/daemon</c>.
/// </summary>
public sealed class FakeDaemon : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _requests;

    public int Requests => Volatile.Read(ref _requests);

    public FakeDaemon(string socketPath, string json)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(socketPath)!);
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        _listener.Listen(16);
        var body = Encoding.UTF8.GetBytes(json);
        var head = Encoding.ASCII.GetBytes(
            $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n");
        _loop = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                Socket client;
                try
                {
                    client = await _listener.AcceptAsync(_stop.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }

                using (client)
                {
                    var buffer = new byte[8192];
                    var request = new StringBuilder();
                    while (!request.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                    {
                        var n = await client.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                        if (n == 0)
                        {
                            break;
                        }

                        request.Append(Encoding.ASCII.GetString(buffer, 0, n));
                    }

                    Interlocked.Increment(ref _requests);
                    await client.SendAsync(head, SocketFlags.None, _stop.Token);
                    await client.SendAsync(body, SocketFlags.None, _stop.Token);
                    client.Shutdown(SocketShutdown.Both);
                }
            }
        });
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }
}
