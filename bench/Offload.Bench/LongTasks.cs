using System.Globalization;
using System.Text.Json;
using Offload.Protocol;
using Offload.Simulator;

namespace Offload.Bench;

/// <summary>Issue 15's figures: memory of long busy tasks, and the share of input tokens read from the prompt cache.</summary>
public sealed partial class Bench
{
    /// <summary>A Bash call whose output is 30,000 characters (the most Claude Code's Bash returns).</summary>
    private static readonly object Output30k = new { name = "Bash", input = new { command = "head -c 30000 /dev/zero | tr '\\0' x", description = "print 30,000 characters" } };

    /// <summary>
    /// 10 tasks at once, each 200 turns of 30,000-character tool outputs, then held in its 201st model call (a long
    /// delay) so all are busy when the daemon's PSS is read: (PSS − idle PSS) / 10.
    /// </summary>
    private async Task<Figure> LongTaskMemoryAsync()
    {
        const int tasks = 10;
        var turns = quick ? 50 : 200;
        var scenario = Scenario.Parse(JsonSerializer.Serialize(new
        {
            name = "long",
            turns = new object[]
            {
                new { text = "", toolCalls = new[] { Output30k }, repeat = turns },
                new { text = "Done.", delayMs = 600_000 },
            },
        }));
        await using var sim = await SimulatorAsync(scenario);
        await using var box = new Sandbox(offload, sim.BaseUrl, maxParallel: tasks);
        await box.StartDaemonAsync();
        var idle = Procfs.MemoryOf([box.DaemonPid]);
        var held = 0;
        var allHeld = sim.WaitForRequestAsync(r => r.TurnIndex == turns && Interlocked.Increment(ref held) >= tasks);
        for (var i = 0; i < tasks; i++)
        {
            await box.CreateTaskAsync("bench:long", $"{Scenarios.Prompt} ({i})");
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(30));
        await allHeld.WaitAsync(timeout.Token);
        var busy = Procfs.MemoryOf([box.DaemonPid]);
        var perTask = (busy.PssMiB - idle.PssMiB) / tasks;
        return new Figure("memory of long tasks",
            $"{Stats.MiB(perTask)} PSS per task: daemon PSS idle {Stats.MiB(idle.PssMiB)}, with {tasks} tasks each in its model call after {turns} turns of 30,000-character Bash outputs {Stats.MiB(busy.PssMiB)} (RSS {Stats.MiB(busy.RssMiB)})",
            "—", "< 10 MiB PSS per task", perTask < 10);
    }

    /// <summary>A 100-turn Anthropic-protocol task; the Simulator counts cache reads and writes from the breakpoints it receives.</summary>
    private async Task<Figure> PromptCacheAsync()
    {
        var turns = quick ? 30 : 100;
        await using var sim = await SimulatorAsync(Scenarios.Tools("cache", Scenarios.Read, turns - 1, 0));
        await using var box = new Sandbox(offload, sim.BaseUrl);
        await box.StartDaemonAsync();
        var task = await box.WaitAsync((await box.CreateTaskAsync("bench:cache", Scenarios.Prompt)).Id);
        if (task.Status != OffloadTaskStatus.Succeeded)
        {
            throw new InvalidOperationException($"the cache task ended {task.Status.ToWire()}: {task.Error}");
        }

        var usage = (await box.EventsAsync(task.Id)).OfType<UsageRecorded>().ToList();
        long input = usage.Sum(u => u.InputTokens), read = usage.Sum(u => u.CacheReadTokens), write = usage.Sum(u => u.CacheWriteTokens);
        var share = (double)read / (input + read + write);
        return new Figure("prompt cache share",
            $"{Stats.N(share * 100, "0.0")}% of input tokens read from the cache over {task.Turns} turns ({read.ToString("N0", CultureInfo.InvariantCulture)} read, {write.ToString("N0", CultureInfo.InvariantCulture)} written, {input.ToString("N0", CultureInfo.InvariantCulture)} uncached)",
            "—", "≥ 90%", share >= 0.9);
    }
}
