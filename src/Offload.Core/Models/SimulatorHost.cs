using Offload.Simulator;

namespace Offload.Models;

/// <summary>
/// Owns the in-process Simulator behind <c>sim:</c> models: started on first use, once, whoever asks first,
/// and stopped when the owner (the daemon, a test) disposes it. The request's model field picks the scenario.
/// </summary>
public sealed class SimulatorHost : IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private SimulatorServer? _server;
    private bool _disposed;

    /// <summary>The process-wide host the default <see cref="ChatClientFactory"/> uses.</summary>
    public static SimulatorHost Shared { get; } = new();

    /// <summary>The running Simulator's base URL, starting it if it is not running yet.</summary>
    public async Task<Uri> GetBaseUrlAsync(CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _server) is { } running)
        {
            return running.BaseUrl;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _server ??= await SimulatorServer.StartAsync(new SimulatorOptions(), cancellationToken).ConfigureAwait(false);
            return _server.BaseUrl;
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            _disposed = true;
            if (_server is { } server)
            {
                _server = null;
                await server.DisposeAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            _gate.Release();
        }
    }
}
