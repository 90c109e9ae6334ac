using System.Text.Json;
using Offload.Protocol;
using Offload.Store;

namespace Offload.Tests.Resilience;

/// <summary>The attempt number fences the journal: a run that lost its task can no longer write to it, not even part of a step.</summary>
public sealed class StoreFencingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("offload-fence-").FullName;
    private readonly SqliteTaskStore _store;

    public StoreFencingTests() => _store = SqliteTaskStore.Open(Path.Combine(_dir, "offload.db"));

    public void Dispose()
    {
        _store.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private static string Json(AgentEvent e) => JsonSerializer.Serialize(e, OffloadJson.Options);

    private Task<TaskInfo> NewTaskAsync() => _store.CreateTaskAsync(new NewTask(
        "fenced", "prompt", "sim:echo", "builtin", _dir, "main", "0000000", id => ($"offload/{id}-fenced", Path.Combine(_dir, $"{id}-fenced"))));

    [Fact]
    public async Task AWriteFromAStaleAttempt_IsRefused_AndLeavesTheJournalAsItWas()
    {
        var task = await NewTaskAsync();
        var first = await _store.BeginAttemptAsync(task.Id);
        await _store.AppendAsync(task.Id, first, new StatusChanged(OffloadTaskStatus.Queued, OffloadTaskStatus.Running));
        var second = await _store.BeginAttemptAsync(task.Id);
        var before = await _store.ReadEventsAsync(task.Id);

        var single = await Assert.ThrowsAsync<StaleAttemptException>(() =>
            _store.AppendAsync(task.Id, first, new AssistantMessage(1, "from the old run")));
        var batch = await Assert.ThrowsAsync<StaleAttemptException>(() => _store.AppendAllAsync(task.Id, first,
            [new AssistantMessage(1, "from the old run"), new ToolCalled(1, "call-1", "Bash", JsonSerializer.SerializeToElement(new { command = "rm -rf ." }))]));

        Assert.Equal(first, single.Attempt);
        Assert.Equal(first, batch.Attempt);
        Assert.Equal(before, await _store.ReadEventsAsync(task.Id));
        Assert.Equal(0, (await _store.GetTaskAsync(task.Id))!.Turns);
        var current = await _store.AppendAsync(task.Id, second, new AssistantMessage(1, "from the current run"));
        Assert.Equal(before.Count + 1, current.Seq);
        Assert.Equal(second, current.Attempt);
    }

    [Fact]
    public async Task AnAnswerAndItsToolCalls_AreStoredTogether_WithConsecutiveSeqs()
    {
        var task = await NewTaskAsync();
        var attempt = await _store.BeginAttemptAsync(task.Id);
        var input = JsonSerializer.SerializeToElement(new { command = "ls" });

        var stored = await _store.AppendAllAsync(task.Id, attempt,
            [new AssistantMessage(1, "looking"), new ToolCalled(1, "a", "Bash", input), new ToolCalled(1, "b", "Bash", input)]);

        Assert.Equal([2L, 3L, 4L], stored.Select(e => e.Seq));
        Assert.Equal(stored.Select(Json), (await _store.ReadEventsAsync(task.Id, afterSeq: 1)).Select(Json));
        Assert.Equal(1, (await _store.GetTaskAsync(task.Id))!.Turns);
    }
}
