using System.Diagnostics;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Offload.Agent;
using Offload.Protocol;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;
using static Offload.Tests.Resilience.ResilienceKit;

namespace Offload.Tests.Resilience;

/// <summary>One daemon per OFFLOAD_HOME, and a graceful stop that loses nothing.</summary>
public sealed class DaemonLifecycleTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task SecondDaemonOnTheSameHome_SaysOneIsRunning_AndExitsNonZero_LeavingTheFirstServing()
    {
        var pid = await _h.DaemonPidAsync();

        var second = await _h.OffloadAsync("daemon", "run");

        Assert.Equal(5, second.ExitCode);
        Assert.Contains("another Offload daemon is already running", second.Stderr);
        Assert.Contains(Path.Combine(_h.OffloadHome, "run", "daemon.lock"), second.Stderr);
        Assert.Contains("offload daemon stop", second.Stderr);
        Assert.Equal(pid, await _h.DaemonPidAsync());
        var task = await _h.RunTaskAsync("sim:echo", "still served");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);
    }

    [Fact]
    public async Task DaemonStop_StopsRunningTasksAtASafePoint_AndTheyResumeAndFinishAtTheNextStart()
    {
        // the first step runs for 4 s: the stop arrives while it runs, and waits for it (a safe point is between steps)
        var steps = Enumerable.Range(0, 4).Select(i => Tool("Bash", new { command = $"sleep {(i == 0 ? "4" : "0.2")}; echo step {i} >> steps.txt; cat steps.txt" }, $"step {i}"));
        var model = _h.Scenario("stoppable", Scenario([.. steps, Final("four steps done")]));
        var pid = await _h.DaemonPidAsync();
        var task = await _h.RunTaskAsync(model, "four slow steps");
        Assert.NotNull(await _h.NextEventAsync([task.Id], e => e is ToolCalled, TimeSpan.FromSeconds(30), includePast: true));

        var clock = Stopwatch.StartNew();
        var stop = await _h.OffloadAsync("daemon", "stop");
        clock.Stop();

        Assert.Equal(0, stop.ExitCode);
        Assert.Contains("daemon stopped", stop.Stdout);
        Assert.False(IsAlive(pid));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"the stop took {clock.Elapsed}");

        // with no daemon running, the database says: still running, stopped after the step that was running
        using (var db = new SqliteConnection($"Data Source={Path.Combine(_h.OffloadHome, "data", "offload.db")};Mode=ReadOnly;Pooling=False"))
        {
            db.Open();
            using var query = db.CreateCommand();
            query.CommandText = "SELECT status, (SELECT count(*) FROM events WHERE task_id = $id AND type = 'tool.result') FROM tasks WHERE id = $id";
            query.Parameters.AddWithValue("$id", task.Id);
            using var row = query.ExecuteReader();
            Assert.True(row.Read());
            Assert.Equal("running", row.GetString(0));
            Assert.Equal(1, row.GetInt64(1));
        }


        // the next command starts a daemon, which resumes the task where it stopped
        var done = await _h.WaitAsync(task.Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.Equal("four steps done", done.Summary);
        var events = await _h.EventsAsync(task.Id);
        AssertGapless(events, "the stopped task");
        Assert.True(events.Any(e => e is StatusChanged { To: OffloadTaskStatus.Queued, Reason: "resuming after a daemon restart" }),
            "not resumed after a restart: " + string.Join(", ", events.Select(e => e is StatusChanged c ? $"{c.To}({c.Reason})" : e.GetType().Name)));
        Assert.DoesNotContain(events, e => e is ToolResulted r && r.Output == Conversation.InterruptedNote);
        Assert.Equal(4, events.OfType<ToolResulted>().Count(r => r.ExitCode == 0));
        Assert.Equal(string.Concat(Enumerable.Range(0, 4).Select(i => $"step {i}\n")), _h.Git("show", $"{done.Branch}:steps.txt"));
    }

    [Fact]
    public async Task LogsFollowAndWait_GoOnAcrossADaemonStopAndAKill_SeeingEveryEventOnce()
    {
        var steps = Enumerable.Range(0, 4).Select(i => Tool("Bash", new { command = $"sleep {(i < 2 ? "3" : "0.2")}; echo step {i}" }, $"step {i}"));
        var model = _h.Scenario("restarted", Scenario([.. steps, Final("done despite two restarts")]));
        await _h.DaemonPidAsync();
        var task = await _h.RunTaskAsync(model, "outlive two daemons");
        using var follower = _h.Start("logs", "-f", "--json", Id(task.Id));
        using var waiter = _h.Start("wait", "--json", Id(task.Id));
        var followed = follower.StandardOutput.ReadToEndAsync();
        var waited = waiter.StandardOutput.ReadToEndAsync();
        var followerErrors = follower.StandardError.ReadToEndAsync();
        var waiterErrors = waiter.StandardError.ReadToEndAsync();

        Assert.NotNull(await _h.NextEventAsync([task.Id], e => e is ToolCalled, TimeSpan.FromSeconds(30), includePast: true));
        Assert.Equal(0, (await _h.OffloadAsync("daemon", "stop")).ExitCode);
        var second = await _h.DaemonPidAsync();
        Assert.NotNull(await _h.NextEventAsync([task.Id], e => e is ToolCalled { Turn: 2 }, TimeSpan.FromSeconds(30), includePast: true));
        await KillNineAsync(second);

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await follower.WaitForExitAsync(timeout.Token);
        await waiter.WaitForExitAsync(timeout.Token);
        Assert.True(follower.ExitCode == 0, $"logs -f exited {follower.ExitCode}: {await followerErrors}");
        Assert.True(waiter.ExitCode == 0, $"wait exited {waiter.ExitCode}: {await waiterErrors}");
        var done = JsonSerializer.Deserialize<TaskInfo[]>(await waited, OffloadJson.Options)!.Single();
        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.Equal("done despite two restarts", done.Summary);
        var all = await _h.EventsAsync(task.Id);
        AssertGapless(all, "the task");
        var seen = (await followed).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonSerializer.Deserialize<AgentEvent>(l, OffloadJson.Options)!.Seq);
        Assert.Equal(all.Select(e => e.Seq), seen);
        Assert.Equal(2, all.Count(e => e is StatusChanged { To: OffloadTaskStatus.Queued }));
    }
}
