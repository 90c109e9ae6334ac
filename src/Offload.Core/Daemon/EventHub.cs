using System.Collections.Concurrent;
using System.Threading.Channels;
using Offload.Protocol;

namespace Offload.Daemon;

/// <summary>
/// Fan-out of appended events to live subscribers (SSE clients, waiters). Events are
/// published only after the store has them, so a subscriber that reads the store from its
/// last seq and then follows the hub misses nothing.
/// </summary>
public sealed class EventHub
{
    private readonly ConcurrentDictionary<long, ConcurrentDictionary<Channel<AgentEvent>, byte>> _byTask = new();
    private readonly ConcurrentDictionary<Channel<AgentEvent>, byte> _all = new();

    public void Publish(AgentEvent e)
    {
        if (_byTask.TryGetValue(e.TaskId, out var subscribers))
        {
            foreach (var channel in subscribers.Keys)
            {
                channel.Writer.TryWrite(e);
            }
        }

        foreach (var channel in _all.Keys)
        {
            channel.Writer.TryWrite(e);
        }
    }

    /// <summary>Subscribes to one task (or every task when <paramref name="taskId"/> is null) until disposed.</summary>
    public Subscription Subscribe(long? taskId)
    {
        var channel = Channel.CreateUnbounded<AgentEvent>(new UnboundedChannelOptions { SingleReader = true });
        var set = taskId is { } id ? _byTask.GetOrAdd(id, _ => new()) : _all;
        set[channel] = 0;
        return new Subscription(channel.Reader, () =>
        {
            set.TryRemove(channel, out _);
            channel.Writer.TryComplete();
        });
    }

    public sealed class Subscription(ChannelReader<AgentEvent> reader, Action dispose) : IDisposable
    {
        public ChannelReader<AgentEvent> Reader { get; } = reader;

        public void Dispose() => dispose();
    }
}
