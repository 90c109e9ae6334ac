using Microsoft.Data.Sqlite;
using Offload.Protocol;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;
using static Offload.Tests.Resilience.ResilienceKit;

namespace Offload.Tests.Resilience;

/// <summary>
/// A run that throws outside the engine ends in a final status with its reason: `wait` returns, and no daemon start
/// runs the task again. Each case queues a task behind a first one that holds the only slot (its Bash call waits for
/// a gate file), breaks something, then opens the gate.
/// </summary>
public sealed class StuckRunTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new();
    private string Gate => Path.Combine(_h.Root, "gate");

    public Task InitializeAsync()
    {
        // The gate lives outside the worktree: run without bwrap, and allow Bash outright (as CrashRecoveryTests do).
        _h.Env["OFFLOAD_BWRAP"] = Path.Combine(_h.Root, "no-bwrap");
        _h.WriteConfig(new { maxParallel = 1, permissions = new { allow = new[] { "Bash" } } });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _h.DisposeAsync();

    /// <summary>Starts the task that holds the only slot until <see cref="Gate"/> exists, and waits until its call runs.</summary>
    private async Task<TaskInfo> HoldTheSlotAsync()
    {
        var holder = await _h.RunTaskAsync(_h.Scenario("holder", Scenario(
            Tool("Bash", new { command = $"while [ ! -e '{Gate}' ]; do sleep 0.05; done; echo through > gate.txt" }),
            Final("held the slot"))), "hold the only slot");
        Assert.NotNull(await _h.NextEventAsync([holder.Id], e => e is ToolCalled, TimeSpan.FromSeconds(30), includePast: true));
        return holder;
    }

    /// <summary>The task once it has ended, or a failure saying it did not (instead of hanging like `wait` would).</summary>
    private async Task<TaskInfo> EndedAsync(long id)
    {
        var end = await _h.NextEventAsync([id], e => e is StatusChanged s && s.To.IsFinal(), TimeSpan.FromSeconds(30), includePast: true);
        var task = await _h.ShowAsync(id);
        Assert.True(end is not null, $"task {id} did not end: it is {task.Status.ToWire()}; its journal: " +
            string.Join(", ", (await _h.EventsAsync(id)).Select(e => e is StatusChanged s ? $"{s.To.ToWire()}({s.Reason})" : e.GetType().Name)));
        return task;
    }

    [Fact]
    public async Task RepositoryConfigThatStopsParsingWhileTheTaskIsQueued_EndsItFailed_NamingFileLineAndError()
    {
        var holder = await HoldTheSlotAsync();
        var queued = await _h.RunTaskAsync(_h.Scenario("queued", Scenario(Final("never asked"))), "wait for the slot");
        var config = Path.Combine(_h.Repo, ".offload", "config.json");
        Directory.CreateDirectory(Path.GetDirectoryName(config)!);
        File.WriteAllText(config, "{\n  \"limits\": ");
        File.WriteAllText(Gate, "");

        var failed = await EndedAsync(queued.Id);

        Assert.Equal(OffloadTaskStatus.Failed, failed.Status);
        Assert.StartsWith($"the config file {config} is not valid: line 2, column", failed.Error);
        Assert.Contains("(or move it aside)", failed.Error);
        Assert.Equal(OffloadTaskStatus.Succeeded, (await EndedAsync(holder.Id)).Status);
        var wait = await _h.OffloadAsync("wait", Id(queued.Id));
        Assert.True(wait.ExitCode == 8, wait.ToString());

        // a daemon start does not run it again
        var journal = await _h.EventsAsync(queued.Id);
        await KillNineAsync(await _h.DaemonPidAsync());
        await _h.DaemonPidAsync();
        Assert.Equal(OffloadTaskStatus.Failed, (await _h.ShowAsync(queued.Id)).Status);
        Assert.Equal(journal.Count, (await _h.EventsAsync(queued.Id)).Count);
    }

    [Fact]
    public async Task ATaskTheDaemonCannotHandOff_EndsFailedWithTheReason_InsteadOfStayingQueued()
    {
        var holder = await HoldTheSlotAsync();
        var queued = await _h.RunTaskAsync(_h.Scenario("orphan", Scenario(Final("never asked"))), "wait for the slot");
        await KillNineAsync(await _h.DaemonPidAsync());

        // an engine this daemon does not have (a task stored by another build of Offload, say)
        using (var db = new SqliteConnection($"Data Source={Path.Combine(_h.OffloadHome, "data", "offload.db")};Pooling=False"))
        {
            db.Open();
            using var update = db.CreateCommand();
            update.CommandText = "UPDATE tasks SET engine = 'retired' WHERE id = $id";
            update.Parameters.AddWithValue("$id", queued.Id);
            Assert.Equal(1, update.ExecuteNonQuery());
        }

        File.WriteAllText(Gate, "");
        await _h.DaemonPidAsync();

        var failed = await EndedAsync(queued.Id);
        Assert.Equal(OffloadTaskStatus.Failed, failed.Status);
        Assert.Equal("internal error: this daemon has no engine named 'retired'", failed.Error);
        Assert.Equal(OffloadTaskStatus.Succeeded, (await EndedAsync(holder.Id)).Status);
    }
}
