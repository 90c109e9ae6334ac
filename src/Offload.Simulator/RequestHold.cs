namespace Offload.Simulator;

/// <summary>Model requests kept waiting by <see cref="SimulatorServer.Hold"/>; disposing it releases them.</summary>
public sealed class RequestHold : IDisposable
{
    private readonly Func<RecordedRequest, bool> _predicate;
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _left;

    internal RequestHold(Func<RecordedRequest, bool> predicate, int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        _predicate = predicate;
        _left = count;
    }

    /// <summary>Lets the held requests (and any that would still be held) go on to their answers.</summary>
    public void Release() => _released.TrySetResult();

    public void Dispose() => Release();

    /// <summary>Whether this hold keeps <paramref name="request"/>; counts it when it does. Called under the server's lock.</summary>
    internal bool TryTake(RecordedRequest request)
    {
        if (_left == 0 || _released.Task.IsCompleted || !_predicate(request))
        {
            return false;
        }

        _left--;
        return true;
    }

    internal Task WaitAsync(CancellationToken cancellationToken) => _released.Task.WaitAsync(cancellationToken);
}
