using Offload.Agent;
using Offload.Agent.Subagents;
using Offload.Protocol;
using static Offload.Tests.EndToEnd.Turns;
using static Offload.Tests.Resilience.ResilienceKit;

namespace Offload.Tests.EndToEnd;

/// <summary>
/// Subagents (issue 15, part 5), end to end: the real daemon, a real git repository, real bubblewrap, the Simulator over
/// HTTP playing each subagent's conversation from its own script (<c>subagents</c>, chosen by the subagent's prompt).
/// </summary>
public sealed class SubagentTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly OffloadHarness _h = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private static object Calls(params (string Name, object Input)[] calls) =>
        new { text = "", toolCalls = calls.Select(c => new { name = c.Name, input = c.Input }).ToArray() };

    private static object Agent(string prompt, string? type = null) =>
        new { description = "look into it", prompt, subagent_type = type };

    private static object Sub(string marker, params object[] turns) => new { whenPromptContains = marker, turns };

    private string Model(string name, object[] turns, params object[] subagents) =>
        _h.Scenario(name, new { name, turns, subagents });

    [Fact]
    public async Task AgentCall_ReturnsTheSubagentsFinalMessage_WithItsEventsMarked_AndItsUsageInTheTotalsAndInShow()
    {
        var model = Model("one", [Tool("Agent", Agent("SUB-ONE: write the note")), Final("The subagent wrote it.")],
            Sub("SUB-ONE", Tool("Write", new { file_path = "note.txt", content = "from the subagent\n" }), Final("I wrote note.txt.")));
        var task = await _h.RunTaskAsync(model, "have a subagent write a note");
        var done = await _h.WaitAsync(task.Id);

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, done.Error);
        Assert.Equal("The subagent wrote it.", done.Summary);
        Assert.Equal("from the subagent\n", File.ReadAllText(Path.Combine(task.Worktree, "note.txt")));
        var events = await _h.EventsAsync(task.Id);
        var call = Assert.Single(events.OfType<ToolCalled>(), c => c.Name == AgentTool.ToolName);
        Assert.Null(call.Subagent);
        var result = Assert.Single(events.OfType<ToolResulted>(), r => r.CallId == call.CallId && r.Subagent is null); // the Simulator numbers each conversation's calls alike
        Assert.False(result.IsError);
        Assert.Equal("I wrote note.txt.", result.Output);

        var marked = events.Where(e => e.Subagent == call.CallId).ToList();
        Assert.Equal("SUB-ONE: write the note", Assert.Single(marked.OfType<UserMessage>()).Text);
        Assert.Equal(["", "I wrote note.txt."], marked.OfType<AssistantMessage>().Select(m => m.Text));
        Assert.Equal("Write", Assert.Single(marked.OfType<ToolCalled>()).Name);
        Assert.Single(marked.OfType<ToolResulted>());
        Assert.Equal(2, marked.OfType<UsageRecorded>().Count());
        Assert.All(events.Where(e => e.Subagent is not null), e => Assert.Equal(call.CallId, e.Subagent)); // nothing else is marked

        Assert.Equal(4, done.Turns); // two of the task's agent, two of the subagent
        var subCost = marked.OfType<UsageRecorded>().Sum(u => u.OutputTokens);
        Assert.Equal(events.OfType<UsageRecorded>().Sum(u => u.OutputTokens), done.Usage.OutputTokens);
        var show = await _h.OffloadAsync("show", Id(task.Id));
        Assert.Contains("subagents (1)", show.Stdout, StringComparison.Ordinal);
        Assert.Contains($"general-purpose · look into it · 2 turns · ", show.Stdout, StringComparison.Ordinal);
        Assert.True(subCost > 0 && subCost < done.Usage.OutputTokens);
    }

    [Fact]
    public async Task TwoAgentCallsOfOneTurn_RunTogether()
    {
        // Each subagent Greps a FIFO. The test writes b.fifo first, then a.fifo: opening a FIFO for writing waits for its
        // reader. Run one after the other, subagent A's Grep of a.fifo would wait for a writer that waits for subagent B.
        var model = Model("two",
            [
                Tool("Bash", new { command = "mkfifo a.fifo b.fifo" }),
                Calls(("Agent", Agent("SUB-A: read a.fifo")), ("Agent", Agent("SUB-B: read b.fifo"))),
                Tool("Bash", new { command = "rm a.fifo b.fifo" }),
                Final("Both read."),
            ],
            Sub("SUB-A", Tool("Grep", new { pattern = "needle", path = "a.fifo", output_mode = "content" }), Final("A saw its needle.")),
            Sub("SUB-B", Tool("Grep", new { pattern = "needle", path = "b.fifo", output_mode = "content" }), Final("B saw its needle.")));
        var task = await _h.RunTaskAsync(model, "read both pipes through subagents");
        var a = Path.Combine(task.Worktree, "a.fifo");
        var b = Path.Combine(task.Worktree, "b.fifo");
        await WaitUntilAsync(() => File.Exists(a) && File.Exists(b), Timeout, "the pipes were never made");

        await Task.Run(() => File.WriteAllText(b, "needle b\n")).WaitAsync(Timeout);
        await Task.Run(() => File.WriteAllText(a, "needle a\n")).WaitAsync(Timeout);
        var done = await _h.WaitAsync(task.Id);

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, done.Error);
        var events = await _h.EventsAsync(task.Id);
        var agentResults = events.OfType<ToolResulted>().Where(r => r.Name == AgentTool.ToolName && r.Subagent is null).OrderBy(r => r.CallId, StringComparer.Ordinal);
        Assert.Equal(["A saw its needle.", "B saw its needle."], agentResults.Select(r => r.Output));
        Assert.Equal(["a.fifo:1:needle a", "b.fifo:1:needle b"],
            events.OfType<ToolResulted>().Where(r => r.Name == "Grep").Select(r => r.Output.Trim()).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task RepositoryAgentType_GetsOnlyItsTools_AndAnUnknownTypeIsRefusedWithTheAvailableOnes()
    {
        Directory.CreateDirectory(Path.Combine(_h.Repo, ".claude", "agents"));
        File.WriteAllText(Path.Combine(_h.Repo, ".claude", "agents", "reader.md"), """
            ---
            name: reader
            description: Reads files and reports; never changes them.
            tools: Read, Grep
            ---
            You read files and report what they say.
            """);
        _h.Git("add", ".claude");
        _h.Git("commit", "-qm", "a reader agent");
        var model = Model("typed",
            [
                Tool("Agent", Agent("SUB-R: try to write", "reader")),
                Tool("Agent", Agent("SUB-X: anything", "no-such-agent")),
                Final("Checked."),
            ],
            Sub("SUB-R", Tool("Write", new { file_path = "forbidden.txt", content = "x" }), Final("I may not write.")));
        var task = await _h.RunTaskAsync(model, "use the reader agent");
        var done = await _h.WaitAsync(task.Id);

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, done.Error);
        Assert.False(File.Exists(Path.Combine(task.Worktree, "forbidden.txt")));
        var events = await _h.EventsAsync(task.Id);
        var refused = Assert.Single(events.OfType<ToolResulted>(), r => r.Name == "Write");
        Assert.NotNull(refused.Subagent);
        Assert.True(refused.IsError);
        Assert.Equal("there is no tool named Write; the tools are Read, Grep", refused.Output);
        var results = events.OfType<ToolResulted>().Where(r => r.Name == AgentTool.ToolName).ToList();
        Assert.Equal("I may not write.", results[0].Output);
        Assert.True(results[1].IsError);
        Assert.Equal("Agent type 'no-such-agent' not found. Available agents: general-purpose, reader", results[1].Output);
        Assert.DoesNotContain(events, e => e is UserMessage { Text: "SUB-X: anything" });

        var show = await _h.OffloadAsync("show", Id(task.Id));
        Assert.Contains("  reader · look into it · 2 turns", show.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task KillNineMidSubagent_ResumesThatSubagent_NotANewOne()
    {
        var model = Model("killed", [Tool("Agent", Agent("SUB-K: run the long step")), Final("The subagent went on after the restart.")],
            Sub("SUB-K",
                Tool("Bash", new { command = "echo ran >> runs.txt; " + UniqueSleep() }),
                Final("The long step was cut by a restart; I did not run it again.")));
        var pid = await _h.DaemonPidAsync();
        var task = await _h.RunTaskAsync(model, "one long step in a subagent");
        var runs = Path.Combine(task.Worktree, "runs.txt");
        await WaitUntilAsync(() => File.Exists(runs), Timeout, "the subagent's long step never started");

        await KillNineAsync(pid);
        var done = await _h.WaitAsync(task.Id); // starts the next daemon, which resumes the task

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, done.Error);
        Assert.Equal("The subagent went on after the restart.", done.Summary);
        var events = await _h.EventsAsync(task.Id);
        AssertGapless(events, "the task");
        var call = Assert.Single(events.OfType<ToolCalled>(), c => c.Name == AgentTool.ToolName);
        Assert.Single(events.OfType<UserMessage>(), m => m.Source == SubagentRunner.PromptSource); // the same subagent, not a new one
        var bash = Assert.Single(events.OfType<ToolResulted>(), r => r.Name == "Bash");
        Assert.Equal(call.CallId, bash.Subagent);
        Assert.Equal(Conversation.InterruptedNote, bash.Output);
        var result = Assert.Single(events.OfType<ToolResulted>(), r => r.CallId == call.CallId && r.Subagent is null); // the Simulator numbers each conversation's calls alike
        Assert.Equal("The long step was cut by a restart; I did not run it again.", result.Output);
        Assert.Equal(["ran"], File.ReadAllLines(runs));
    }
}
