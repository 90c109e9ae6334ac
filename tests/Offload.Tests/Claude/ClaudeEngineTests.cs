using System.Globalization;
using System.Text.Json;
using Offload.Engines.Claude;
using Offload.Protocol;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;

namespace Offload.Tests.Claude;

/// <summary>
/// The claude engine end to end: the real <c>offload</c> and daemon, the real Claude Code CLI,
/// pointed by the daemon at its in-process Simulator (<c>--model sim:PATH</c>).
/// </summary>
public sealed class ClaudeEngineTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private static string Id(TaskInfo task) => task.Id.ToString(CultureInfo.InvariantCulture);

    [Fact]
    public async Task MultiTurnTask_WritesAFileAndRunsACommand_WithTurnsTokensAndEveryRawLineOnRecord()
    {
        ClaudeCode.Configure(_h, permissions: new { allow = new[] { "Bash(cat:*)", "Bash(wc:*)" } });
        const string prompt = "write notes and count them";
        var worktree = ClaudeCode.WorktreeOf(_h, 1, prompt);
        var model = _h.Scenario("notes", Scenario(
            Tool("Write", new { file_path = Path.Combine(worktree, "notes.txt"), content = "one\ntwo\n" }, "Writing the notes."),
            Tool("Bash", new { command = "cat notes.txt | wc -l" }),
            Final("Wrote notes.txt with two lines.")));

        var task = await _h.RunClaudeAsync(model, prompt);
        Assert.Equal("claude", task.Engine);
        var done = await _h.WaitAsync(task.Id);

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        Assert.Equal("Wrote notes.txt with two lines.", done.Summary);
        Assert.Equal(3, done.Turns);
        Assert.True(done.Usage.InputTokens > 10_000, $"input tokens {done.Usage.InputTokens}"); // Claude Code's system prompt and tools
        Assert.Equal(0m, done.Usage.CostUsd); // the Simulator is free
        Assert.Equal("one\ntwo\n", _h.Git("show", $"{done.Branch}:notes.txt"));

        var events = await _h.EventsAsync(task.Id);
        var calls = events.OfType<ToolCalled>().ToList();
        Assert.Equal(["Write", "Bash"], calls.Select(c => c.Name));
        Assert.Equal([1, 2], calls.Select(c => c.Turn));
        var results = events.OfType<ToolResulted>().ToList();
        Assert.Equal(calls.Select(c => c.CallId), results.Select(r => r.CallId));
        Assert.Equal("2", results[1].Output.Trim());
        Assert.False(results[1].IsError);
        Assert.Equal(["Writing the notes.", "", "Wrote notes.txt with two lines."], events.OfType<AssistantMessage>().Select(a => a.Text));
        Assert.Contains(events, e => e is EngineNote { Kind: ClaudeEngine.VersionNote } v && v.Text.Contains("Claude Code", StringComparison.Ordinal));

        var raw = events.OfType<EngineNote>().Where(n => n.Kind == ClaudeEngine.RawNote)
            .Select(n => JsonDocument.Parse(n.Text).RootElement.GetProperty("type").GetString()).ToList();
        Assert.Equal("system", raw[0]);
        Assert.Equal("result", raw[^1]);
        Assert.Equal(3, raw.Count(t => t == "assistant") - 1); // text + tool_use of turn 1 are two lines
        Assert.Single(events.OfType<UsageRecorded>());
        Assert.Equal([1], events.OfType<CheckpointSaved>().Select(c => c.Turn)); // after the Write; the Bash turn changed no file

        var show = await _h.OffloadAsync("show", Id(task));
        Assert.Contains("claude", show.Stdout);
        var logs = await _h.OffloadAsync("logs", Id(task));
        Assert.Contains("→ Write " + Path.Combine(worktree, "notes.txt"), logs.Stdout);
        Assert.Contains("→ Bash cat notes.txt | wc -l", logs.Stdout);
    }

    [Fact]
    public async Task PermissionPrompt_ParksTheTaskInNeedsInput_AndApproveLetsTheCommandRun()
    {
        ClaudeCode.Configure(_h);
        var model = _h.Scenario("approve", Scenario(
            Tool("Bash", new { command = "python3 -c \"open('approved.txt', 'w').write('yes')\"" }),
            Final("Made approved.txt.")));

        var task = await _h.RunClaudeAsync(model, "make a file with python");
        var asked = (PermissionRequested)await _h.WaitForEventAsync(task.Id, e => e is PermissionRequested);
        Assert.Equal("Bash", asked.Tool);
        Assert.Contains("approved.txt", asked.Input.GetProperty("command").GetString());
        Assert.Equal(OffloadTaskStatus.NeedsInput, (await _h.ShowAsync(task.Id)).Status);

        var approve = await _h.OffloadAsync("approve", Id(task));
        Assert.True(approve.ExitCode == 0, approve.ToString());
        var done = await _h.WaitAsync(task.Id);

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        Assert.Equal("Made approved.txt.", done.Summary);
        Assert.Equal("yes", _h.Git("show", $"{done.Branch}:approved.txt"));
        var events = await _h.EventsAsync(task.Id);
        Assert.Contains(events, e => e is PermissionAnswered { Allowed: true });
        Assert.False(events.OfType<ToolResulted>().Single().IsError);
    }

    [Fact]
    public async Task OffloadsOwnRules_AllowAndDenyClaudeCodesCalls_WithoutAskingTheUser()
    {
        ClaudeCode.Configure(_h, permissions: new { allow = new[] { "Bash(python3:*)" }, deny = new[] { "Bash(rm:*)" } });
        var model = _h.Scenario("rules", Scenario(
            Tool("Bash", new { command = "python3 -c \"open('ruled.txt', 'w').write('ok')\"" }),
            Tool("Bash", new { command = "rm -f README.md" }),
            Final("One ran, one was refused.")));

        var task = await _h.RunClaudeAsync(model, "one allowed, one denied");
        var done = await _h.WaitAsync(task.Id);

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        Assert.Equal("ok", _h.Git("show", $"{done.Branch}:ruled.txt"));
        Assert.Equal("# sample\n", _h.Git("show", $"{done.Branch}:README.md"));
        var events = await _h.EventsAsync(task.Id);
        Assert.DoesNotContain(events, e => e is PermissionRequested);
        var results = events.OfType<ToolResulted>().ToList();
        Assert.False(results[0].IsError);
        Assert.True(results[1].IsError); // acceptEdits would let rm run in the worktree: Offload's deny rule is handed to Claude Code
        Assert.Equal("Claude Code denied Bash (a permission rule)", Assert.Single(events.OfType<ErrorRaised>()).Message);
    }

    [Fact]
    public async Task RepositorysClaudeSettings_StayInEffect_ItsDenyRuleStopsTheCommand_AndTheDenialIsReported()
    {
        ClaudeCode.Configure(_h);
        Directory.CreateDirectory(Path.Combine(_h.Repo, ".claude"));
        File.WriteAllText(Path.Combine(_h.Repo, ".claude", "settings.json"), """{ "permissions": { "deny": ["Bash(python3:*)"] } }""");
        _h.Git("add", ".claude/settings.json");
        _h.Git("commit", "-q", "-m", "no python3");
        var model = _h.Scenario("refused", Scenario(
            Tool("Bash", new { command = "python3 -c \"open('refused.txt', 'w').write('no')\"" }),
            Final("Could not run python3.")));

        var task = await _h.RunClaudeAsync(model, "make a file with python");
        var done = await _h.WaitAsync(task.Id);

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        Assert.False(File.Exists(Path.Combine(done.Worktree, "refused.txt")));
        var events = await _h.EventsAsync(task.Id);
        Assert.DoesNotContain(events, e => e is PermissionRequested); // Claude Code decided by itself, from the repository's settings
        Assert.True(events.OfType<ToolResulted>().Single().IsError);
        var reported = Assert.Single(events.OfType<ErrorRaised>());
        Assert.Equal("Claude Code denied Bash (a permission rule)", reported.Message);
    }

    [Fact]
    public async Task ApproveAlways_LetsTheSameCallRunAgainWithoutAsking()
    {
        ClaudeCode.Configure(_h);
        var command = "python3 -c \"open('count.txt', 'a').write('+')\"";
        var model = _h.Scenario("always", Scenario(Tool("Bash", new { command }), Tool("Bash", new { command }), Final("Counted twice.")));

        var task = await _h.RunClaudeAsync(model, "count twice");
        await _h.WaitForEventAsync(task.Id, e => e is PermissionRequested);
        Assert.Equal(0, (await _h.OffloadAsync("approve", Id(task), "--always")).ExitCode);
        var done = await _h.WaitAsync(task.Id);

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        Assert.Equal("++", _h.Git("show", $"{done.Branch}:count.txt"));
        Assert.Single((await _h.EventsAsync(task.Id)).OfType<PermissionRequested>());
    }

    [Fact]
    public async Task PermissionPrompt_DenyWithAReason_TellsClaudeCodeWhy_AndTheCommandNeverRuns()
    {
        ClaudeCode.Configure(_h);
        var model = _h.Scenario("deny", Scenario(
            Tool("Bash", new { command = "python3 -c \"open('denied.txt', 'w').write('no')\"" }),
            Final("Did not make denied.txt.")));

        var task = await _h.RunClaudeAsync(model, "make a file with python");
        await _h.WaitForEventAsync(task.Id, e => e is PermissionRequested);
        var deny = await _h.OffloadAsync("deny", Id(task), "--reason", "not in this repository");
        Assert.True(deny.ExitCode == 0, deny.ToString());
        var done = await _h.WaitAsync(task.Id);

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        Assert.False(File.Exists(Path.Combine(done.Worktree, "denied.txt")));
        var events = await _h.EventsAsync(task.Id);
        Assert.Contains(events, e => e is PermissionAnswered { Allowed: false, Reason: "not in this repository" });
        var result = events.OfType<ToolResulted>().Single();
        Assert.True(result.IsError);
        Assert.Contains("not in this repository", result.Output);
        Assert.DoesNotContain(events, e => e is ErrorRaised); // the denial went through Offload, so it is not reported twice
    }

    [Fact]
    public async Task Cancel_WhileWaitingForPermission_EndsClaudeCodeAndTheTaskIsCancelled()
    {
        ClaudeCode.Configure(_h);
        var model = _h.Scenario("parked", Scenario(Tool("Bash", new { command = "python3 -c \"print('never')\"" }), Final("never")));
        var task = await _h.RunClaudeAsync(model, "ask and wait");
        var started = (EngineNote)await _h.WaitForEventAsync(task.Id, e => e is EngineNote { Kind: ClaudeEngine.ProcessNote });
        await _h.WaitForEventAsync(task.Id, e => e is StatusChanged { To: OffloadTaskStatus.NeedsInput });

        var cancel = await _h.OffloadAsync("cancel", Id(task));

        Assert.True(cancel.ExitCode == 0, cancel.ToString());
        Assert.False(ClaudeCode.IsAlive(int.Parse(started.Text.Split(' ')[0], CultureInfo.InvariantCulture)), "Claude Code is still running");
        var done = await _h.ShowAsync(task.Id);
        Assert.Equal(OffloadTaskStatus.Cancelled, done.Status);
        Assert.DoesNotContain(await _h.EventsAsync(task.Id), e => e is ToolResulted { IsError: false });
    }

    [Fact]
    public async Task Cancel_MidCommand_StopsClaudeCodeAndEverythingItStarted_Promptly()
    {
        ClaudeCode.Configure(_h, args: ["--allowedTools", "Bash"]);
        var model = _h.Scenario("slow", Scenario(Tool("Bash", new { command = "sleep 300" }), Final("never")));
        var task = await _h.RunClaudeAsync(model, "wait a long time");
        var started = (EngineNote)await _h.WaitForEventAsync(task.Id, e => e is EngineNote { Kind: ClaudeEngine.ProcessNote });
        var claudePid = int.Parse(started.Text.Split(' ')[0], CultureInfo.InvariantCulture);
        await _h.WaitForEventAsync(task.Id, e => e is ToolCalled);
        var sleeper = await WaitForDescendantAsync(claudePid, "sleep 300");

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var cancel = await _h.OffloadAsync("cancel", Id(task));
        clock.Stop();

        Assert.True(cancel.ExitCode == 0, cancel.ToString());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(6), $"cancel took {clock.Elapsed}");
        Assert.False(ClaudeCode.IsAlive(claudePid), "Claude Code is still running");
        Assert.False(ClaudeCode.IsAlive(sleeper), "the command Claude Code started is still running");
        var done = await _h.ShowAsync(task.Id);
        Assert.Equal(OffloadTaskStatus.Cancelled, done.Status);
    }

    [Fact]
    public async Task Reply_ResumesTheSameClaudeCodeSession_WithTheEarlierConversation()
    {
        ClaudeCode.Configure(_h);
        // the Simulator answers by the number of assistant messages in the conversation it is sent
        var model = _h.Scenario("reply", Scenario(Final("First answer."), Final("Second answer, with the first one in context.")));
        var task = await _h.RunClaudeAsync(model, "answer twice");
        var first = await _h.WaitAsync(task.Id);
        Assert.True(first.Status == OffloadTaskStatus.Succeeded, $"{first.Status}: {first.Error}");
        Assert.Equal("First answer.", first.Summary);

        var reply = await _h.OffloadAsync("reply", Id(task), "and once more");
        Assert.True(reply.ExitCode == 0, reply.ToString());
        var second = await _h.WaitAsync(task.Id);

        Assert.True(second.Status == OffloadTaskStatus.Succeeded, $"{second.Status}: {second.Error}");
        Assert.Equal("Second answer, with the first one in context.", second.Summary);
        Assert.Equal(2, second.Turns);
        var events = await _h.EventsAsync(task.Id);
        var sessions = events.OfType<EngineNote>().Where(n => n.Kind == ClaudeEngine.SessionNote).Select(n => n.Text).ToList();
        Assert.Equal(2, sessions.Count);
        Assert.Equal(sessions[0], sessions[1]);
        var reported = events.OfType<EngineNote>().Where(n => n.Kind == ClaudeEngine.RawNote)
            .Select(n => JsonDocument.Parse(n.Text).RootElement).Where(r => r.GetProperty("type").GetString() == "system")
            .Select(r => r.GetProperty("session_id").GetString()).ToList();
        Assert.Equal([sessions[0], sessions[0]], reported);
        Assert.Equal(2, events.OfType<UsageRecorded>().Count());
    }

    [Fact]
    public async Task Reply_WhenClaudeCodesTranscriptIsGone_StartsANewSessionWithEverythingTheUserSaid()
    {
        ClaudeCode.Configure(_h);
        var model = _h.Scenario("lost", new
        {
            name = "lost",
            turns = new[] { Final("First answer.") },
            rules = new[] { new { whenContains = "record of the earlier conversation", turn = Final("Started over with the whole request.") } },
        });
        var task = await _h.RunClaudeAsync(model, "the original request");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);
        var session = (await _h.EventsAsync(task.Id)).OfType<EngineNote>().Single(n => n.Kind == ClaudeEngine.SessionNote).Text;
        var state = Path.Combine(_h.OffloadHome, "data", "claude", Id(task)); // a sandboxed Claude Code keeps its sessions in a folder of the task's
        foreach (var transcript in Directory.EnumerateFiles(Path.Combine(state, "projects"), session + ".jsonl", SearchOption.AllDirectories))
        {
            File.Delete(transcript);
        }

        Assert.Equal(0, (await _h.OffloadAsync("reply", Id(task), "and a follow-up")).ExitCode);
        var done = await _h.WaitAsync(task.Id);

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        Assert.Equal("Started over with the whole request.", done.Summary);
        var events = await _h.EventsAsync(task.Id);
        var sessions = events.OfType<EngineNote>().Where(n => n.Kind == ClaudeEngine.SessionNote).Select(n => n.Text).ToList();
        Assert.Equal(2, sessions.Distinct().Count());
        var init = events.OfType<EngineNote>().Where(n => n.Kind == ClaudeEngine.RawNote).Select(n => JsonDocument.Parse(n.Text).RootElement)
            .Last(r => r.GetProperty("type").GetString() == "system");
        Assert.Equal(sessions[1], init.GetProperty("session_id").GetString());
    }

    [Fact]
    public async Task DaemonKilledMidRun_TheNextDaemonEndsTheOrphanAndResumesTheSession()
    {
        ClaudeCode.Configure(_h, args: ["--allowedTools", "Bash"]);
        var model = _h.Scenario("crash", new
        {
            name = "crash",
            turns = new[] { Tool("Bash", new { command = "sleep 300" }) },
            rules = new[] { new { whenContains = "was interrupted", turn = Final("Recovered after the restart.") } },
        });
        var task = await _h.RunClaudeAsync(model, "survive a crash");
        var started = (EngineNote)await _h.WaitForEventAsync(task.Id, e => e is EngineNote { Kind: ClaudeEngine.ProcessNote });
        var claudePid = int.Parse(started.Text.Split(' ')[0], CultureInfo.InvariantCulture);
        await _h.WaitForEventAsync(task.Id, e => e is ToolCalled);
        var sleeper = await WaitForDescendantAsync(claudePid, "sleep 300");

        var status = await _h.OffloadAsync("daemon", "status", "--json");
        var daemonPid = JsonDocument.Parse(status.Stdout).RootElement.GetProperty("pid").GetInt32();
        using (var daemon = System.Diagnostics.Process.GetProcessById(daemonPid))
        {
            daemon.Kill(); // SIGKILL, the daemon alone: sandboxed, Claude Code dies with it (bwrap --die-with-parent); without bwrap it lives on as an orphan
            await daemon.WaitForExitAsync();
        }

        var done = await _h.WaitAsync(task.Id); // starts a new daemon, which resumes the task

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        Assert.Equal("Recovered after the restart.", done.Summary);
        Assert.False(ClaudeCode.IsAlive(claudePid), "the orphaned Claude Code is still running");
        Assert.False(ClaudeCode.IsAlive(sleeper), "the orphan's command is still running");
        var events = await _h.EventsAsync(task.Id);
        Assert.Contains(events, e => e is UserMessage { Source: "offload" } u && u.Text == ClaudeEngine.InterruptedPrompt);
        var interrupted = events.OfType<ToolResulted>().Single();
        Assert.True(interrupted.IsError);
        var sessions = events.OfType<EngineNote>().Where(n => n.Kind == ClaudeEngine.SessionNote).Select(n => n.Text).Distinct();
        Assert.Single(sessions);
    }

    [Fact]
    public async Task TurnLimit_IsPassedToClaudeCode_AndItsStopIsLimited_ThenAReplyWithMoreTurnsGoesOn()
    {
        ClaudeCode.Configure(_h, args: ["--allowedTools", "Bash"]);
        var model = _h.Scenario("turns", Scenario(
            Tool("Bash", new { command = "echo one" }),
            Tool("Bash", new { command = "echo two" }),
            Final("Both steps done.")));
        var task = await _h.RunClaudeAsync(model, "two steps", "--max-turns", "1");
        var limited = await _h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Limited, limited.Status);
        Assert.Contains("turn limit reached", limited.Error);
        Assert.Contains("maximum number of turns", limited.Error);

        var reply = await _h.OffloadAsync("reply", Id(task), "--max-turns", "10", "go on");
        Assert.True(reply.ExitCode == 0, reply.ToString());
        var done = await _h.WaitAsync(task.Id);
        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        Assert.Equal("Both steps done.", done.Summary);
    }

    [Fact]
    public async Task DaemonStoppedGracefullyMidRun_TheTaskStaysRunning_AndTheNextDaemonResumesIt()
    {
        ClaudeCode.Configure(_h, args: ["--allowedTools", "Bash"]);
        var model = _h.Scenario("stop", new
        {
            name = "stop",
            turns = new[] { Tool("Bash", new { command = "sleep 300" }) },
            rules = new[] { new { whenContains = "was interrupted", turn = Final("Picked up again.") } },
        });
        var task = await _h.RunClaudeAsync(model, "survive a stop");
        var started = (EngineNote)await _h.WaitForEventAsync(task.Id, e => e is EngineNote { Kind: ClaudeEngine.ProcessNote });
        var claudePid = int.Parse(started.Text.Split(' ')[0], CultureInfo.InvariantCulture);
        await _h.WaitForEventAsync(task.Id, e => e is ToolCalled);
        var sleeper = await WaitForDescendantAsync(claudePid, "sleep 300");

        var stop = await _h.OffloadAsync("daemon", "stop");
        Assert.True(stop.ExitCode == 0, stop.ToString());
        Assert.False(ClaudeCode.IsAlive(claudePid), "Claude Code outlived the daemon");
        Assert.False(ClaudeCode.IsAlive(sleeper), "its command outlived the daemon");
        var events = await _h.EventsAsync(task.Id); // starts a new daemon, which resumes the task
        Assert.Contains(events, e => e is EngineNote { Kind: ClaudeEngine.StoppedNote });

        var done = await _h.WaitAsync(task.Id);
        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        Assert.Equal("Picked up again.", done.Summary);
    }

    [Fact]
    public async Task MissingBinary_FailsTheTask_SayingHowToInstallClaudeCode()
    {
        ClaudeCode.Configure(_h, path: Path.Combine(_h.Root, "no-such-claude"));
        var task = await _h.RunClaudeAsync("sim:echo", "hello");
        var done = await _h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Failed, done.Status);
        Assert.Contains("Claude Code was not found at " + Path.Combine(_h.Root, "no-such-claude"), done.Error);
        Assert.Contains("npm install -g @anthropic-ai/claude-code", done.Error);
    }

    /// <summary>
    /// A process below Claude Code (it runs each command in a session of its own) whose command line
    /// starts with <paramref name="command"/>, once it is there.
    /// </summary>
    private static async Task<int> WaitForDescendantAsync(int root, string command)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (!timeout.IsCancellationRequested)
        {
            var parents = new Dictionary<int, int>();
            var commands = new Dictionary<int, string>();
            foreach (var dir in Directory.EnumerateDirectories("/proc"))
            {
                try
                {
                    if (int.TryParse(Path.GetFileName(dir), CultureInfo.InvariantCulture, out var pid))
                    {
                        var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                        parents[pid] = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
                        commands[pid] = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                    }
                }
                catch (IOException)
                {
                }
            }

            foreach (var (pid, line) in commands)
            {
                var up = pid;
                while (parents.TryGetValue(up, out var parent) && parent > 1 && parent != root)
                {
                    up = parent;
                }

                if (line.StartsWith(command, StringComparison.Ordinal) && parents.GetValueOrDefault(up) == root)
                {
                    return pid;
                }
            }

            await Task.Delay(50, CancellationToken.None); // the process is started by Claude Code; there is no event to wait on
        }

        throw new TimeoutException($"no '{command}' process appeared below process {root}");
    }
}
