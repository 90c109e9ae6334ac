using System.Globalization;
using System.Text.Json;
using Offload.Protocol;
using static Offload.Tests.EndToEnd.Turns;

namespace Offload.Tests.EndToEnd;

/// <summary>
/// The plan the user can see (issue 15, part 4), through the real CLI and daemon against the Simulator: the Task* tools
/// answer as Claude Code does and their changes show in show, ls, logs and --json, from the journal (so across a
/// restart); --plan-first keeps the agent to reading until the user approves its plan.
/// </summary>
public sealed class PlanTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task PlanItems_ShowInShowLsLogsAndJson_AndSurviveADaemonRestart()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("plan", Scenario(
            Tool("TaskCreate", new { subject = "Read the code", description = "Find where the parser lives", activeForm = "Reading the code" }),
            Tool("TaskCreate", new { subject = "Fix the parser", description = "Handle empty input", activeForm = "Fixing the parser" }),
            Tool("TaskCreate", new { subject = "Run the tests", description = "dotnet test", activeForm = "Running tests" }),
            Tool("TaskUpdate", new { taskId = "1", status = "completed" }),
            Tool("TaskUpdate", new { taskId = "2", status = "in_progress", addBlocks = new[] { "3" } }),
            Tool("TaskList", new { }),
            Tool("TaskGet", new { taskId = "3" }),
            Tool("TaskUpdate", new { taskId = "9", status = "completed" }),
            Tool("TaskUpdate", new { taskId = "3", addBlockedBy = new[] { "1" } }),
            Tool("TaskGet", new { taskId = "1" }),
            Tool("TaskGet", new { taskId = "3" }),
            Final("Planned."))), "plan the fix");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);

        var results = (await _h.EventsAsync(task.Id)).OfType<ToolResulted>().Select(r => (r.Name, r.Output, r.IsError)).ToList();
        Assert.Equal(
            [
                ("TaskCreate", "Task #1 created successfully: Read the code", false),
                ("TaskCreate", "Task #2 created successfully: Fix the parser", false),
                ("TaskCreate", "Task #3 created successfully: Run the tests", false),
                ("TaskUpdate", "Updated task #1 status", false),
                ("TaskUpdate", "Updated task #2 status, blocks", false),
                ("TaskList", "#1 [completed] Read the code\n#2 [in_progress] Fix the parser\n#3 [pending] Run the tests [blocked by #2]", false),
                ("TaskGet", "Task #3: Run the tests\nStatus: pending\nDescription: dotnet test\nBlocked by: #2", false),
                ("TaskUpdate", "Task #9 not found", false),
                ("TaskUpdate", "Updated task #3 blockedBy", false),
                ("TaskGet", "Task #1: Read the code\nStatus: completed\nDescription: Find where the parser lives\nBlocks: #3", false), // both halves of each link
                ("TaskGet", "Task #3: Run the tests\nStatus: pending\nDescription: dotnet test\nBlocked by: #2, #1", false),
            ],
            results);

        for (var restart = 0; restart < 2; restart++)
        {
            var show = Plain((await _h.OffloadAsync("show", Id(task))).Stdout);
            Assert.Contains("plan (1/3)\n  ✓ #1 Read the code  completed\n  ▶ #2 Fix the parser (Fixing the parser)  in_progress\n  ○ #3 Run the tests  pending\n", show);
            var ls = Plain((await _h.OffloadAsync("ls")).Stdout).Split('\n');
            Assert.Contains("PLAN", ls[0]);
            Assert.Contains(" 1/3 ", ls.Single(l => l.StartsWith(Id(task), StringComparison.Ordinal)));
            var lsJson = JsonDocument.Parse((await _h.OffloadAsync("ls", "--json")).Stdout).RootElement;
            Assert.Equal((1, 3), (lsJson[0].GetProperty("plan").GetProperty("done").GetInt32(), lsJson[0].GetProperty("plan").GetProperty("total").GetInt32()));
            var showJson = JsonDocument.Parse((await _h.OffloadAsync("show", "--json", Id(task))).Stdout).RootElement;
            Assert.Equal(new PlanProgress(1, 3), (await _h.ShowAsync(task.Id)).Plan); // the task's fields stay readable as a TaskInfo
            Assert.Equal(["1:completed", "2:in_progress", "3:pending"],
                showJson.GetProperty("planItems").EnumerateArray().Select(i => $"{i.GetProperty("id").GetString()}:{i.GetProperty("status").GetString()}"));
            Assert.Equal(0, (await _h.OffloadAsync("daemon", "stop")).ExitCode); // the next command starts a new daemon, which knows the plan from the store
        }

        var logs = Plain((await _h.OffloadAsync("logs", Id(task))).Stdout);
        Assert.Contains("plan ○ #1 Read the code · pending (0/1)", logs);
        Assert.Contains("plan ✓ #1 Read the code · completed (1/3)", logs);
        Assert.Contains("plan ○ #3 Run the tests · pending (1/3)", logs); // #3 made blocked by #2: one change each
    }

    [Fact]
    public async Task PlanFirst_OnlyReadsUntilApproved_ReplySendsItBackToPlanning_ApproveLetsItWrite()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("planfirst", Scenario(
            Tool("Bash", new { command = "touch early.txt" }),
            Tool("Write", new { file_path = "early.txt", content = "too soon" }),
            Tool("Edit", new { file_path = "README.md", old_string = "a", new_string = "b" }),
            Tool("TaskCreate", new { subject = "Write notes", description = "notes.txt" }),
            Tool("Write", new { file_path = ".offload/plan.md", content = "Plan v1: write notes.txt" }),
            Tool("ExitPlanMode", new { }),
            Tool("Read", new { file_path = ".offload/plan.md" }),
            Tool("Write", new { file_path = ".offload/plan.md", content = "Plan v2: write notes.txt with tests" }),
            Tool("ExitPlanMode", new { allowedPrompts = new[] { new { tool = "Bash", prompt = "run tests" } } }),
            Tool("Write", new { file_path = "notes.txt", content = "done" }),
            Tool("Bash", new { command = "touch ran.txt" }),
            Final("Wrote the notes."))), "write some notes", "--plan-first");

        var first = await WaitForStatusAsync(task.Id, OffloadTaskStatus.NeedsInput);
        var show = Plain((await _h.OffloadAsync("show", Id(task))).Stdout);
        Assert.Contains($"waiting for approval of the plan\n  Plan v1: write notes.txt\n  next: offload approve {task.Id}", show);
        Assert.Contains("plan proposed", Plain((await _h.OffloadAsync("logs", Id(task))).Stdout));
        Assert.Equal("Plan v1: write notes.txt", JsonDocument.Parse((await _h.OffloadAsync("show", "--json", Id(task))).Stdout).RootElement.GetProperty("proposedPlan").GetString());

        var reply = await _h.OffloadAsync("reply", Id(task), "also add tests");
        Assert.True(reply.ExitCode == 0, reply.ToString());
        var second = await WaitForStatusAsync(task.Id, OffloadTaskStatus.NeedsInput, first.Seq);
        var waiting = Plain((await _h.OffloadAsync("show", Id(task))).Stdout);
        Assert.Contains("Plan v2: write notes.txt with tests", waiting);
        Assert.Contains("  it asks for: Bash(prompt: run tests) (recorded with the approval; they allow nothing by themselves)\n", waiting);

        var approve = await _h.OffloadAsync("approve", Id(task));
        Assert.True(approve.ExitCode == 0, approve.ToString());
        var done = await _h.WaitAsync(task.Id);
        Assert.True(done.Status == OffloadTaskStatus.Succeeded, done.Error);
        Assert.True(second.Seq > first.Seq);

        var events = await _h.EventsAsync(task.Id);
        var results = events.OfType<ToolResulted>().ToList();
        Assert.All(results.Take(3), r => Assert.True(r.IsError && r.Output.StartsWith($"{r.Name} is not allowed in plan mode. Plan mode is active.", StringComparison.Ordinal), r.Output));
        Assert.False(results[4].IsError); // the plan file may be written
        Assert.True(results[5].IsError);
        Assert.EndsWith("To tell you how to proceed, the user said:\nalso add tests", results[5].Output);
        Assert.StartsWith("User has approved your plan. You can now start coding.", results[8].Output);
        Assert.EndsWith("## Approved Plan:\nPlan v2: write notes.txt with tests", results[8].Output);
        Assert.False(results[9].IsError); // Write after approval
        Assert.False(results[10].IsError, results[10].Output); // Bash after approval
        Assert.Equal(["Plan v1: write notes.txt", "Plan v2: write notes.txt with tests"], events.OfType<PlanProposed>().Select(p => p.Plan));
        var approved = events.OfType<PlanApproved>().Single();
        Assert.Equal("Plan v2: write notes.txt with tests", approved.Plan);
        Assert.Equal([new AllowedPrompt("Bash", "run tests")], approved.AllowedPrompts);

        Assert.Equal("done", _h.Git("show", $"{done.Branch}:notes.txt"));
        Assert.Contains("ran.txt", _h.Git("ls-tree", "--name-only", done.Branch));
        Assert.DoesNotContain("early.txt", _h.Git("ls-tree", "-r", "--name-only", done.Branch));
        Assert.DoesNotContain(".offload", _h.Git("ls-tree", "-r", "--name-only", done.Branch)); // the plan file does not land on the branch
        Assert.Contains("approved plan\n  Plan v2: write notes.txt with tests\n" +
            "  allowed prompts, as the agent asked (recorded; they allow nothing by themselves: the permission rules still decide)\n" +
            "    Bash(prompt: run tests)\n", Plain((await _h.OffloadAsync("show", Id(task))).Stdout));
        var json = JsonDocument.Parse((await _h.OffloadAsync("show", "--json", Id(task))).Stdout).RootElement.GetProperty("approvedPrompts");
        Assert.Equal(["Bash: run tests"], json.EnumerateArray().Select(p => $"{p.GetProperty("tool").GetString()}: {p.GetProperty("prompt").GetString()}"));
    }

    [Fact]
    public async Task ExitPlanMode_OutsidePlanMode_IsAnErrorAndChangesNothing()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("noplanmode", Scenario(
            Tool("ExitPlanMode", new { }),
            Final("Done."))), "do it");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);
        var result = (await _h.EventsAsync(task.Id)).OfType<ToolResulted>().Single();
        Assert.True(result.IsError);
        Assert.StartsWith("You are not in plan mode.", result.Output);
    }

    private static string Id(TaskInfo task) => task.Id.ToString(CultureInfo.InvariantCulture);

    private static string Plain(string text) => System.Text.RegularExpressions.Regex.Replace(text, "\u001b\\[[0-9;]*m", "");

    private Task<StatusChanged> WaitForStatusAsync(long id, OffloadTaskStatus status, long afterSeq = 0) =>
        _h.WaitForEventAsync<StatusChanged>(id, s => s.Seq > afterSeq && s.To == status);
}
