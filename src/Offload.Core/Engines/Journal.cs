using Offload.Daemon;
using Offload.Protocol;
using Offload.Store;

namespace Offload.Engines;

/// <summary>
/// A run attempt's pen on its task's journal: every event is stored (fenced by the attempt
/// number) before it is published to live views or acted on.
/// </summary>
public sealed class Journal(ITaskStore store, EventHub hub, long taskId, int attempt)
{
    public long TaskId { get; } = taskId;
    public int Attempt { get; } = attempt;

    public async Task<AgentEvent> AppendAsync(AgentEvent e, CancellationToken cancellationToken = default)
    {
        var stored = await store.AppendAsync(TaskId, Attempt, e, cancellationToken);
        hub.Publish(stored);
        return stored;
    }

    /// <summary>Stores the events in one transaction, all or none, then publishes them.</summary>
    public async Task<IReadOnlyList<AgentEvent>> AppendAllAsync(IReadOnlyList<AgentEvent> events, CancellationToken cancellationToken = default)
    {
        var stored = await store.AppendAllAsync(TaskId, Attempt, events, cancellationToken);
        foreach (var e in stored)
        {
            hub.Publish(e);
        }

        return stored;
    }

    public Task<IReadOnlyList<AgentEvent>> ReadAllAsync(CancellationToken cancellationToken = default) =>
        store.ReadEventsAsync(TaskId, 0, int.MaxValue, cancellationToken);
}
