namespace Offload.Store;

/// <summary>A write from a run attempt that no longer holds the task (its lease was taken over).</summary>
public sealed class StaleAttemptException(long taskId, int attempt)
    : Exception($"task {taskId}: attempt {attempt} is no longer current; its write was refused")
{
    public long TaskId { get; } = taskId;
    public int Attempt { get; } = attempt;
}

/// <summary>The database file cannot be used; it is never overwritten.</summary>
public sealed class StoreUnusableException(string message) : Exception(message);
