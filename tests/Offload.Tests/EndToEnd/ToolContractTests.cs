using System.Text.Json;
using Offload.Agent;
using Offload.Agent.Tools;
using Offload.Protocol;
using Offload.Simulator;
using static Offload.Tests.EndToEnd.Turns;
using static Offload.Tests.Resilience.ResilienceKit;

namespace Offload.Tests.EndToEnd;

/// <summary>
/// The builtin agent answers tool calls as Claude Code does (issue 15, part 1), end to end: the real daemon, a real git
/// repository, the Simulator over HTTP. A Simulator in the test speaks for the providers <c>anth</c> (Anthropic
/// protocol) and <c>local</c> (OpenAI protocol), so the requests the agent sent can be read back.
/// </summary>
public sealed class ToolContractTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly OffloadHarness _h = new();
    private SimulatorServer? _sim;

    public enum Protocol
    {
        Anthropic,
        OpenAI,
    }

    public async Task InitializeAsync()
    {
        _sim = await SimulatorServer.StartAsync(new SimulatorOptions());
        _h.WriteConfig(new
        {
            models = new
            {
                retry = FastRetry(),
                providers = new Dictionary<string, object>
                {
                    ["anth"] = new { kind = "anthropic", baseUrl = _sim.BaseUrl.ToString(), apiKey = "test" },
                    ["local"] = new { kind = "openai", baseUrl = _sim.BaseUrl + "v1", apiKey = "test" },
                },
            },
        });
    }

    public async Task DisposeAsync()
    {
        await _h.DisposeAsync();
        await _sim!.DisposeAsync();
    }

    private string Model(Protocol protocol, string name, object scenario) =>
        (protocol == Protocol.Anthropic ? "anth:" : "local:") + _h.Scenario(name, scenario)["sim:".Length..];

    private RecordedRequest Request(int turnIndex, string api = "anthropic") =>
        Assert.Single(_sim!.Requests, r => r.Api == api && r.TurnIndex == turnIndex);

    /// <summary>The request's tool_result blocks in order: (tool_use_id, is_error, content).</summary>
    private static List<(string Id, bool IsError, string Content)> ToolResults(RecordedRequest request)
    {
        using var body = JsonDocument.Parse(request.Body);
        return [.. body.RootElement.GetProperty("messages").EnumerateArray()
            .Where(m => m.GetProperty("content").ValueKind == JsonValueKind.Array)
            .SelectMany(m => m.GetProperty("content").EnumerateArray())
            .Where(b => b.GetProperty("type").GetString() == "tool_result")
            .Select(b => (b.GetProperty("tool_use_id").GetString()!, b.GetProperty("is_error").GetBoolean(), b.GetProperty("content").GetString()!))];
    }

    private static object Calls(params (string Name, object Input)[] calls) =>
        new { text = "", toolCalls = calls.Select(c => new { name = c.Name, input = c.Input }).ToArray() };

    private async Task<(TaskInfo Done, List<AgentEvent> Events)> RunAsync(string model, string prompt = "go")
    {
        var task = await _h.RunTaskAsync(model, prompt);
        var done = await _h.WaitAsync(task.Id);
        return (done, await _h.EventsAsync(task.Id));
    }

    // ── 1. Tool errors go out as errors ─────────────────────────────────────────────────────────────────────────

    [Fact]
    public async Task FailedToolResult_GoesOutWithIsErrorTrue_AGoodOneWithFalse_LiveAndAfterAKillNineResume()
    {
        var model = Model(Protocol.Anthropic, "errors", Scenario(
            Calls(("Read", new { file_path = "missing.txt" }), ("Read", new { file_path = "README.md" })),
            Tool("Bash", new { command = "echo started > started.txt; sleep 30" }),
            Final("Checked.")));
        var pid = await _h.DaemonPidAsync();
        var task = await _h.RunTaskAsync(model, "read two files");
        await WaitUntilAsync(() => File.Exists(Path.Combine(task.Worktree, "started.txt")), Timeout, "the Bash step never started");
        await KillNineAsync(pid);
        var done = await _h.WaitAsync(task.Id); // a new daemon resumes the task: its conversation is rebuilt from the journal

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        var live = ToolResults(Request(1));
        Assert.Equal([("toolu_sim_0_0", true), ("toolu_sim_0_1", false)], live.Select(r => (r.Id, r.IsError)));
        Assert.StartsWith("File does not exist: missing.txt", live[0].Content, StringComparison.Ordinal); // the flag says it; no "Error: " text
        Assert.Contains("# sample", live[1].Content, StringComparison.Ordinal);

        var resumed = ToolResults(Request(2)); // sent by the second daemon
        Assert.Equal([("toolu_sim_0_0", true), ("toolu_sim_0_1", false), ("toolu_sim_1_0", true)], resumed.Select(r => (r.Id, r.IsError)));
        Assert.Equal(live, resumed.Take(2));
        Assert.Equal(Conversation.InterruptedNote, resumed[2].Content);
        // Read-only calls of one turn run together: the journal has their results in the order they finished.
        Assert.Equal([("toolu_sim_0_0", true), ("toolu_sim_0_1", false), ("toolu_sim_1_0", true)],
            (await _h.EventsAsync(task.Id)).OfType<ToolResulted>().Select(r => (r.CallId, r.IsError)).OrderBy(r => r.CallId, StringComparer.Ordinal));
    }

    [Fact]
    public async Task FailedToolResult_OverTheOpenAIProtocol_WhichHasNoErrorFlag_IsMarkedByItsText()
    {
        var (done, _) = await RunAsync(Model(Protocol.OpenAI, "errors-openai", Scenario(
            Calls(("Read", new { file_path = "missing.txt" }), ("Bash", new { command = "exit 3" }), ("Read", new { file_path = "README.md" })),
            Final("Checked."))));

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        using var body = JsonDocument.Parse(Request(1, "openai").Body);
        var results = body.RootElement.GetProperty("messages").EnumerateArray()
            .Where(m => m.GetProperty("role").GetString() == "tool")
            .Select(m => (m.GetProperty("tool_call_id").GetString(), m.GetProperty("content").GetString()!)).ToList();
        Assert.Equal(["call_sim_0_0", "call_sim_0_1", "call_sim_0_2"], results.Select(r => r.Item1));
        Assert.StartsWith("Error: File does not exist: missing.txt", results[0].Item2, StringComparison.Ordinal);
        Assert.StartsWith("Error: ", results[1].Item2, StringComparison.Ordinal);
        Assert.Contains("Exit code 3", results[1].Item2, StringComparison.Ordinal);
        Assert.DoesNotContain("Error", results[2].Item2, StringComparison.Ordinal);
    }

    // ── 2. Write and Edit need a fresh Read ────────────────────────────────────────────────────────────────────

    [Fact]
    public async Task WriteOrEdit_OfAnExistingFileNotRead_FailsWithClaudeCodesMessage_AndLeavesItUnchanged()
    {
        var (done, events) = await RunAsync(Model(Protocol.Anthropic, "unread", Scenario(
            Calls(("Write", new { file_path = "README.md", content = "overwritten\n" }),
                ("Edit", new { file_path = "app.py", old_string = "hello", new_string = "bye" })),
            Final("Tried."))));

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.Equal([(true, FileReads.NotReadYet), (true, FileReads.NotReadYet)], events.OfType<ToolResulted>().Select(r => (r.IsError, r.Output)));
        Assert.Equal("# sample\n", File.ReadAllText(Path.Combine(done.Worktree, "README.md")));
        Assert.Equal("print('hello')\n", File.ReadAllText(Path.Combine(done.Worktree, "app.py")));
        Assert.All(ToolResults(Request(1)), r => Assert.True(r.IsError));
    }

    [Fact]
    public async Task ReadThenWrite_Succeeds_ANewFileNeedsNoRead_AndWhatTheAgentWroteItMayEditAgain()
    {
        var (done, events) = await RunAsync(Model(Protocol.Anthropic, "read-write", Scenario(
            Tool("Read", new { file_path = "README.md" }),
            Tool("Write", new { file_path = "README.md", content = "# rewritten\n" }),
            Tool("Write", new { file_path = "docs/new.md", content = "fresh\n" }),
            Tool("Edit", new { file_path = "docs/new.md", old_string = "fresh", new_string = "edited" }),
            Tool("Edit", new { file_path = "README.md", old_string = "rewritten", new_string = "rewritten twice" }),
            Final("Done."))));

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.All(events.OfType<ToolResulted>(), r => Assert.False(r.IsError, r.Output));
        Assert.Equal("# rewritten twice\n", File.ReadAllText(Path.Combine(done.Worktree, "README.md")));
        Assert.Equal("edited\n", File.ReadAllText(Path.Combine(done.Worktree, "docs/new.md")));
    }

    [Fact]
    public async Task Edit_OfAFileABashCommandChangedSinceItWasRead_FailsAndAsksToReadAgain_ThenSucceedsAfterARead()
    {
        var (done, events) = await RunAsync(Model(Protocol.Anthropic, "stale", Scenario(
            Tool("Read", new { file_path = "app.py" }),
            Tool("Bash", new { command = "echo \"print('formatted')\" >> app.py" }),
            Tool("Edit", new { file_path = "app.py", old_string = "hello", new_string = "bye" }),
            Tool("Write", new { file_path = "app.py", content = "clobbered\n" }),
            Tool("Read", new { file_path = "app.py" }),
            Tool("Edit", new { file_path = "app.py", old_string = "hello", new_string = "bye" }),
            Final("Done."))));

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        var results = events.OfType<ToolResulted>().ToList();
        Assert.Equal((true, FileReads.ModifiedSinceRead), (results[2].IsError, results[2].Output));
        Assert.Equal((true, FileReads.ModifiedSinceRead), (results[3].IsError, results[3].Output));
        Assert.False(results[5].IsError, results[5].Output);
        Assert.Equal("print('bye')\nprint('formatted')\n", File.ReadAllText(Path.Combine(done.Worktree, "app.py")));
    }

    [Fact]
    public async Task ReadState_SurvivesADaemonRestart_AndAFileTheUserChangedBetweenRepliesMustBeReadAgain()
    {
        var model = Model(Protocol.Anthropic, "restart", Scenario(
            Tool("Read", new { file_path = "app.py" }),
            Final("Read it."),
            Tool("Edit", new { file_path = "app.py", old_string = "hello", new_string = "hi" }),
            Final("Edited."),
            Tool("Edit", new { file_path = "app.py", old_string = "hi", new_string = "bye" }),
            Final("Tried again.")));
        var task = await _h.RunTaskAsync(model, "read app.py");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);

        var stop = await _h.OffloadAsync("daemon", "stop");
        Assert.True(stop.ExitCode == 0, stop.ToString());
        var reply = await _h.OffloadAsync("reply", Id(task.Id), "now edit it"); // starts a new daemon, which knows only the journal
        Assert.True(reply.ExitCode == 0, reply.ToString());
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);
        var path = Path.Combine(task.Worktree, "app.py");
        Assert.Equal("print('hi')\n", File.ReadAllText(path));

        File.AppendAllText(path, "# the user's line\n");
        reply = await _h.OffloadAsync("reply", Id(task.Id), "edit it again");
        Assert.True(reply.ExitCode == 0, reply.ToString());
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);

        var results = (await _h.EventsAsync(task.Id)).OfType<ToolResulted>().ToList();
        Assert.Equal([(false, "Edited app.py: replaced 1 occurrence."), (true, FileReads.ModifiedSinceRead)], results.Skip(1).Select(r => (r.IsError, r.Output)));
        Assert.Equal("print('hi')\n# the user's line\n", File.ReadAllText(path));
    }

    // ── 3. Glob and Grep skip what git ignores ─────────────────────────────────────────────────────────────────

    [Fact]
    public async Task GlobAndGrep_SkipWhatGitignoreExcludes_UnlessAskedWithNoIgnoreOrAnIgnoredPath()
    {
        File.WriteAllText(Path.Combine(_h.Repo, ".gitignore"), "node_modules/\n/build/\n");
        Directory.CreateDirectory(Path.Combine(_h.Repo, "sub"));
        File.WriteAllText(Path.Combine(_h.Repo, "sub", ".gitignore"), "*.gen.js\n!keep.gen.js\n");
        _h.Git("add", "-A");
        _h.Git("commit", "-q", "-m", "ignore rules");
        var (done, events) = await RunAsync(Model(Protocol.Anthropic, "ignored", Scenario(
            Tool("Bash", new
            {
                command = "mkdir -p node_modules/lib build sub/build && for f in src.js node_modules/lib/dep.js build/out.js sub/build/kept.js sub/a.gen.js sub/keep.gen.js; " +
                          "do echo 'const needle = 1;' > $f; done",
            }),
            Calls(("Glob", new { pattern = "**/*.js" }),
                ("Grep", new { pattern = "needle" }),
                ("Glob", new { pattern = "**/*.js", no_ignore = true }),
                ("Grep", new { pattern = "needle", no_ignore = true }),
                ("Grep", new { pattern = "needle", path = "node_modules" }),
                ("Glob", new { pattern = "**/*.js", path = "build" })),
            Tool("Bash", new { command = "rm -rf node_modules build" }),
            Final("Searched."))));

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        var results = events.OfType<ToolResulted>().Where(r => r.CallId.StartsWith("toolu_sim_1_", StringComparison.Ordinal)).OrderBy(r => r.CallId, StringComparer.Ordinal).Select(r => r.Output.Split('\n').Where(l => l.EndsWith(".js", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList()).ToList();
        string[] kept = ["src.js", "sub/build/kept.js", "sub/keep.gen.js"]; // /build/ is anchored at the root; !keep.gen.js takes it back
        string[] all = ["build/out.js", "node_modules/lib/dep.js", "src.js", "sub/a.gen.js", "sub/build/kept.js", "sub/keep.gen.js"];
        Assert.Equal(kept, results[0]);
        Assert.Equal(kept, results[1]);
        Assert.Equal(all, results[2]);
        Assert.Equal(all, results[3]);
        Assert.Equal(["node_modules/lib/dep.js"], results[4]);
        Assert.Equal(["build/out.js"], results[5]);
    }

    // ── 4. A reply cut off by the output-token limit is continued ──────────────────────────────────────────────

    [Theory]
    [InlineData(Protocol.Anthropic)]
    [InlineData(Protocol.OpenAI)]
    public async Task ReplyCutOffByTheOutputLimit_IsNotTheFinalAnswer_TheModelIsAskedToContinue_AndLogsSayIt(Protocol protocol)
    {
        var (done, events) = await RunAsync(Model(protocol, "cut", Scenario(
            new { text = "The first half of the answer, and a call cut in", cutOff = true, toolCalls = new[] { new { name = "Bash", input = new { command = "echo ran > ran.txt" } } } },
            Final("the second half. Done."))));

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.Equal("the second half. Done.", done.Summary);
        Assert.Empty(events.OfType<ToolCalled>()); // a call in a cut reply may be cut itself: it never runs
        Assert.False(File.Exists(Path.Combine(done.Worktree, "ran.txt")));
        var cut = events.FindIndex(e => e is AssistantMessage { Text: "The first half of the answer, and a call cut in" });
        Assert.Equal(new UserMessage(Conversation.OutputLimitNote, Conversation.OutputLimitSource), events[cut + 1] with { TaskId = 0, Seq = 0, Attempt = 0, At = default });

        var api = protocol == Protocol.Anthropic ? "anthropic" : "openai";
        Assert.Contains(Conversation.OutputLimitNote, Request(1, api).Body.Replace("\\u2014", "\u2014", StringComparison.Ordinal), StringComparison.Ordinal);
        var logs = await _h.OffloadAsync("logs", Id(done.Id));
        Assert.Contains("the reply was cut off by the output-token limit; the model was asked to continue", logs.Stdout, StringComparison.Ordinal);
    }

    // ── 5. Read-only calls of one turn run together; writes in order ───────────────────────────────────────────

    [Fact]
    public async Task ReadOnlyCallsOfOneTurn_RunTogether_AndTheirResultsGoBackInCallOrder()
    {
        // Two Greps each read a FIFO. The test writes b.fifo first, then a.fifo: opening a FIFO for writing waits for its
        // reader. Run one after the other, the Grep of a.fifo would wait for a writer that waits for the Grep of b.fifo.
        var task = await _h.RunTaskAsync(Model(Protocol.Anthropic, "together", Scenario(
            Tool("Bash", new { command = "mkfifo a.fifo b.fifo" }),
            Calls(("Grep", new { pattern = "needle", path = "a.fifo", output_mode = "content" }),
                ("Grep", new { pattern = "needle", path = "b.fifo", output_mode = "content" })),
            Tool("Bash", new { command = "rm a.fifo b.fifo" }),
            Final("Both read."))), "read both pipes");
        var a = Path.Combine(task.Worktree, "a.fifo");
        var b = Path.Combine(task.Worktree, "b.fifo");
        await WaitUntilAsync(() => File.Exists(a) && File.Exists(b), Timeout, "the pipes were never made");

        await Task.Run(() => File.WriteAllText(b, "needle b\n")).WaitAsync(Timeout);
        await Task.Run(() => File.WriteAllText(a, "needle a\n")).WaitAsync(Timeout);
        var done = await _h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        var results = ToolResults(Request(2));
        Assert.Equal(["toolu_sim_1_0", "toolu_sim_1_1"], results.Skip(1).Select(r => r.Id));
        Assert.Equal(["a.fifo:1:needle a", "b.fifo:1:needle b"], results.Skip(1).Select(r => r.Content));
    }

    [Fact]
    public async Task CallsThatWrite_RunInCallOrder_WithTheReadOnlyCallsBetweenThemInTheirPlace()
    {
        var (done, events) = await RunAsync(Model(Protocol.Anthropic, "ordered", Scenario(
            Calls(("Write", new { file_path = "log.txt", content = "a\n" }),
                ("Bash", new { command = "echo b >> log.txt" }),
                ("Read", new { file_path = "log.txt" }),
                ("Grep", new { pattern = "b", path = "log.txt", output_mode = "count" }),
                ("Bash", new { command = "echo c >> log.txt" }),
                ("Edit", new { file_path = "log.txt", old_string = "c", new_string = "C" })),
            Final("Written."))));

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.Equal("a\nb\nc\n", File.ReadAllText(Path.Combine(done.Worktree, "log.txt")));
        var results = events.OfType<ToolResulted>().ToList();
        // Journaled as each call ends: the writes in call order, the Read and the Grep (run together) between them in either order.
        var journaled = results.Select(r => r.CallId).ToList();
        Assert.Equal(["toolu_sim_0_0", "toolu_sim_0_1"], journaled[..2]);
        Assert.Equal(["toolu_sim_0_2", "toolu_sim_0_3"], journaled[2..4].Order());
        Assert.Equal(["toolu_sim_0_4", "toolu_sim_0_5"], journaled[4..]);
        results = [.. results.OrderBy(r => r.CallId, StringComparer.Ordinal)];
        Assert.Equal("     1\ta\n     2\tb\n", results[2].Output); // the Read ran after the first Bash and before the second
        Assert.Equal(FileReads.ModifiedSinceRead, results[5].Output); // the Bash after the Read changed the file
        Assert.Equal(results.Select(r => r.CallId), ToolResults(Request(1)).Select(r => r.Id));
        var calls = events.OfType<ToolCalled>().Max(c => c.Seq);
        Assert.All(results, r => Assert.True(r.Seq > calls)); // every call is on record before any of them runs
    }
}
