using System.Text.Json;
using Offload.Protocol;
using Offload.Store;

namespace Offload.Tests.Store;

/// <summary>The store's writer keeps its statements and runs its own transactions: a real SQLite file, reopened to check.</summary>
public sealed class SqliteTaskStoreTests : IDisposable
{
    private static readonly JsonElement GlobInput = JsonSerializer.SerializeToElement(new { pattern = "*.md" });

    private readonly string _dir = Directory.CreateTempSubdirectory("offload-store-").FullName;

    private string Database => Path.Combine(_dir, "offload.db");

    [Fact]
    public async Task ManyTurns_KeepTheJournalGaplessAndTheProjectionExact_AcrossAReopen()
    {
        long id;
        using (var store = SqliteTaskStore.Open(Database))
        {
            id = (await CreateAsync(store)).Id;
            var attempt = await store.BeginAttemptAsync(id);
            for (var turn = 1; turn <= 300; turn++)
            {
                await store.AppendAllAsync(id, attempt, Turn(turn));
                await store.AppendAsync(id, attempt, new ToolResulted($"toolu_{turn}", "Glob", "README.md", false));
            }
        }

        using var reopened = SqliteTaskStore.Open(Database);
        var events = await reopened.ReadEventsAsync(id);
        Assert.Equal(Enumerable.Range(1, 1 + (300 * 4)).Select(i => (long)i), events.Select(e => e.Seq));
        var task = (await reopened.GetTaskAsync(id))!;
        Assert.Equal(300, task.Turns);
        Assert.Equal(300 * (100 + 50 + 5), task.Usage.InputTokens);
        Assert.Equal(300 * 10, task.Usage.OutputTokens);
        Assert.Equal(300 * 0.0001234m, task.Usage.CostUsd);
    }

    [Fact]
    public async Task RefusedBatch_LeavesNothing_AndTheNextWritesGoThrough()
    {
        using var store = SqliteTaskStore.Open(Database);
        var id = (await CreateAsync(store)).Id;
        var stale = await store.BeginAttemptAsync(id);
        var current = await store.BeginAttemptAsync(id);

        await Assert.ThrowsAsync<StaleAttemptException>(() => store.AppendAllAsync(id, stale, Turn(1)));
        await Assert.ThrowsAsync<StaleAttemptException>(() => store.AppendAsync(id, stale, new AssistantMessage(1, "late")));
        var stored = await store.AppendAllAsync(id, current, Turn(1));
        await store.AppendUnfencedAsync(id, new StatusChanged(OffloadTaskStatus.Queued, OffloadTaskStatus.Running));

        Assert.Equal([2L, 3L, 4L], stored.Select(e => e.Seq));
        var events = await store.ReadEventsAsync(id);
        Assert.Equal([typeof(TaskCreated), typeof(UsageRecorded), typeof(AssistantMessage), typeof(ToolCalled), typeof(StatusChanged)], events.Select(e => e.GetType()));
        Assert.All(events.Skip(1), e => Assert.Equal(current, e.Attempt));
        var task = (await store.GetTaskAsync(id))!;
        Assert.Equal((1, OffloadTaskStatus.Running, 0.0001234m), (task.Turns, task.Status, task.Usage.CostUsd));
    }

    [Fact]
    public async Task ManyTasksAppendingAtOnce_AreCommittedTogether_EachGapless_AndAStaleWriterFailsAlone()
    {
        long[] ids;
        int[] attempts;
        int[] staleAttempts;
        using (var store = SqliteTaskStore.Open(Database))
        {
            ids = new long[40];
            attempts = new int[ids.Length];
            staleAttempts = new int[ids.Length];
            for (var i = 0; i < ids.Length; i++)
            {
                ids[i] = (await CreateAsync(store)).Id;
                staleAttempts[i] = await store.BeginAttemptAsync(ids[i]);
                attempts[i] = await store.BeginAttemptAsync(ids[i]);
            }

            // 40 writers of 25 turns each, all at once, and a writer with an old attempt number beside each of them:
            // their appends wait for the lock together and share commits.
            var writers = ids.Select((id, i) => Task.Run(async () =>
            {
                for (var turn = 1; turn <= 25; turn++)
                {
                    await store.AppendAllAsync(id, attempts[i], Turn(turn));
                    await store.AppendAsync(id, attempts[i], new ToolResulted($"toolu_{turn}", "Glob", "README.md", false));
                }
            }));
            var stale = ids.Select((id, i) => Task.Run(async () =>
            {
                for (var turn = 1; turn <= 25; turn++)
                {
                    await Assert.ThrowsAsync<StaleAttemptException>(() => store.AppendAllAsync(id, staleAttempts[i], Turn(turn)));
                }
            }));
            await Task.WhenAll(writers.Concat(stale));
        }

        using var reopened = SqliteTaskStore.Open(Database);
        for (var i = 0; i < ids.Length; i++)
        {
            var events = await reopened.ReadEventsAsync(ids[i]);
            Assert.Equal(Enumerable.Range(1, 1 + (25 * 4)).Select(n => (long)n), events.Select(e => e.Seq));
            Assert.All(events.Skip(1), e => Assert.Equal(attempts[i], e.Attempt));
            Assert.Equal(25, (await reopened.GetTaskAsync(ids[i]))!.Turns);
        }
    }

    [Fact]
    public async Task AnAppendCancelledWhileWaitingForTheLock_IsNotStored()
    {
        using var store = SqliteTaskStore.Open(Database);
        var id = (await CreateAsync(store)).Id;
        var attempt = await store.BeginAttemptAsync(id);
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.AppendAsync(id, attempt, new AssistantMessage(1, "never"), cancelled.Token));
        await store.AppendAsync(id, attempt, new AssistantMessage(1, "stored"));

        var events = await store.ReadEventsAsync(id);
        Assert.Equal(["stored"], events.OfType<AssistantMessage>().Select(m => m.Text));
        Assert.Equal([1L, 2L], events.Select(e => e.Seq));
    }

    [Fact]
    public async Task AStoreClosedWhileWritesPourIn_HasStoredEveryWriteThatSucceeded_AndRefusedTheRest()
    {
        long[] ids;
        var succeeded = new System.Collections.Concurrent.ConcurrentBag<(long Id, string Text)>();
        using (var store = SqliteTaskStore.Open(Database))
        {
            ids = new long[20];
            var attempts = new int[ids.Length];
            for (var i = 0; i < ids.Length; i++)
            {
                ids[i] = (await CreateAsync(store)).Id;
                attempts[i] = await store.BeginAttemptAsync(ids[i]);
            }

            using var started = new CountdownEvent(ids.Length);
            var writers = ids.Select((id, i) => Task.Run(async () =>
            {
                started.Signal();
                for (var n = 0; ; n++)
                {
                    try
                    {
                        var text = $"message {n}";
                        await store.AppendAsync(id, attempts[i], new AssistantMessage(n + 1, text));
                        succeeded.Add((id, text));
                    }
                    catch (ObjectDisposedException)
                    {
                        return; // refused once the store is closing: the caller knows it was not stored
                    }
                }
            })).ToList();
            started.Wait();
            while (succeeded.Count < 500)
            {
                await Task.Yield();
            }

            store.Dispose(); // while the writers are still going
            await Task.WhenAll(writers);
        }

        using var reopened = SqliteTaskStore.Open(Database);
        var stored = new HashSet<(long, string)>();
        foreach (var id in ids)
        {
            var events = await reopened.ReadEventsAsync(id);
            Assert.Equal(Enumerable.Range(1, events.Count).Select(n => (long)n), events.Select(e => e.Seq));
            stored.UnionWith(events.OfType<AssistantMessage>().Select(m => (id, m.Text)));
        }

        Assert.Subset(stored, succeeded.ToHashSet());
        Assert.True(succeeded.Count >= 500);
    }

    private static IReadOnlyList<AgentEvent> Turn(int turn) =>
        [new UsageRecorded("sim:x", 100, 10, 50, 5, 0.0001234m), new AssistantMessage(turn, ""), new ToolCalled(turn, $"toolu_{turn}", "Glob", GlobInput)];

    private static Task<TaskInfo> CreateAsync(SqliteTaskStore store) =>
        store.CreateTaskAsync(new NewTask("t", "prompt", "sim:x", "builtin", "/repo", "main", "abc123", id => ($"offload/{id}", $"/worktrees/{id}")));

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
