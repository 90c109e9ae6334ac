using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Offload.Agent;
using Offload.Protocol;
using Offload.Tests.EndToEnd;
using Xunit.Abstractions;
using static Offload.Tests.Resilience.ResilienceKit;

namespace Offload.Tests.Resilience;

/// <summary>
/// kill -9 of the daemon at seeded-random moments (on a timer; just after a start, while tasks are recovered and
/// worktrees made; or right after a chosen kind of event: during a tool call, between a tool and the next model
/// call, right after a model answer, which for a final answer is while the work is committed), over rounds of tasks
/// until at least 30 kills. Then every task must end as its scenario says, every journal must be gapless, no tool
/// call whose result is on record may have run twice (each Bash call appends its own marker to a log outside the
/// worktree), and the work of each such call must be in the task's final commit.
/// Set OFFLOAD_CRASH_SEED to replay another seed; the seed is in every failure message.
/// </summary>
public sealed partial class CrashRecoveryTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int KillsWanted = 30;
    private const int TasksPerRound = 3;
    private readonly OffloadHarness _h = new();

    public Task InitializeAsync()
    {
        // The marker log lives outside the worktree, where a sandboxed shell may not write: run without bwrap,
        // and allow Bash outright (without a sandbox every command would otherwise ask first).
        _h.Env["OFFLOAD_BWRAP"] = Path.Combine(_h.Root, "no-bwrap");
        _h.WriteConfig(new
        {
            maxParallel = TasksPerRound,
            models = new { retry = FastRetry() },
            permissions = new { allow = new[] { "Bash" } },
            // The kills here are the test's own, not a task that kills its daemon: limits.maxRestarts must not end a task.
            limits = new { maxRestarts = 0 },
        });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private enum KillPoint
    {
        Timer,
        JustAfterStart,
        DuringTool,
        AfterToolResult,
        AfterModelAnswer,
    }

    [Fact]
    public async Task KillNineAtRandomMoments_EveryTaskEndsAsItWould_JournalsAreGapless_AndNoRecordedToolCallRanTwice()
    {
        var seed = int.TryParse(Environment.GetEnvironmentVariable("OFFLOAD_CRASH_SEED"), CultureInfo.InvariantCulture, out var s) ? s : 20261125;
        var rng = new Random(seed);
        var log = Path.Combine(_h.Root, "tool-runs.log");
        File.WriteAllText(log, "");
        var expected = new Dictionary<long, string>();
        var kills = new List<string>();
        var clock = Stopwatch.StartNew();

        for (var round = 0; kills.Count < KillsWanted; round++)
        {
            Assert.True(round < 12, $"seed {seed}: {kills.Count} kills after {round} rounds");
            var roundIds = new List<long>();
            for (var k = 0; k < TasksPerRound; k++)
            {
                var name = $"r{round}t{k}";
                var model = _h.Scenario(name, TaskScenario(name, log, rng));
                var task = await _h.RunTaskAsync(model, $"crash test task {name}");
                expected[task.Id] = $"task {name} done";
                roundIds.Add(task.Id);
            }

            while (kills.Count < KillsWanted)
            {
                var pid = await _h.DaemonPidAsync();
                var active = await ActiveAsync(roundIds);
                if (active.Count == 0)
                {
                    break;
                }

                var point = (KillPoint)rng.Next(Enum.GetValues<KillPoint>().Length);
                var extraMs = point switch
                {
                    KillPoint.Timer => rng.Next(300, 1500),
                    KillPoint.JustAfterStart => rng.Next(0, 300),
                    KillPoint.DuringTool => rng.Next(0, 150),
                    KillPoint.AfterToolResult => rng.Next(0, 250),
                    _ => rng.Next(0, 8),
                };
                Func<AgentEvent, bool>? trigger = point switch
                {
                    KillPoint.DuringTool => e => e is ToolCalled,
                    KillPoint.AfterToolResult => e => e is ToolResulted,
                    KillPoint.AfterModelAnswer => e => e is AssistantMessage,
                    _ => null,
                };
                var seen = trigger is null ? null : await _h.NextEventAsync(active, trigger, TimeSpan.FromSeconds(3));
                await Task.Delay(extraMs); // the fault schedule itself, drawn from the seed
                await KillNineAsync(pid);
                kills.Add($"{clock.Elapsed.TotalSeconds:0.0}s {point}+{extraMs}ms{(seen is null ? "" : $" after task {seen.TaskId} seq {seen.Seq} {seen.GetType().Name}")}");
            }
        }

        var killPhase = clock.Elapsed;
        output.WriteLine($"seed {seed}: {kills.Count} kills in {killPhase.TotalSeconds:0.0} s over {expected.Count} tasks");
        foreach (var kill in kills)
        {
            output.WriteLine("  kill " + kill);
        }

        var finished = new Dictionary<long, TaskInfo>();
        foreach (var id in expected.Keys)
        {
            finished[id] = await _h.WaitAsync(id);
        }

        var runs = File.ReadAllLines(log).GroupBy(l => l).ToDictionary(g => g.Key, g => g.Count());
        var interrupted = 0;
        var recorded = 0;
        foreach (var (id, summary) in expected)
        {
            var done = finished[id];
            var events = await _h.EventsAsync(id);
            var context = $"seed {seed}, task {id}";
            Assert.True(done.Status == OffloadTaskStatus.Succeeded && done.Summary == summary,
                $"{context}: ended {done.Status.ToWire()} with '{done.Summary}' ({done.Error}); expected succeeded with '{summary}'");
            AssertGapless(events, context);

            var calls = events.OfType<ToolCalled>().ToList();
            var results = events.OfType<ToolResulted>().ToList();
            Assert.True(calls.Select(c => c.CallId).Distinct().Count() == calls.Count, $"{context}: a tool call is in the journal twice");
            Assert.True(results.Select(r => r.CallId).Distinct().Count() == results.Count, $"{context}: a tool call has two results");
            Assert.True(calls.Select(c => c.CallId).ToHashSet().SetEquals(results.Select(r => r.CallId)), $"{context}: a tool call has no result");
            var committed = _h.Git("show", $"{done.Branch}:work.txt").Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
            Assert.True(committed.Distinct().Count() == committed.Count, $"{context}: a call wrote to work.txt twice: {string.Join(",", committed)}");
            foreach (var call in calls)
            {
                var result = results.Single(r => r.CallId == call.CallId);
                Assert.True(result.Output == Conversation.InterruptedNote || committed.Contains(MarkerOf(call)),
                    $"{context}: the work of {MarkerOf(call)} is not on the task's branch");
                var marker = MarkerOf(call);
                if (result.Output == Conversation.InterruptedNote)
                {
                    interrupted++;
                    Assert.True(runs.GetValueOrDefault(marker) <= 1, $"{context}: the interrupted call {marker} ran {runs.GetValueOrDefault(marker)} times");
                }
                else
                {
                    recorded++;
                    Assert.True(runs.GetValueOrDefault(marker) == 1, $"{context}: the call {marker}, whose result is on record, ran {runs.GetValueOrDefault(marker)} times; its result: {(result.IsError ? "error " : "")}{result.Output}");
                }
            }
        }

        output.WriteLine($"{recorded} tool calls with results, {interrupted} interrupted by a kill; {clock.Elapsed.TotalSeconds:0.0} s in all");
        Assert.True(kills.Count >= KillsWanted);
        Assert.True(interrupted > 0, $"seed {seed}: no kill landed during a tool call, so the interrupted-call path was not exercised");
    }

    /// <summary>Eight to thirteen turns of Bash calls (some turns with two), each appending its marker to the log, then a final answer.</summary>
    private static object TaskScenario(string name, string log, Random rng)
    {
        var turns = new List<object>();
        var count = rng.Next(8, 14);
        for (var j = 0; j < count; j++)
        {
            var calls = Enumerable.Range(0, rng.Next(4) == 0 ? 2 : 1).Select(c => new
            {
                name = "Bash",
                input = new { command = $"echo {name}c{j}x{c} >> '{log}' && echo {name}c{j}x{c} >> work.txt && sleep 0.{rng.Next(5, 30):00}" },
            }).ToArray();
            turns.Add(new { text = $"step {j}", toolCalls = calls, delayMs = rng.Next(0, 150) });
        }

        turns.Add(new { text = $"task {name} done", delayMs = rng.Next(0, 100) });
        return new { name, turns };
    }

    private static string MarkerOf(ToolCalled call) =>
        MarkerPattern().Match(call.Input.GetProperty("command").GetString()!).Groups[1].Value;

    [GeneratedRegex(@"^echo (\S+) >>")]
    private static partial Regex MarkerPattern();

    private async Task<List<long>> ActiveAsync(IEnumerable<long> ids)
    {
        using var http = _h.SocketClient();
        var active = new List<long>();
        foreach (var id in ids)
        {
            var report = await http.GetFromJsonAsync<JsonElement>($"v1/tasks/{Id(id)}", OffloadJson.Options);
            var task = report.GetProperty("task").Deserialize<TaskInfo>(OffloadJson.Options)!;
            if (!task.Status.IsFinal())
            {
                active.Add(id);
            }
        }

        return active;
    }
}
