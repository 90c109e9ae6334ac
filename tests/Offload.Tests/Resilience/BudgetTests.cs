using System.Diagnostics;
using System.Globalization;
using Offload.Protocol;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;
using static Offload.Tests.Resilience.ResilienceKit;

namespace Offload.Tests.Resilience;

/// <summary>
/// Budgets end a task in status <c>limited</c> with the reason in <c>ls</c> and <c>show</c>; Bash has its own
/// timeout; a tool result over the cap is cut for the model and kept whole on disk.
/// </summary>
public sealed class BudgetTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private string Steps(string name, int count, Func<int, string> command) =>
        _h.Scenario(name, Scenario([.. Enumerable.Range(0, count).Select(i => Tool("Bash", new { command = command(i) })), Final("never reached")]));

    /// <summary>Waits for the task and checks it ended limited with the reason in every view; returns the task.</summary>
    private async Task<TaskInfo> AssertLimitedAsync(long id, string reason)
    {
        var wait = await _h.OffloadAsync("wait", Id(id));
        Assert.True(wait.ExitCode == 9, wait.ToString());
        var done = await _h.ShowAsync(id);
        Assert.Equal(OffloadTaskStatus.Limited, done.Status);
        Assert.Contains(reason, done.Error);
        var show = await _h.OffloadAsync("show", Id(id));
        Assert.Contains($"status    limited · {done.Error}", show.Stdout);
        var line = (await _h.OffloadAsync("ls")).Stdout.Split('\n').Single(l => l.StartsWith(Id(id), StringComparison.Ordinal));
        Assert.Contains("limited", line);
        Assert.Contains(reason.Length > 40 ? reason[..40] : reason, line);
        var finished = (await _h.EventsAsync(id)).OfType<TaskFinished>().Single();
        Assert.Equal(OffloadTaskStatus.Limited, finished.Status);
        return done;
    }

    [Fact]
    public async Task MaxTurns_StopsTheTaskLimited_AfterThatManyModelTurns()
    {
        var task = await _h.RunTaskAsync(Steps("turns", 6, i => $"echo {i}"), "many turns", "--max-turns", "2");

        var done = await AssertLimitedAsync(task.Id, "turn limit reached (2 turns)");

        Assert.Equal(2, done.Turns);
        Assert.Equal(2, (await _h.EventsAsync(task.Id)).OfType<ToolResulted>().Count());
    }

    [Fact]
    public async Task MaxTurnsFromTheConfig_AppliesWhenTheRunGivesNone()
    {
        _h.WriteConfig(new { limits = new { maxTurns = 1 } });

        var task = await _h.RunTaskAsync(Steps("config-turns", 4, i => $"echo {i}"), "limited by config");

        Assert.Equal(1, (await AssertLimitedAsync(task.Id, "turn limit reached (1 turns)")).Turns);
    }

    [Fact]
    public async Task MaxCost_StopsTheTaskLimited_OnceItsSpendReachesTheCap()
    {
        // sim: models are free; a provider of kind sim under another name can be priced
        var scenario = _h.Scenario("costly", Scenario([.. Enumerable.Range(0, 8).Select(i => Tool("Bash", new { command = $"echo {i}" })), Final("never")]));
        var model = "paidsim:" + scenario["sim:".Length..];
        _h.WriteConfig(new
        {
            models = new
            {
                providers = new Dictionary<string, object> { ["paidsim"] = new { kind = "sim" } },
                // The Simulator serves most of each request from the prompt cache, as the API would: cache tokens cost too.
                prices = new Dictionary<string, object> { [model] = new { input = 100, output = 100, cacheRead = 100, cacheWrite = 100 } },
            },
        });

        var task = await _h.RunTaskAsync(model, "spend money", "--max-cost", "0.5");

        var done = await AssertLimitedAsync(task.Id, "cost limit reached");
        Assert.True(done.Usage.CostUsd >= 0.5m, $"spent {done.Usage.CostUsd}");
        Assert.True(done.Turns is > 0 and < 8, $"{done.Turns} turns");
        var usage = (await _h.EventsAsync(task.Id)).OfType<UsageRecorded>().ToList();
        Assert.Equal(done.Usage.CostUsd, usage.Sum(u => u.CostUsd));
        Assert.True(usage.SkipLast(1).Sum(u => u.CostUsd) < 0.5m, "the task went on after the cap was reached");
        Assert.Contains("$" + done.Usage.CostUsd.ToString("0.00##", CultureInfo.InvariantCulture), (await _h.OffloadAsync("show", Id(task.Id))).Stdout);
    }

    [Fact]
    public async Task Timeout_StopsTheTaskLimited_AndKillsItsRunningCommand()
    {
        var child = UniqueSleep();
        var model = Steps("slow", 1, _ => $"{child} & echo started > child.txt; sleep 300");
        var clock = Stopwatch.StartNew();

        var task = await _h.RunTaskAsync(model, "take too long", "--timeout", "3s");
        await WaitUntilAsync(() => File.Exists(Path.Combine(task.Worktree, "child.txt")), TimeSpan.FromSeconds(20), "the command never started");
        // the background child may still be a forked shell about to exec sleep: wait for it to show
        await WaitUntilAsync(() => HostPidOf(child) is not null, TimeSpan.FromSeconds(10), "the background child never started");

        await AssertLimitedAsync(task.Id, "wall-clock limit reached (00:00:03)");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed}");
        await WaitUntilAsync(() => HostPidOf(child) is null, TimeSpan.FromSeconds(10), $"`{child}` outlived the timeout");
    }

    [Fact]
    public async Task RepeatedIdenticalToolCall_StopsTheLoopLimited()
    {
        var task = await _h.RunTaskAsync(Steps("loop", 9, _ => "git status --short"), "loop forever");

        await AssertLimitedAsync(task.Id, "repeated the same Bash call 5 times in a row");

        Assert.Equal(5, (await _h.EventsAsync(task.Id)).OfType<ToolCalled>().Count());
    }

    [Fact]
    public async Task BashTimeout_KillsTheCommandsProcessGroup_AndTellsTheModel_TheTaskGoesOn()
    {
        var child = UniqueSleep();
        var model = _h.Scenario("bash-timeout", Scenario(
            Tool("Bash", new { command = $"{child} & sleep 300", timeout = 1500 }),
            Final("the command timed out, moving on")));

        var task = await _h.RunTaskAsync(model, "run something slow");
        var done = await _h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        var result = (await _h.EventsAsync(task.Id)).OfType<ToolResulted>().Single();
        Assert.True(result.IsError);
        Assert.Contains("timed out", result.Output);
        await WaitUntilAsync(() => HostPidOf(child) is null, TimeSpan.FromSeconds(10), $"the background `{child}` outlived the Bash timeout");
    }

    [Fact]
    public async Task ToolResultOverTheCap_IsCutForTheModel_AndKeptWholeOnDisk()
    {
        _h.WriteConfig(new { limits = new { maxToolOutputChars = 2000 } });
        var model = _h.Scenario("big", Scenario(Tool("Bash", new { command = "seq 1 100000" }), Final("read the numbers")));

        var task = await _h.RunTaskAsync(model, "print a lot");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);

        var result = (await _h.EventsAsync(task.Id)).OfType<ToolResulted>().Single();
        Assert.True(result.Truncated);
        Assert.True(result.Output.Length <= 2000, $"{result.Output.Length} chars reached the model");
        Assert.Contains("bytes of output cut here", result.Output);
        Assert.StartsWith("1\n2\n3\n", result.Output);
        Assert.EndsWith("99999\n100000", result.Output);
        Assert.NotNull(result.FullOutputPath);
        Assert.Contains(result.FullOutputPath, result.Output);
        Assert.StartsWith(_h.OffloadHome, result.FullOutputPath);
        Assert.Equal(string.Concat(Enumerable.Range(1, 100000).Select(i => $"{i}\n")), File.ReadAllText(result.FullOutputPath));
    }

    [Fact]
    public async Task CommandPrinting100MB_IsCut_TheDaemonStaysWell_AndTheFirst64MBAreKept()
    {
        var model = _h.Scenario("flood", Scenario(
            Tool("Bash", new { command = "head -c 100000000 /dev/zero | tr '\\0' 'x'; echo; echo tail-marker" }),
            Final("survived the flood")));

        var task = await _h.RunTaskAsync(model, "print 100 MB");
        var done = await _h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.Equal("survived the flood", done.Summary);
        var result = (await _h.EventsAsync(task.Id)).OfType<ToolResulted>().Single();
        Assert.True(result.Truncated);
        Assert.True(result.Output.Length <= 30_000, $"{result.Output.Length} chars reached the model");
        Assert.Contains("100000013 bytes in all", result.Output);
        Assert.Contains("tail-marker", result.Output);
        Assert.Equal(64L * 1024 * 1024, new FileInfo(result.FullOutputPath!).Length);
    }
}
