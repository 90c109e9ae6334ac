namespace Offload.Engines;

/// <summary>
/// A run's wall-clock limit (<c>--timeout</c>), counted only while the task works: while it waits for the user's
/// answer (needs_input) the clock stands still, so a task left waiting overnight is not ended as limited when the
/// answer comes. Cancels <paramref name="deadline"/> when the time is used up.
/// </summary>
public sealed class WallClock(CancellationTokenSource deadline, TimeSpan? limit, TimeProvider time)
{
    private readonly Lock _gate = new();
    private TimeSpan _used;
    private long _since = time.GetTimestamp();
    private int _paused;

    /// <summary>A clock that never runs out (no limit), for callers without a run.</summary>
    public static WallClock None { get; } = new(new CancellationTokenSource(), null, TimeProvider.System);

    /// <summary>Stops the clock until the returned scope is disposed (pauses nest).</summary>
    public IDisposable Pause()
    {
        lock (_gate)
        {
            if (_paused++ == 0 && limit is not null)
            {
                _used += time.GetElapsedTime(_since);
                deadline.CancelAfter(Timeout.InfiniteTimeSpan);
            }
        }

        return new Resumer(this);
    }

    private void Resume()
    {
        lock (_gate)
        {
            if (--_paused == 0 && limit is { } total)
            {
                _since = time.GetTimestamp();
                var left = total - _used;
                deadline.CancelAfter(left > TimeSpan.Zero ? left : TimeSpan.Zero);
            }
        }
    }

    private sealed class Resumer(WallClock clock) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                clock.Resume();
            }
        }
    }
}
