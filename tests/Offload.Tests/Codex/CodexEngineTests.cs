using System.Globalization;
using System.Text.Json;
using Offload.Engines.Codex;
using Offload.Protocol;
using Offload.Tests.Claude;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;

namespace Offload.Tests.Codex;

/// <summary>
/// The codex engine end to end: the real <c>offload</c> and daemon, the real Codex CLI (<c>codex exec --json</c>),
/// pointed by the daemon at its in-process Simulator over the Responses API (<c>--model sim:PATH</c>).
/// </summary>
public sealed class CodexEngineTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new("/var/tmp");

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private static string Id(TaskInfo task) => task.Id.ToString(CultureInfo.InvariantCulture);

    [Fact]
    public async Task Task_PatchesAFileAndRunsACommand_SucceedsWithTheChangeOnItsBranch_AndTheJournalMapped()
    {
        CodexCli.Configure(_h);
        var model = _h.Scenario("notes", Scenario(
            Tool("exec_command", CodexCli.Patch("notes.txt", "one", "two"), "Writing the notes."),
            Tool("exec_command", new { cmd = "wc -l < notes.txt" }),
            Final("Wrote notes.txt with two lines.")));

        var task = await _h.RunCodexAsync(model, "write notes and count them");
        Assert.Equal("codex", task.Engine);
        var done = await _h.WaitAsync(task.Id);

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        Assert.Equal("Wrote notes.txt with two lines.", done.Summary);
        Assert.Equal(3, done.Turns);
        Assert.True(done.Usage.InputTokens > 5_000, $"input tokens {done.Usage.InputTokens}"); // Codex's instructions and tools
        Assert.Equal(0m, done.Usage.CostUsd); // the Simulator is free
        Assert.Equal("one\ntwo\n", _h.Git("show", $"{done.Branch}:notes.txt"));

        var events = await _h.EventsAsync(task.Id);
        var calls = events.OfType<ToolCalled>().ToList();
        Assert.Equal([CodexEngine.PatchTool, CodexEngine.CommandTool], calls.Select(c => c.Name));
        Assert.Equal([1, 2], calls.Select(c => c.Turn));
        Assert.Equal("add", calls[0].Input.GetProperty("changes")[0].GetProperty("kind").GetString());
        Assert.Contains("wc -l < notes.txt", calls[1].Input.GetProperty("command").GetString());
        var results = events.OfType<ToolResulted>().ToList();
        Assert.Equal(calls.Select(c => c.CallId), results.Select(r => r.CallId));
        Assert.All(results, r => Assert.False(r.IsError, r.Output));
        Assert.Equal("2", results[1].Output.Trim().Split('\n')[^1]);
        Assert.Equal(0, results[1].ExitCode);
        Assert.Equal(["Writing the notes.", "", "Wrote notes.txt with two lines."], events.OfType<AssistantMessage>().Select(a => a.Text));
        Assert.Contains(events, e => e is EngineNote { Kind: CodexEngine.VersionNote } v && v.Text.StartsWith("codex-cli 0.169", StringComparison.Ordinal));
        Assert.Contains(events, e => e is EngineNote { Kind: CodexEngine.SandboxNote } s && s.Text.StartsWith("bubblewrap", StringComparison.Ordinal));
        Assert.True(Guid.TryParse(Assert.Single(events.OfType<EngineNote>(), n => n.Kind == CodexEngine.SessionNote).Text, out _)); // Codex's thread id

        var raw = events.OfType<EngineNote>().Where(n => n.Kind == CodexEngine.RawNote)
            .Select(n => JsonDocument.Parse(n.Text).RootElement.GetProperty("type").GetString()).ToList();
        Assert.Equal("thread.started", raw[0]);
        Assert.Equal("turn.completed", raw[^1]);
        Assert.Single(events.OfType<UsageRecorded>());
        Assert.Equal([1], events.OfType<CheckpointSaved>().Select(c => c.Turn)); // after the patch; the count changed no file

        var logs = await _h.OffloadAsync("logs", Id(task));
        Assert.Contains("→ exec_command", logs.Stdout);
    }

    [Fact]
    public async Task Reply_ResumesTheSameCodexSession_WithTheEarlierConversation()
    {
        CodexCli.Configure(_h);
        var model = _h.Scenario("reply", Scenario(
            Tool("exec_command", CodexCli.Patch("first.txt", "first")),
            Final("First answer."),
            Final("Second answer, in the same session.")));

        var task = await _h.RunCodexAsync(model, "start, then wait for more");
        var first = await _h.WaitAsync(task.Id);
        Assert.True(first.Status == OffloadTaskStatus.Succeeded, $"{first.Status}: {first.Error}");
        Assert.Equal("First answer.", first.Summary);

        var reply = await _h.OffloadAsync("reply", Id(task), "now the second part");
        Assert.True(reply.ExitCode == 0, reply.ToString());
        var done = await _h.WaitAsync(task.Id);

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        Assert.Equal("Second answer, in the same session.", done.Summary); // the Simulator saw the two earlier answers: the conversation went on
        Assert.Equal(3, done.Turns);
        var events = await _h.EventsAsync(task.Id);
        var sessions = events.OfType<EngineNote>().Where(n => n.Kind == CodexEngine.SessionNote).Select(n => n.Text).ToList();
        Assert.Equal(2, sessions.Count);
        Assert.Equal(sessions[0], sessions[1]);
        Assert.Equal("first\n", _h.Git("show", $"{done.Branch}:first.txt"));
    }

    [Fact]
    public async Task Cancel_StopsCodexAndTheCommandItRuns_AndMarksTheTaskCancelled()
    {
        CodexCli.Configure(_h);
        var model = _h.Scenario("slow", Scenario(
            Tool("exec_command", new { cmd = "sleep 4243; echo woke" }),
            Final("Should not get here.")));

        var task = await _h.RunCodexAsync(model, "wait a long time");
        await _h.WaitForEventAsync(task.Id, e => e is ToolCalled);
        var process = (EngineNote)(await _h.EventsAsync(task.Id)).Last(e => e is EngineNote { Kind: CodexEngine.ProcessNote });
        var pid = int.Parse(process.Text.Split(' ')[0], CultureInfo.InvariantCulture);
        Assert.True(SleepRunning(), "the command should be running");

        var cancel = await _h.OffloadAsync("cancel", Id(task));
        Assert.True(cancel.ExitCode == 0, cancel.ToString());
        var done = await _h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Cancelled, done.Status);
        Assert.False(ClaudeCode.IsAlive(pid), "Codex (its sandbox) still runs");
        Assert.False(SleepRunning(), "the command Codex ran still runs");
        Assert.DoesNotContain(await _h.EventsAsync(task.Id), e => e is AssistantMessage { Text: "Should not get here." });

        static bool SleepRunning() => Directory.EnumerateDirectories("/proc").Any(d =>
        {
            try
            {
                return File.ReadAllText(Path.Combine(d, "cmdline")).Replace('\0', ' ').StartsWith("sleep 4243", StringComparison.Ordinal)
                       && !File.ReadAllText(Path.Combine(d, "stat")).Contains(") Z ", StringComparison.Ordinal);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return false;
            }
        });
    }

    [Fact]
    public async Task DaemonKilledMidCommand_TheNextDaemonResumesTheSameCodexSession_SayingItWasInterrupted()
    {
        CodexCli.Configure(_h);
        var model = _h.Scenario("crash", new
        {
            name = "crash",
            turns = new[] { Tool("exec_command", new { cmd = "sleep 4244" }) },
            rules = new[] { new { whenContains = "was interrupted", turn = Final("Recovered after the restart.") } },
        });
        var task = await _h.RunCodexAsync(model, "survive a crash");
        await _h.WaitForEventAsync(task.Id, e => e is ToolCalled);
        var codexPid = int.Parse(((EngineNote)(await _h.EventsAsync(task.Id)).Last(e => e is EngineNote { Kind: CodexEngine.ProcessNote })).Text.Split(' ')[0], CultureInfo.InvariantCulture);

        var status = await _h.OffloadAsync("daemon", "status", "--json");
        var daemonPid = JsonDocument.Parse(status.Stdout).RootElement.GetProperty("pid").GetInt32();
        using (var daemon = System.Diagnostics.Process.GetProcessById(daemonPid))
        {
            daemon.Kill(); // SIGKILL, the daemon alone: Codex's sandbox dies with it (bwrap --die-with-parent)
            await daemon.WaitForExitAsync();
        }

        var done = await _h.WaitAsync(task.Id); // starts a new daemon, which resumes the task

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        Assert.Equal("Recovered after the restart.", done.Summary);
        Assert.False(ClaudeCode.IsAlive(codexPid), "the first run's Codex is still running");
        var events = await _h.EventsAsync(task.Id);
        Assert.Contains(events, e => e is UserMessage { Source: "offload" } u && u.Text == Offload.Engines.Claude.ClaudeEngine.InterruptedPrompt);
        Assert.True(events.OfType<ToolResulted>().First().IsError); // the command the crash cut off
        var sessions = events.OfType<EngineNote>().Where(n => n.Kind == CodexEngine.SessionNote).Select(n => n.Text).ToList();
        Assert.Equal(2, sessions.Count);
        Assert.Single(sessions.Distinct());
    }

    [Fact]
    public async Task Faults_A429A500AndACutStream_AreRetriedByCodex_AndTheTaskSucceeds()
    {
        CodexCli.Configure(_h);
        var model = _h.Scenario("faults", Scenario(
            new
            {
                text = "",
                toolCalls = new[] { new { name = "exec_command", input = (object)new { cmd = "echo ok > retried.txt" } } },
                faults = new object[]
                {
                    new { kind = "status", status = 429, retryAfter = "1" },
                    new { kind = "status", status = 500 },
                    new { kind = "drop", afterEvents = 4 },
                },
            },
            Final("Done after three faults.")));

        var task = await _h.RunCodexAsync(model, "survive the faults");
        var done = await _h.WaitAsync(task.Id);

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        Assert.Equal("ok\n", _h.Git("show", $"{done.Branch}:retried.txt"));
        var retries = (await _h.EventsAsync(task.Id)).OfType<ModelRetried>().ToList();
        Assert.True(retries.Count >= 2, $"retries: {retries.Count}");
        Assert.Contains(retries, r => r.Reason.Contains("429", StringComparison.Ordinal));
        Assert.Contains(retries, r => r.Reason.Contains("stream disconnected", StringComparison.Ordinal));
        Assert.Single((await _h.EventsAsync(task.Id)).OfType<ToolCalled>()); // the call whose stream was cut never ran
    }

    [Fact]
    public async Task Fault_ThatOutlastsCodexsRetries_FailsTheTaskWithTheReason()
    {
        CodexCli.Configure(_h, args: ["-c", "model_providers.offload.request_max_retries=1", "-c", "model_providers.offload.stream_max_retries=1"]);
        var model = _h.Scenario("down", Scenario(new
        {
            text = "never",
            faults = new object[] { new { kind = "status", status = 503, times = 100, message = "the model is down" } },
        }));

        var task = await _h.RunCodexAsync(model, "talk to a dead model");
        var done = await _h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Failed, done.Status);
        Assert.Contains("503", done.Error);
        Assert.Contains("the model is down", done.Error);
        Assert.StartsWith("Codex: ", done.Error, StringComparison.Ordinal);
        Assert.Contains(await _h.EventsAsync(task.Id), e => e is ModelRetried);
    }

    [Fact]
    public async Task TurnLimit_TheBridgeRefusesTheModelCallPastTheCap_AndTheTaskIsLimited_ThenAReplyWithMoreTurnsGoesOn()
    {
        CodexCli.Configure(_h);
        var model = _h.Scenario("long", Scenario(
            Tool("exec_command", new { cmd = "echo 1 > one.txt" }),
            Tool("exec_command", new { cmd = "echo 2 > two.txt" }),
            Final("Done.")));

        var task = await _h.RunCodexAsync(model, "more turns than allowed", "--max-turns", "1");
        var done = await _h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Limited, done.Status);
        Assert.Contains("turn limit reached (1 turns)", done.Error);
        Assert.Equal(1, done.Turns);
        Assert.True(File.Exists(Path.Combine(done.Worktree, "one.txt")));
        Assert.False(File.Exists(Path.Combine(done.Worktree, "two.txt")));

        var reply = await _h.OffloadAsync("reply", Id(task), "--max-turns", "10", "go on");
        Assert.True(reply.ExitCode == 0, reply.ToString());
        var resumed = await _h.WaitAsync(task.Id);
        Assert.True(resumed.Status == OffloadTaskStatus.Succeeded, $"{resumed.Status}: {resumed.Error}");
        Assert.Equal("Done.", resumed.Summary); // the same session: the Simulator saw the first answer and went on from the second
        Assert.Equal("2\n", _h.Git("show", $"{resumed.Branch}:two.txt"));
        Assert.Equal(3, resumed.Turns);
    }

    [Fact]
    public async Task MissingBinary_FailsWithWhereAndHowToInstall()
    {
        CodexCli.Configure(_h, path: Path.Combine(_h.Root, "no-codex-here"));

        var task = await _h.RunCodexAsync(_h.Scenario("none", Scenario(Final("x"))), "no codex");
        var done = await _h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Failed, done.Status);
        Assert.Contains("Codex CLI was not found at", done.Error);
        Assert.Contains("npm install -g @openai/codex", done.Error);
    }

    [Fact]
    public async Task Doctor_ReportsTheCodexCli_LikeClaudeCode()
    {
        CodexCli.Configure(_h);

        var doctor = await _h.OffloadAsync("doctor", "--json");

        using var json = JsonDocument.Parse(doctor.Stdout);
        var checks = json.RootElement.GetProperty("checks").EnumerateArray().ToList();
        var codex = Assert.Single(checks, c => c.GetProperty("name").GetString() == "codex");
        Assert.Equal("ok", codex.GetProperty("status").GetString());
        Assert.Contains(CodexCli.Executable, codex.GetProperty("detail").GetString());
        Assert.Contains("--engine codex can run, inside bubblewrap", codex.GetProperty("detail").GetString());
        Assert.Contains(checks, c => c.GetProperty("name").GetString() == "claude");
    }
}
