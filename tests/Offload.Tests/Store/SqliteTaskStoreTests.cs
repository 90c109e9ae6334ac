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

    private static IReadOnlyList<AgentEvent> Turn(int turn) =>
        [new UsageRecorded("sim:x", 100, 10, 50, 5, 0.0001234m), new AssistantMessage(turn, ""), new ToolCalled(turn, $"toolu_{turn}", "Glob", GlobInput)];

    private static Task<TaskInfo> CreateAsync(SqliteTaskStore store) =>
        store.CreateTaskAsync(new NewTask("t", "prompt", "sim:x", "builtin", "/repo", "main", "abc123", id => ($"offload/{id}", $"/worktrees/{id}")));

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
