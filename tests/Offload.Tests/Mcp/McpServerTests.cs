using System.Text.Json;
using Offload.Protocol;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;
using static Offload.Tests.Mcp.McpClient;

namespace Offload.Tests.Mcp;

/// <summary>
/// <c>offload mcp</c> end to end: the official MCP TypeScript client spawns the real <c>offload mcp</c> over stdio, which
/// reaches the real daemon (started on demand) on its socket; the tasks run the builtin agent against the Simulator in
/// their own worktrees of a real repository.
/// </summary>
public sealed class McpServerTests : IAsyncLifetime
{
    private static readonly string[] ToolNames =
    [
        "offload_run", "offload_status", "offload_logs", "offload_wait", "offload_reply", "offload_approve", "offload_deny",
        "offload_cancel", "offload_diff", "offload_merge", "offload_list", "offload_compare",
    ];

    private readonly OffloadHarness _h = new();

    public Task InitializeAsync()
    {
        var settings = Path.Combine(_h.Repo, ".claude", "settings.json"); // untracked: tasks' worktrees do not carry it
        Directory.CreateDirectory(Path.GetDirectoryName(settings)!);
        File.WriteAllText(settings, """{ "permissions": { "ask": ["Bash(touch:*)"] } }""");
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task OfficialClient_ListsEveryToolWithItsSchema_AndCallsEachOneThroughATasksLife()
    {
        var notes = _h.Scenario("notes", Scenario(
            Tool("Write", new { file_path = "notes.txt", content = "one\n" }),
            Final("Wrote notes.txt.", delayMs: 1500), // time for offload_wait to be following when the turn ends
            Final("Nothing more to add: notes.txt already says one.")));
        var asks = _h.Scenario("asks", Scenario(Tool("Bash", new { command = "touch asked.txt" }), Final("Made asked.txt.")));
        var refused = _h.Scenario("refused", Scenario(Tool("Bash", new { command = "touch refused.txt" }), Final("Could not make refused.txt.")));
        var slow = _h.Scenario("slow", Scenario(Final("too late", delayMs: 120_000)));

        var lines = await RunAsync(_h,
        [
            List(),
            Call("offload_run", new { prompt = "write the notes", model = notes, check = "test -f notes.txt", tags = new[] { "mcp" } }),
            Call("offload_wait", new { id = 1, timeoutSeconds = 60 }),
            Call("offload_status", new { id = 1 }),
            Call("offload_logs", new { id = 1, after = 0 }),
            Call("offload_diff", new { id = 1 }),
            Call("offload_run", new { prompt = "make a file", model = asks }),
            Call("offload_wait", new { id = 2, timeoutSeconds = 60 }), // returns when the task stops to ask
            Call("offload_status", new { id = 2 }),
            Call("offload_approve", new { id = 2 }),
            Call("offload_wait", new { id = 2, timeoutSeconds = 60 }),
            Call("offload_run", new { prompt = "make another file", model = refused }),
            Call("offload_wait", new { id = 3, timeoutSeconds = 60 }),
            Call("offload_deny", new { id = 3, reason = "not in this task" }),
            Call("offload_wait", new { id = 3, timeoutSeconds = 60 }),
            Call("offload_reply", new { id = 1, message = "also add two" }),
            Call("offload_wait", new { id = 1, timeoutSeconds = 60 }),
            Call("offload_list", new { tag = "mcp" }),
            Call("offload_compare", new { ids = new[] { 1, 2 } }),
            Call("offload_merge", new { id = 1 }),
            Call("offload_run", new { prompt = "take forever", model = slow }),
            Call("offload_wait", new { id = 4, timeoutSeconds = 1 }),
            Call("offload_cancel", new { id = 4 }),
        ]);

        var connect = lines[0].GetProperty("result");
        Assert.Equal("offload", connect.GetProperty("server").GetProperty("name").GetString());
        Assert.Contains("offload_run", connect.GetProperty("instructions").GetString());

        var tools = lines[1].GetProperty("result").GetProperty("tools").EnumerateArray().ToList();
        Assert.Equal(ToolNames, tools.Select(t => t.GetProperty("name").GetString()));
        foreach (var tool in tools)
        {
            var name = tool.GetProperty("name").GetString();
            Assert.True(tool.GetProperty("description").GetString()!.Length > 80, $"{name}: a description a model can act on");
            var schema = tool.GetProperty("inputSchema");
            Assert.Equal("object", schema.GetProperty("type").GetString());
            foreach (var property in schema.GetProperty("properties").EnumerateObject())
            {
                Assert.True(property.Value.TryGetProperty("description", out _), $"{name}.{property.Name} has no description");
            }
        }

        Assert.Equal(["prompt"], tools[0].GetProperty("inputSchema").GetProperty("required").EnumerateArray().Select(r => r.GetString()));

        var (run, runError) = Text(lines[2]);
        Assert.False(runError, run);
        Assert.StartsWith("task 1 queued · branch offload/1-write-the-notes · worktree ", run);
        Assert.Contains("check `test -f notes.txt`", run);

        var (waited, _) = Text(lines[3]);
        Assert.StartsWith("task 1 succeeded · 2 turns · $0.00 · branch offload/1-write-the-notes\nsummary: Wrote notes.txt.\n", waited);
        var progress = lines[3].GetProperty("progress").EnumerateArray().ToList(); // a turn that ended while it waited
        Assert.Equal("task 1: turn 2", progress[^1].GetProperty("message").GetString());
        Assert.Equal(2, progress[^1].GetProperty("progress").GetInt32());

        var (status, _) = Text(lines[4]);
        Assert.StartsWith("task 1 succeeded · 2 turns · $0.00 · 1 files changed\n", status);
        using (var report = JsonDocument.Parse(status[(status.IndexOf('\n', StringComparison.Ordinal) + 1)..]))
        {
            Assert.Equal("notes.txt", report.RootElement.GetProperty("files")[0].GetProperty("path").GetString());
            Assert.True(report.RootElement.GetProperty("lastCheck").GetProperty("passed").GetBoolean());
            Assert.Equal(["mcp"], report.RootElement.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
        }

        var (logs, _) = Text(lines[5]);
        Assert.Matches(@"(?m)^#\d+ \d\d:\d\d:\d\d → Write notes\.txt", logs);
        var journal = await _h.EventsAsync(1);
        var firstRunEnd = journal.First(e => e is StatusChanged { To: OffloadTaskStatus.Succeeded }).Seq;
        Assert.EndsWith($"(the end of the journal so far: call offload_logs with after={firstRunEnd} for newer events)", logs);

        var (diff, _) = Text(lines[6]);
        Assert.Contains("+++ b/notes.txt\n@@ -0,0 +1 @@\n+one\n", diff);

        var (asking, _) = Text(lines[8]);
        Assert.StartsWith("task 2 needs_input", asking);
        Assert.Contains("It waits for an answer about Bash touch asked.txt (asked because: Bash(touch:*) from ", asking);
        Assert.StartsWith("task 2 needs_input", Text(lines[9]).Text);
        Assert.Equal("task 2: approved Bash touch asked.txt. The task goes on: offload_wait with id 2.", Text(lines[10]).Text);
        Assert.StartsWith("task 2 succeeded", Text(lines[11]).Text);
        Assert.Equal("", _h.Git("show", "offload/2-make-a-file:asked.txt"));

        Assert.StartsWith("task 3 needs_input", Text(lines[13]).Text);
        Assert.Equal("task 3: denied Bash touch refused.txt (not in this task). The task goes on: offload_wait with id 3.", Text(lines[14]).Text);
        Assert.StartsWith("task 3 succeeded · 2 turns · $0.00 · branch offload/3-make-another-file\nsummary: Could not make refused.txt.", Text(lines[15]).Text);
        Assert.Contains(await _h.EventsAsync(3), e => e is ToolResulted { IsError: true } r && r.Output.Contains("not in this task", StringComparison.Ordinal));

        Assert.StartsWith("task 1 queued · goes on in branch offload/1-write-the-notes. Next: offload_wait with id 1.", Text(lines[16]).Text);
        Assert.StartsWith("task 1 succeeded · 3 turns · $0.00 · branch offload/1-write-the-notes\nsummary: Nothing more to add: notes.txt already says one.\n", Text(lines[17]).Text);

        var list = Text(lines[18]).Text.Split('\n');
        Assert.Equal("id status · title · model (engine) · turns · cost · age", list[0]);
        Assert.StartsWith("1 succeeded · write the notes · sim:", Assert.Single(list[1..]));

        var compare = Text(lines[19]).Text;
        Assert.StartsWith("compare tasks 1, 2: 2 tasks\n", compare);
        using (var compared = JsonDocument.Parse(compare[(compare.IndexOf('\n', StringComparison.Ordinal) + 1)..]))
        {
            Assert.Equal([1L, 2L], compared.RootElement.GetProperty("tasks").EnumerateArray().Select(t => t.GetProperty("task").GetProperty("id").GetInt64()));
        }

        Assert.Matches(@"^merged task 1 into main as [0-9a-f]{10} \(squash\) · 1 file: notes\.txt$", Text(lines[20]).Text);
        Assert.Equal("one\n", File.ReadAllText(Path.Combine(_h.Repo, "notes.txt")));

        Assert.StartsWith("task 4 queued", Text(lines[21]).Text);
        var (late, lateError) = Text(lines[22]);
        Assert.False(lateError, late);
        Assert.Matches(@"^task 4 is still (queued|running) after 1 s \(0 turns, \$0\.00 so far\)\. Call offload_wait again", late);
        Assert.StartsWith("task 4 cancelled (", Text(lines[23]).Text);
        Assert.Equal(OffloadTaskStatus.Cancelled, (await _h.WaitAsync(4)).Status);
    }

    [Fact]
    public async Task BadInput_GetsToolErrorsWithTheCliMessages_AndTheServerGoesOnServing()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("done", Scenario(Final("Done."))), "finish at once");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);

        var lines = await RunAsync(_h,
        [
            Call("offload_status", new { id = 99 }),
            Call("offload_logs", new { id = 99 }),
            Call("offload_wait", new { id = 99 }),
            Call("offload_diff", new { id = 99 }),
            Call("offload_merge", new { id = 99 }),
            Call("offload_reply", new { id = 99, message = "more" }),
            Call("offload_run", new { prompt = "" }),
            Call("offload_cancel", new { id = 1 }),
            Call("offload_approve", new { id = 1 }),
            Call("offload_deny", new { id = 1 }),
            Call("offload_run", new { prompt = "x", engine = "nope" }),
            Call("offload_status", new { id = "abc" }),
            Call("offload_run", new { model = "sim:demo" }),
            Call("offload_run", new { prompt = "x", repo = "no/such/folder" }),
            Call("offload_wait", new { id = 1, timeoutSeconds = 99999 }),
            Call("offload_compare", new { }),
            Call("offload_no_such_tool", new { }),
            Call("offload_list", new { }),
        ]);

        // The same words as the CLI's, which prints "offload: what happened" and "  next: what to type" on stderr.
        string[][] cli =
        [
            ["show", "99"], ["logs", "99"], ["wait", "99"], ["diff", "99"], ["merge", "99"], ["reply", "99", "more"], ["run", ""],
            ["cancel", "1"], ["approve", "1"], ["deny", "1"], ["run", "--engine", "nope", "x"],
        ];
        for (var i = 0; i < cli.Length; i++)
        {
            var (text, isError) = Text(lines[i + 1]);
            var expected = await _h.OffloadAsync(cli[i]);
            Assert.NotEqual(0, expected.ExitCode);
            Assert.True(isError, text);
            Assert.Equal(expected.Stderr.TrimEnd('\n'), text);
        }

        Assert.True(Text(lines[12]).IsError);
        Assert.Equal("offload: offload_status: `id` takes a whole number above 0, like 12, not \"abc\"", Text(lines[12]).Text);
        Assert.Equal("offload: offload_run needs `prompt`: what the agent should do, e.g. \"fix the failing test in tests/auth\"", Text(lines[13]).Text);
        Assert.Equal($"offload: the repository folder {Path.Combine(_h.Repo, "no", "such", "folder")} does not exist\n  next: give `repo` as the path of a git repository (absolute, or relative to {_h.Repo})", Text(lines[14]).Text);
        Assert.StartsWith("offload: offload_wait: `timeoutSeconds` is at most 3600, not 99999", Text(lines[15]).Text);
        Assert.StartsWith("offload: offload_compare needs exactly one of `ids`, `group` or `tag`", Text(lines[16]).Text);
        Assert.True(Text(lines[16]).IsError);

        var unknown = lines[17].GetProperty("error");
        Assert.Equal(-32602, unknown.GetProperty("code").GetInt32());
        Assert.Contains("there is no tool 'offload_no_such_tool'", unknown.GetProperty("message").GetString());

        var (list, listError) = Text(lines[18]); // still serving after every refusal
        Assert.False(listError, list);
        Assert.StartsWith("1 succeeded · finish at once", list.Split('\n')[1]);
        Assert.Single((await _h.OffloadAsync("ls", "--json")).Stdout.Split("\"id\":", StringSplitOptions.None)[1..]); // nothing was started by a refused run
    }

    [Fact]
    public async Task DaemonThatCannotStart_IsAToolErrorWithItsReason_AndTheServerGoesOnServing()
    {
        var blocker = Path.Combine(_h.Root, "not-a-folder");
        File.WriteAllText(blocker, "a file where OFFLOAD_HOME should be a folder");
        _h.Env["OFFLOAD_HOME"] = Path.Combine(blocker, "home");

        var lines = await RunAsync(_h, [Call("offload_list", new { }), Call("offload_run", new { prompt = "anything" }), List()]);

        var expected = await _h.OffloadAsync("ls");
        Assert.Equal(5, expected.ExitCode);
        Assert.Contains("is a file, not a folder", expected.Stderr);
        foreach (var line in lines.Skip(1).Take(2))
        {
            var (text, isError) = Text(line);
            Assert.True(isError, text);
            Assert.Equal(expected.Stderr.TrimEnd('\n'), text);
        }

        Assert.Equal(12, lines[3].GetProperty("result").GetProperty("tools").GetArrayLength());
    }

    [Fact]
    public async Task OffloadRun_AsAnMcpTask_IsPolledNatively_NotifiesEachStatus_AndItsResultCarriesTheSummary()
    {
        var notes = _h.Scenario("notes", Scenario(Tool("Write", new { file_path = "notes.txt", content = "one\n" }), Final("Wrote notes.txt.")));
        var failing = _h.Scenario("failing", Scenario(Final("I think it is done.")));
        var lines = await RunAsync(_h,
        [
            AsTask("offload_run", new { prompt = "write the notes", model = notes }),
            Request("tasks/get", new { taskId = "1" }),
            AsTask("offload_run", new { prompt = "never passes", model = failing, check = "false", checkTries = 1 }),
            Request("tasks/list", new { }),
            Request("tasks/get", new { taskId = "99" }),
            Request("tasks/cancel", new { taskId = "1" }),
            AsTask("offload_run", new { prompt = "" }),
            AsTask("offload_status", new { id = 1 }),
        ]);

        var capabilities = lines[0].GetProperty("result").GetProperty("capabilities");
        Assert.Equal("""{"list":{},"cancel":{},"requests":{"tools":{"call":{}}}}""", capabilities.GetProperty("tasks").GetRawText());

        var messages = lines[1].GetProperty("result").GetProperty("messages").EnumerateArray().ToList();
        Assert.Equal("taskCreated", messages[0].GetProperty("type").GetString());
        var created = messages[0].GetProperty("task");
        Assert.Equal("1", created.GetProperty("taskId").GetString());
        Assert.Equal("working", created.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, created.GetProperty("ttl").ValueKind);
        Assert.Equal(2000, created.GetProperty("pollInterval").GetInt32());
        Assert.Equal("completed", messages[^2].GetProperty("task").GetProperty("status").GetString());
        Assert.Equal("result", messages[^1].GetProperty("type").GetString());
        var result = messages[^1].GetProperty("result");
        Assert.StartsWith("task 1 succeeded · 2 turns · $0.00 · branch offload/1-write-the-notes\nsummary: Wrote notes.txt.\n", result.GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Equal("1", result.GetProperty("_meta").GetProperty("io.modelcontextprotocol/related-task").GetProperty("taskId").GetString());
        Assert.Equal("one\n", _h.Git("show", "offload/1-write-the-notes:notes.txt"));

        var notified = lines[1].GetProperty("result").GetProperty("notifications").EnumerateArray().Select(n => n.GetProperty("status").GetString()).ToList();
        Assert.Equal("completed", notified[^1]);
        Assert.All(notified[..^1], s => Assert.Equal("working", s));
        Assert.Contains(lines[1].GetProperty("result").GetProperty("notifications").EnumerateArray(), n => n.GetProperty("statusMessage").GetString()!.StartsWith("running", StringComparison.Ordinal));

        var polled = lines[2].GetProperty("result");
        Assert.Equal("completed", polled.GetProperty("status").GetString());
        Assert.Equal("succeeded · 2 turns", polled.GetProperty("statusMessage").GetString());

        var failed = lines[3].GetProperty("result");
        var failedMessages = failed.GetProperty("messages").EnumerateArray().ToList();
        Assert.Equal("failed", failedMessages[^2].GetProperty("task").GetProperty("status").GetString());
        Assert.StartsWith("failed: ", failedMessages[^2].GetProperty("task").GetProperty("statusMessage").GetString());
        Assert.Equal("error", failedMessages[^1].GetProperty("type").GetString());
        Assert.Equal("failed", failed.GetProperty("notifications").EnumerateArray().Last().GetProperty("status").GetString());

        Assert.Equal(["1", "2"], lines[4].GetProperty("result").GetProperty("tasks").EnumerateArray().Select(t => t.GetProperty("taskId").GetString()));

        var unknown = lines[5].GetProperty("error");
        Assert.Equal(-32602, unknown.GetProperty("code").GetInt32());
        Assert.Contains("there is no task 99", unknown.GetProperty("message").GetString());

        var ended = lines[6].GetProperty("error");
        Assert.Equal(-32602, ended.GetProperty("code").GetInt32());
        Assert.Contains("task 1 already ended (succeeded); there is nothing to cancel", ended.GetProperty("message").GetString());

        // A run refused before it started made no task to poll: the request's error carries the CLI's words.
        var refused = lines[7].GetProperty("result").GetProperty("messages").EnumerateArray().Single();
        Assert.Equal("error", refused.GetProperty("type").GetString());
        Assert.Equal(-32602, refused.GetProperty("error").GetProperty("code").GetInt32());
        Assert.Contains("the prompt is empty (next: say what the agent should do", refused.GetProperty("error").GetProperty("message").GetString());

        Assert.Contains("only offload_run can run as a task", lines[8].GetProperty("result").GetProperty("messages")[0].GetProperty("error").GetProperty("message").GetString());
    }
}
