using System.Text.Json;
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

        // logs marks each line of the subagent with its type and description; the task's own lines are unmarked
        var logs = (await _h.OffloadAsync("logs", Id(task.Id))).Stdout.Split('\n');
        Assert.Contains(logs, l => l.EndsWith(" [general-purpose: look into it] user: SUB-ONE: write the note", StringComparison.Ordinal));
        Assert.Contains(logs, l => l.Contains(" [general-purpose: look into it] → Write ", StringComparison.Ordinal));
        Assert.Contains(logs, l => l.EndsWith(" [general-purpose: look into it] assistant: I wrote note.txt.", StringComparison.Ordinal));
        Assert.Contains(logs, l => l.Contains(" → Agent ", StringComparison.Ordinal) && !l.Contains('['));
        Assert.Contains(logs, l => l.EndsWith(" assistant: The subagent wrote it.", StringComparison.Ordinal) && !l.Contains('['));
        var json = (await _h.OffloadAsync("logs", "--json", Id(task.Id))).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonSerializer.Deserialize<AgentEvent>(l, OffloadJson.Options)!).ToList();
        Assert.Equal(marked.Select(e => e.Seq), json.Where(e => e.Subagent == call.CallId).Select(e => e.Seq));
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

    [Fact]
    public async Task AgentFile_DisallowedToolsAndMaxTurns_AreHonoured_AndABadMaxTurnsIsAnErrorNamingTheFile()
    {
        Directory.CreateDirectory(Path.Combine(_h.Repo, ".claude", "agents"));
        File.WriteAllText(Path.Combine(_h.Repo, ".claude", "agents", "limited.md"), """
            ---
            name: limited
            description: Reads and edits, never runs commands, two turns at most.
            disallowedTools:
              - Bash
            maxTurns: 2
            ---
            You read files.
            """);
        File.WriteAllText(Path.Combine(_h.Repo, ".claude", "agents", "broken.md"), """
            ---
            name: broken
            description: Has a limit nobody can count.
            maxTurns: lots
            ---
            You do nothing.
            """);
        _h.Git("add", ".claude");
        _h.Git("commit", "-qm", "two agents");
        var model = Model("limits",
            [
                Tool("Agent", Agent("SUB-L: look around", "limited")),
                Tool("Agent", Agent("SUB-B: anything", "broken")),
                Final("Checked the limits."),
            ],
            Sub("SUB-L",
                Tool("Bash", new { command = "touch ran.txt" }),
                Tool("Read", new { file_path = "README.md" }),
                Tool("Read", new { file_path = "README.md" }),
                Final("I never get this far.")));
        var task = await _h.RunTaskAsync(model, "use the limited agents");
        var done = await _h.WaitAsync(task.Id);

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, done.Error);
        Assert.False(File.Exists(Path.Combine(task.Worktree, "ran.txt")));
        var events = await _h.EventsAsync(task.Id);
        var bash = Assert.Single(events.OfType<ToolResulted>(), r => r.Name == "Bash");
        Assert.True(bash.IsError);
        Assert.StartsWith("there is no tool named Bash; the tools are Read, ", bash.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Bash", bash.Output["there is no tool named Bash".Length..], StringComparison.Ordinal);
        var calls = events.OfType<ToolCalled>().Where(c => c.Name == AgentTool.ToolName).ToList();
        var limited = calls[0].CallId;
        Assert.Equal(2, events.OfType<UsageRecorded>().Count(u => u.Subagent == limited)); // two turns, then stopped
        Assert.Single(events.OfType<ToolResulted>(), r => r is { Name: "Read", IsError: false } && r.Subagent == limited);
        var results = events.OfType<ToolResulted>().Where(r => r.Name == AgentTool.ToolName && r.Subagent is null).ToList();
        Assert.True(results[0].IsError);
        Assert.True(results[0].Output.StartsWith("The limited agent reached its maxTurns limit (2 turns, set in .claude/agents/limited.md) before it finished", StringComparison.Ordinal), results[0].Output);
        Assert.True(results[1].IsError);
        Assert.Equal("Agent type 'broken' cannot be used: .claude/agents/broken.md has invalid maxTurns 'lots'; it must be a positive integer " +
            "(fix the file: the task reads it when it next starts).", results[1].Output);
        Assert.DoesNotContain(events, e => e is UserMessage { Text: "SUB-B: anything" }); // it never started
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task QuestionParkedInASubagent_OutlivesTheDaemon_AndIsAskedAgainInTheSameSubagent(bool killNine)
    {
        var settings = Path.Combine(_h.Repo, ".claude", "settings.json");
        Directory.CreateDirectory(Path.GetDirectoryName(settings)!);
        File.WriteAllText(settings, """{ "permissions": { "ask": ["Bash(touch:*)"] } }""");
        var model = Model("parked", [Tool("Agent", Agent("SUB-Q: touch the file")), Final("The subagent touched it.")],
            Sub("SUB-Q", Tool("Bash", new { command = "touch sub.txt" }), Final("I touched sub.txt.")));
        var pid = await _h.DaemonPidAsync();
        var task = await _h.RunTaskAsync(model, "a subagent that needs approval");
        var parked = await _h.NextEventAsync([task.Id], e => e is StatusChanged { To: OffloadTaskStatus.NeedsInput }, Timeout, includePast: true);
        Assert.NotNull(parked);

        if (killNine)
        {
            await KillNineAsync(pid);
        }
        else
        {
            var stop = await _h.OffloadAsync("daemon", "stop");
            Assert.True(stop.ExitCode == 0, stop.ToString());
        }

        Assert.Equal(0, (await _h.OffloadAsync("daemon", "start")).ExitCode); // it resumes the task, which parks again on the same question
        var again = await _h.NextEventAsync([task.Id], e => e is StatusChanged { To: OffloadTaskStatus.NeedsInput } && e.Seq > parked.Seq, Timeout, includePast: true);
        Assert.NotNull(again);
        var approve = await _h.OffloadAsync("approve", Id(task.Id));
        Assert.True(approve.ExitCode == 0, approve.ToString());
        var done = await _h.WaitAsync(task.Id);

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, done.Error);
        Assert.Equal("The subagent touched it.", done.Summary);
        Assert.True(File.Exists(Path.Combine(task.Worktree, "sub.txt")));
        var events = await _h.EventsAsync(task.Id);
        AssertGapless(events, "the task");
        AssertEveryCallAnswered(events);
        var call = Assert.Single(events.OfType<ToolCalled>(), c => c.Name == AgentTool.ToolName);
        Assert.Single(events.OfType<UserMessage>(), m => m.Source == SubagentRunner.PromptSource); // the same subagent, not a new one
        Assert.Single(events.OfType<PermissionRequested>()); // asked again, not recorded twice
        var bash = Assert.Single(events.OfType<ToolResulted>(), r => r.Name == "Bash");
        Assert.Equal(call.CallId, bash.Subagent);
        Assert.False(bash.IsError, bash.Output);
        Assert.Equal("I touched sub.txt.", Assert.Single(events.OfType<ToolResulted>(), r => r.CallId == call.CallId && r.Subagent is null).Output);
    }

    [Fact]
    public async Task DaemonStopMidSubagent_StopsItBetweenTwoSteps_AndTheNextStartGoesOnWithTheSameSubagent()
    {
        var model = Model("stopped", [Tool("Agent", Agent("SUB-S: two steps")), Final("The subagent finished after the restart.")],
            Sub("SUB-S",
                Tool("Bash", new { command = "touch started; while [ ! -f go ]; do sleep 0.05; done; echo first >> runs.txt" }),
                Tool("Bash", new { command = "echo second >> runs.txt" }),
                Final("Both steps done.")));
        var task = await _h.RunTaskAsync(model, "two steps in a subagent");
        await WaitUntilAsync(() => File.Exists(Path.Combine(task.Worktree, "started")), Timeout, "the subagent's first step never started");

        var stopping = _h.OffloadAsync("daemon", "stop");
        await WaitUntilAsync(() => !File.Exists(_h.SocketPath), Timeout, "the daemon never began to stop"); // its socket goes as the stop begins
        File.WriteAllText(Path.Combine(task.Worktree, "go"), "");
        var stop = await stopping;
        Assert.True(stop.ExitCode == 0, stop.ToString());
        Assert.Contains("daemon stopped", stop.Stdout, StringComparison.Ordinal);

        var done = await _h.WaitAsync(task.Id); // starts the next daemon, which resumes the task
        Assert.True(done.Status == OffloadTaskStatus.Succeeded, done.Error);
        Assert.Equal("The subagent finished after the restart.", done.Summary);
        Assert.Equal(["first", "second"], File.ReadAllLines(Path.Combine(task.Worktree, "runs.txt")));
        var events = await _h.EventsAsync(task.Id);
        AssertGapless(events, "the task");
        AssertEveryCallAnswered(events);
        Assert.Single(events.OfType<UserMessage>(), m => m.Source == SubagentRunner.PromptSource);
        var steps = events.OfType<ToolResulted>().Where(r => r.Name == "Bash").ToList();
        Assert.Equal(2, steps.Count);
        Assert.All(steps, r => Assert.False(r.IsError, r.Output)); // the first step ended before the stop let go: it is not "interrupted"
        Assert.True(steps[1].Attempt > steps[0].Attempt, "the subagent went on to its second step in the daemon that was stopping");
        var call = Assert.Single(events.OfType<ToolCalled>(), c => c.Name == AgentTool.ToolName);
        Assert.Equal("Both steps done.", Assert.Single(events.OfType<ToolResulted>(), r => r.CallId == call.CallId && r.Subagent is null).Output);
    }

    [Fact]
    public async Task CancelMidSubagent_ThenReply_AnswersEveryOpenCall_AndTheTaskGoesOn()
    {
        var model = Model("cancelled", [Tool("Agent", Agent("SUB-C: wait forever")), Final("Went on after the reply.")],
            Sub("SUB-C", Tool("Bash", new { command = "touch started; while [ ! -f never ]; do sleep 0.05; done" }), Final("Never reached.")));
        var task = await _h.RunTaskAsync(model, "a subagent that is cancelled");
        await WaitUntilAsync(() => File.Exists(Path.Combine(task.Worktree, "started")), Timeout, "the subagent's step never started");

        Assert.Equal(0, (await _h.OffloadAsync("cancel", Id(task.Id))).ExitCode);
        Assert.Equal(OffloadTaskStatus.Cancelled, (await _h.WaitAsync(task.Id)).Status);
        var reply = await _h.OffloadAsync("reply", Id(task.Id), "go on without it");
        Assert.True(reply.ExitCode == 0, reply.ToString());
        var done = await _h.WaitAsync(task.Id);

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, done.Error);
        var events = await _h.EventsAsync(task.Id);
        AssertGapless(events, "the task");
        AssertEveryCallAnswered(events);
        var bash = Assert.Single(events.OfType<ToolResulted>(), r => r.Name == "Bash");
        Assert.NotNull(bash.Subagent);
        Assert.StartsWith("This tool call was stopped before it finished: the task ended (cancelled", bash.Output, StringComparison.Ordinal);
    }

    /// <summary>Every tool call in the journal has its result, in the same conversation (the task's, or its subagent's).</summary>
    private static void AssertEveryCallAnswered(IReadOnlyList<AgentEvent> events)
    {
        var results = events.OfType<ToolResulted>().Select(r => (r.CallId, r.Subagent)).ToList();
        Assert.All(events.OfType<ToolCalled>(), c => Assert.True(results.Contains((c.CallId, c.Subagent)), $"{c.Name} call {c.CallId} ({c.Subagent ?? "the task's agent"}) has no result"));
    }
}
