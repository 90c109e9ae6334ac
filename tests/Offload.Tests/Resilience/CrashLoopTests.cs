using Offload.Agent;
using Offload.Daemon;
using Offload.Protocol;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;
using static Offload.Tests.Resilience.ResilienceKit;

namespace Offload.Tests.Resilience;

/// <summary>
/// A task whose pickup takes the daemon down is not requeued forever: the real daemon is killed with kill -9 each time it
/// resumes the task, before any progress (its model answers only after a minute). At the start that finds it running for the
/// <c>limits.maxRestarts</c>-th time in a row without progress it ends failed, naming the cause; a task beside it that makes
/// progress between the kills goes on (it has 500 short steps: it is still at work when the test ends).
/// </summary>
public sealed class CrashLoopTests : IAsyncDisposable
{
    private readonly OffloadHarness _h = new();

    public async ValueTask DisposeAsync() => await _h.DisposeAsync();

    [Theory]
    [InlineData(null, 3)]
    [InlineData(2, 2)]
    public async Task ATaskTheDaemonDiesOnAtEachPickup_EndsFailedAfterMaxRestarts_WhileATaskMakingProgressGoesOn(int? maxRestarts, int expected)
    {
        _h.Env["OFFLOAD_BWRAP"] = Path.Combine(_h.Root, "no-bwrap"); // no sandbox, Bash allowed: the steady task's calls just run
        object limits = maxRestarts is { } max ? new { maxRestarts = max } : new { };
        _h.WriteConfig(new { maxParallel = 2, limits, permissions = new { allow = new[] { "Bash" } } });
        var stuck = await _h.RunTaskAsync(_h.Scenario("stuck", Scenario(Final("answered at last", delayMs: 60_000))), "never gets an answer");
        var steady = await _h.RunTaskAsync(_h.Scenario("steady", Scenario(
            [.. Enumerable.Range(0, 500).Select(i => Tool("Bash", new { command = $"echo {i} >> steps.txt; sleep 0.1" }, $"step {i}")), Final("steady done")])),
            "makes progress between kills");

        long lastPickup = 0;
        for (var kill = 0; kill < expected; kill++)
        {
            // Each start picks the stuck task up again: kill the daemon as soon as that pickup is on record, once the
            // steady task has stored a tool result of its own since this start.
            var pid = await _h.DaemonPidAsync();
            var since = (await _h.EventsAsync(steady.Id)).Count;
            Assert.NotNull(await _h.NextEventAsync([steady.Id], e => e.Seq > since && e is ToolResulted { Output: not Conversation.InterruptedNote },
                TimeSpan.FromSeconds(30), includePast: true));
            var pickup = await _h.NextEventAsync([stuck.Id], e => e.Seq > lastPickup && e is StatusChanged { To: OffloadTaskStatus.Running },
                TimeSpan.FromSeconds(30), includePast: true);
            Assert.True(pickup is not null, $"kill {kill + 1}: the stuck task was not picked up; " + Describe(await _h.EventsAsync(stuck.Id)));
            lastPickup = pickup.Seq;
            await KillNineAsync(pid);
        }

        await _h.DaemonPidAsync();
        var end = await _h.NextEventAsync([stuck.Id], e => e is StatusChanged s && s.To.IsFinal(), TimeSpan.FromSeconds(30), includePast: true);
        var journal = await _h.EventsAsync(stuck.Id);
        Assert.True(end is StatusChanged { To: OffloadTaskStatus.Failed }, $"after {expected} kills the task is not failed: " + Describe(journal));
        var failed = await _h.ShowAsync(stuck.Id);
        Assert.StartsWith($"the daemon stopped {expected} times while running this task without progress", failed.Error);
        Assert.Contains("last on record: the status queued → running", failed.Error);
        Assert.Contains($"`offload retry {stuck.Id}`", failed.Error);

        // picked up once by each daemon that was killed, never by the one that failed it; resumed after each kill but the last
        Assert.Equal(expected, journal.Count(e => e is StatusChanged { To: OffloadTaskStatus.Running }));
        Assert.Equal(expected - 1, journal.Count(e => e is StatusChanged { Reason: Scheduler.ResumeReason }));
        AssertGapless(journal, "the stuck task");

        // the task beside it was resumed by every start, and goes on after the one that failed the stuck task
        var before = (await _h.EventsAsync(steady.Id)).Count;
        Assert.NotNull(await _h.NextEventAsync([steady.Id], e => e.Seq > before && e is ToolResulted { Output: not Conversation.InterruptedNote },
            TimeSpan.FromSeconds(30), includePast: true));
        Assert.Equal(OffloadTaskStatus.Running, (await _h.ShowAsync(steady.Id)).Status);
    }

    [Fact]
    public async Task ATaskParkedOnAQuestionAcrossRestarts_IsNotACrashLoop()
    {
        // Each start resumes it and it asks again: that is waiting for the user, not a daemon dying on it.
        _h.Env["OFFLOAD_BWRAP"] = Path.Combine(_h.Root, "no-bwrap"); // no sandbox and no rule: the command asks first
        _h.WriteConfig(new { limits = new { maxRestarts = 2 } });
        var task = await _h.RunTaskAsync(_h.Scenario("asks", Scenario(Tool("Bash", new { command = "touch asked.txt" }), Final("asked and done"))), "ask first");
        long lastAsked = 0;
        for (var kill = 0; kill < 3; kill++)
        {
            var pid = await _h.DaemonPidAsync();
            var asked = await _h.NextEventAsync([task.Id], e => e.Seq > lastAsked && e is StatusChanged { To: OffloadTaskStatus.NeedsInput },
                TimeSpan.FromSeconds(30), includePast: true);
            Assert.NotNull(asked);
            lastAsked = asked.Seq;
            await KillNineAsync(pid);
        }

        await _h.DaemonPidAsync();
        Assert.NotNull(await _h.NextEventAsync([task.Id], e => e.Seq > lastAsked && e is StatusChanged { To: OffloadTaskStatus.NeedsInput },
            TimeSpan.FromSeconds(30), includePast: true));
        var approve = await _h.OffloadAsync("approve", Id(task.Id));
        Assert.True(approve.ExitCode == 0, approve.ToString());
        var done = await _h.WaitAsync(task.Id);
        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status.ToWire()}: {done.Error}");
    }

    private static string Describe(IEnumerable<AgentEvent> journal) =>
        string.Join(", ", journal.Select(e => e is StatusChanged s ? $"{s.To.ToWire()}({s.Reason})" : e.GetType().Name));
}
