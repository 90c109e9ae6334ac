using Offload.Agent;
using Offload.Protocol;
using Offload.Tests.EndToEnd;
using static Offload.Tests.Resilience.ResilienceKit;

namespace Offload.Tests.Resilience;

/// <summary>A tool call cut off by kill -9 is not run again behind the model's back: the model is told, and decides.</summary>
public sealed class InterruptedCallTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task AToolCallCutOffByAKill_IsNotRunAgain_AndTheModelIsToldItWasInterrupted()
    {
        // The scenario answers the interrupted note with its own words: the final summary proves the model was told.
        var model = _h.Scenario("interrupted", new
        {
            name = "interrupted",
            turns = new object[]
            {
                new { text = "running the long step", toolCalls = new[] { new { name = "Bash", input = new { command = "echo ran >> runs.txt; sleep 30" } } } },
                new { text = "not reached: a rule answers first" },
            },
            rules = new[]
            {
                new { whenContains = "interrupted by a restart", turn = new { text = "The long step was interrupted by a restart; I checked runs.txt instead of running it again." } },
            },
        });
        var pid = await _h.DaemonPidAsync();
        var task = await _h.RunTaskAsync(model, "one long step");
        var runs = Path.Combine(task.Worktree, "runs.txt");
        await WaitUntilAsync(() => File.Exists(runs), TimeSpan.FromSeconds(30), "the long step never started");

        await KillNineAsync(pid);
        var done = await _h.WaitAsync(task.Id); // starts the next daemon, which resumes the task

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.Equal("The long step was interrupted by a restart; I checked runs.txt instead of running it again.", done.Summary);
        var events = await _h.EventsAsync(task.Id);
        AssertGapless(events, "the task");
        var result = Assert.Single(events.OfType<ToolResulted>());
        Assert.True(result.IsError);
        Assert.Equal(Conversation.InterruptedNote, result.Output);
        Assert.Contains("check the files before retrying", result.Output);
        Assert.Single(events.OfType<ToolCalled>());
        Assert.Equal(["ran"], File.ReadAllLines(runs)); // ran once, before the kill; never again
    }
}
