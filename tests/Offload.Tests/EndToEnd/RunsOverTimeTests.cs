using System.Globalization;
using System.Text.Json;
using Offload.Protocol;
using static Offload.Tests.EndToEnd.Turns;

namespace Offload.Tests.EndToEnd;

/// <summary>
/// Runs over time (issue 16, parts 1, 2 and 5) through the real CLI and daemon against the Simulator: a check that
/// defines done (run in the sandbox; a failure goes back to the agent), best-of-N groups with a pick, and prompt history
/// (run --again, tags, ls --grep).
/// </summary>
public sealed class RunsOverTimeTests : IAsyncLifetime
{
    private const string TestScript = "r=$(sh add.sh 2 2); if [ \"$r\" = 4 ]; then echo 'ok: add 2 2 = 4'; else echo \"FAIL: add 2 2 gave $r, expected 4\"; exit 1; fi\n";
    private const string Fix = "printf 'echo $(($1 + $2))\\n' > add.sh";

    private readonly OffloadHarness _h = new();

    public Task InitializeAsync()
    {
        // A repository whose test fails: add.sh subtracts.
        File.WriteAllText(Path.Combine(_h.Repo, "add.sh"), "echo $(($1 - $2))\n");
        File.WriteAllText(Path.Combine(_h.Repo, "add_test.sh"), TestScript);
        _h.Git("add", "-A");
        _h.Git("commit", "-q", "-m", "add, with a bug");
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task Check_AgentClaimsSuccessWhileTestsFail_GetsTheFailureBack_FixesIt_AndThenPasses()
    {
        // The agent first claims success without changing anything. Only the check's own words ("FAIL: add 2 2 gave 0")
        // in the next request make the Simulator serve the fix: a message without them gets "nothing to fix".
        var model = _h.Scenario("claims", new
        {
            name = "claims",
            turns = new object[] { Final("Done: add works and the tests pass."), Final("There is nothing to fix."), Final("Fixed add.sh: it added nothing before; the tests pass now.") },
            rules = new object[] { new { whenContains = "FAIL: add 2 2 gave 0, expected 4", turn = Tool("Bash", new { command = Fix }) } },
        });
        var task = await _h.RunTaskAsync(model, "make add.sh add", "--check", "sh add_test.sh");
        Assert.Equal("sh add_test.sh", task.Check);
        var done = await _h.WaitAsync(task.Id);
        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        Assert.Equal("Fixed add.sh: it added nothing before; the tests pass now.", done.Summary);
        Assert.True(done.CheckPassed);

        var events = await _h.EventsAsync(task.Id);
        var checks = events.OfType<CheckRan>().ToList();
        Assert.Equal(2, checks.Count);
        Assert.Equal((false, 1, 1), (checks[0].Passed, checks[0].ExitCode, checks[0].Try));
        Assert.Contains("FAIL: add 2 2 gave 0, expected 4", checks[0].OutputTail, StringComparison.Ordinal);
        Assert.Equal((true, 0, 2), (checks[1].Passed, checks[1].ExitCode, checks[1].Try));
        Assert.Contains("ok: add 2 2 = 4", checks[1].OutputTail, StringComparison.Ordinal);
        var sentBack = events.OfType<UserMessage>().Single(u => u.Source == "check");
        Assert.Contains("FAIL: add 2 2 gave 0, expected 4", sentBack.Text, StringComparison.Ordinal);
        Assert.True(checks[0].Seq < sentBack.Seq && sentBack.Seq < checks[1].Seq);
        Assert.Equal("echo $(($1 + $2))\n", _h.Git("show", $"{done.Branch}:add.sh"));

        var show = (await _h.OffloadAsync("show", Id(task.Id))).Stdout;
        Assert.Contains("check     passed · `sh add_test.sh` exited 0 · try 2 of 3", show, StringComparison.Ordinal);
        var json = JsonDocument.Parse((await _h.OffloadAsync("show", "--json", Id(task.Id))).Stdout).RootElement;
        Assert.Equal([false, true], json.GetProperty("checks").EnumerateArray().Select(c => c.GetProperty("passed").GetBoolean()));
        Assert.True(json.GetProperty("checkPassed").GetBoolean());
    }

    [Fact]
    public async Task Check_WithTheClaudeEngine_SendsTheFailureIntoTheSameSession_AndPassesAfterTheFix()
    {
        Claude.ClaudeCode.Configure(_h, permissions: new { allow = new[] { "Bash(printf:*)" } });
        var model = _h.Scenario("claude-claims", new
        {
            name = "claude-claims",
            turns = new object[] { Final("Done: the tests pass."), Final("There is nothing to fix."), Final("Fixed add.sh; the tests pass now.") },
            rules = new object[] { new { whenContains = "FAIL: add 2 2 gave 0, expected 4", turn = Tool("Bash", new { command = Fix }) } },
        });
        var task = await Claude.ClaudeCode.RunClaudeAsync(_h, model, "make add.sh add", "--check", "sh add_test.sh");
        var done = await _h.WaitAsync(task.Id, TimeSpan.FromSeconds(180));
        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        Assert.Equal("Fixed add.sh; the tests pass now.", done.Summary);
        var events = await _h.EventsAsync(task.Id);
        Assert.Equal([false, true], events.OfType<CheckRan>().Select(c => c.Passed));
        var sessions = events.OfType<EngineNote>().Where(n => n.Kind == "claude.session").Select(n => n.Text).ToList();
        Assert.Equal(2, sessions.Count);
        Assert.Single(sessions.Distinct()); // the check's message resumed the same Claude Code session
        Assert.Equal("echo $(($1 + $2))\n", _h.Git("show", $"{done.Branch}:add.sh"));
    }

    [Fact]
    public async Task Check_FailingEveryTry_EndsTheTaskFailed_WithTheLastOutput_AndTheRepositorysCheckIsTheDefault()
    {
        // The check comes from the repository's config; the agent never fixes anything.
        Directory.CreateDirectory(Path.Combine(_h.Repo, ".offload"));
        File.WriteAllText(Path.Combine(_h.Repo, ".offload", "config.json"), """{"check": "sh add_test.sh", "checkTries": 2}""");
        _h.Git("add", "-A");
        _h.Git("commit", "-q", "-m", "check config");
        var model = _h.Scenario("stubborn", Scenario(Final("Done."), Final("Still done."), Final("Really done.")));
        var task = await _h.RunTaskAsync(model, "make add.sh add");
        Assert.Equal(("sh add_test.sh", 2), (task.Check, task.CheckTries));

        var wait = await _h.OffloadAsync("wait", Id(task.Id));
        Assert.Equal(8, wait.ExitCode);
        var done = await _h.ShowAsync(task.Id);
        Assert.Equal(OffloadTaskStatus.Failed, done.Status);
        Assert.StartsWith("check failed: `sh add_test.sh` exited 1 on try 2 of 2; its output ends: FAIL: add 2 2 gave 0, expected 4", done.Error, StringComparison.Ordinal);
        Assert.False(done.CheckPassed);
        Assert.Equal("Still done.", done.Summary); // the agent's last answer is kept
        var events = await _h.EventsAsync(task.Id);
        Assert.Equal([1, 2], events.OfType<CheckRan>().Select(c => c.Try));
        Assert.Single(events.OfType<UserMessage>(), u => u.Source == "check"); // the last failure ends the task instead

        var show = (await _h.OffloadAsync("show", Id(task.Id))).Stdout;
        Assert.Contains("check     FAILED · `sh add_test.sh` exited 1 · try 2 of 2", show, StringComparison.Ordinal);
        Assert.Contains("│ FAIL: add 2 2 gave 0, expected 4", show, StringComparison.Ordinal);

        // A reply is new work: it gets its own tries.
        var reply = await _h.OffloadAsync("reply", Id(task.Id), "look again");
        Assert.True(reply.ExitCode == 0, reply.ToString());
        Assert.Equal(OffloadTaskStatus.Failed, (await _h.WaitAsync(task.Id)).Status);
        Assert.Equal([1, 2, 1, 2], (await _h.EventsAsync(task.Id)).OfType<CheckRan>().Select(c => c.Try));
    }

    [Theory]
    [InlineData("--check", "  ", "--check is empty")]
    [InlineData("--check-tries", "0", "--check-tries 0 is not a number of tries")]
    [InlineData("-n", "0", "-n 0 is not a number of attempts")]
    [InlineData("--tag", "no spaces", "the tag 'no spaces' is not a tag")]
    public async Task BadRunsInput_IsRefused_AndNothingIsStarted(string option, string value, string message)
    {
        var result = await _h.OffloadAsync("run", "--model", "sim:echo", option, value, "do it");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains(message, result.Stderr, StringComparison.Ordinal);
        Assert.Contains("no tasks yet", (await _h.OffloadAsync("ls")).Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BestOfN_AGroupOfThreeModels_OneFailingItsCheck_PicksTheRightOne_AndMergesIt()
    {
        var wrong = _h.Scenario("wrong", Scenario(Tool("Bash", new { command = "printf 'echo 5\\n' > add.sh" }), Final("Made add.sh answer 5.")));
        var big = _h.Scenario("big", Scenario(Tool("Bash", new { command = Fix + " && printf '# add\\nAdds two numbers.\\n' > ADD.md" }), Final("Fixed add.sh and wrote ADD.md.")));
        var small = _h.Scenario("small", Scenario(Tool("Bash", new { command = Fix }), Final("Fixed add.sh.")));
        var run = await _h.OffloadAsync("run", "--json", "--models", $"{wrong},{big},{small}", "--check", "sh add_test.sh", "--check-tries", "1", "make add.sh add");
        Assert.True(run.ExitCode == 0, run.ToString());
        var group = JsonSerializer.Deserialize<GroupInfo>(run.Stdout, OffloadJson.Options)!;
        Assert.Equal(3, group.Tasks.Count);
        Assert.Single(group.Tasks.Select(t => t.BaseCommit).Distinct());
        Assert.Equal(3, group.Tasks.Select(t => t.Branch).Distinct().Count());
        Assert.All(group.Tasks, t => Assert.Equal(group.Id, t.Group));

        var wait = await _h.OffloadAsync("wait", "g" + Id(group.Id));
        Assert.True(wait.ExitCode == 0, wait.ToString());
        var (failed, bigger, picked) = (group.Tasks[0].Id, group.Tasks[1].Id, group.Tasks[2].Id);
        Assert.Contains($"group g{group.Id}: pick task {picked} (its check passed; of 2, the cheapest ($0), then the smallest diff (2 lines))", wait.Stdout, StringComparison.Ordinal);
        Assert.Contains($"task {failed} failed · check failed", wait.Stdout, StringComparison.Ordinal);
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.ShowAsync(bigger)).Status);

        // ls folds the group into one line; --expand and `ls gN` unfold it.
        var ls = (await _h.OffloadAsync("ls")).Stdout.Split('\n');
        var line = Assert.Single(ls, l => l.StartsWith("g" + Id(group.Id), StringComparison.Ordinal));
        Assert.Contains("done 2/3", line, StringComparison.Ordinal);
        Assert.DoesNotContain(ls, l => l.StartsWith(Id(picked), StringComparison.Ordinal));
        var expanded = (await _h.OffloadAsync("ls", "--expand")).Stdout;
        Assert.Contains($" {picked}", expanded, StringComparison.Ordinal);
        var only = (await _h.OffloadAsync("ls", "g" + Id(group.Id))).Stdout.Split('\n');
        Assert.Equal(3, only.Count(l => l.Contains(" succeeded ", StringComparison.Ordinal) || l.Contains(" failed ", StringComparison.Ordinal)));

        var merge = await _h.OffloadAsync("merge", "g" + Id(group.Id));
        Assert.True(merge.ExitCode == 0, merge.ToString());
        Assert.Contains($"group g{group.Id}: its pick is task {picked}", merge.Stdout, StringComparison.Ordinal);
        Assert.Equal("echo $(($1 + $2))\n", File.ReadAllText(Path.Combine(_h.Repo, "add.sh")));
        Assert.False(File.Exists(Path.Combine(_h.Repo, "ADD.md")));
    }

    [Fact]
    public async Task Group_WithNoTaskPassing_HasNoPick_AndMergeRefusesNamingWhy()
    {
        var wrong = _h.Scenario("wrong", Scenario(Final("Done.")));
        var run = await _h.OffloadAsync("run", "--json", "--models", wrong, "-n", "2", "--check", "sh add_test.sh", "--check-tries", "1", "make add.sh add");
        Assert.True(run.ExitCode == 0, run.ToString());
        var group = JsonSerializer.Deserialize<GroupInfo>(run.Stdout, OffloadJson.Options)!;
        Assert.Equal(2, group.Tasks.Count);
        var wait = await _h.OffloadAsync("wait", "--json", "g" + Id(group.Id));
        Assert.Equal(8, wait.ExitCode);
        var waited = JsonSerializer.Deserialize<GroupInfo[]>(wait.Stdout, OffloadJson.Options)!.Single();
        Assert.Null(waited.Pick);
        Assert.Equal("no task of the group succeeded with its check passing", waited.PickReason);
        var merge = await _h.OffloadAsync("merge", "g" + Id(group.Id));
        Assert.Equal(4, merge.ExitCode);
        Assert.Contains($"group g{group.Id} has no pick: no task of the group succeeded", merge.Stderr, StringComparison.Ordinal);
        Assert.Equal("echo $(($1 - $2))\n", File.ReadAllText(Path.Combine(_h.Repo, "add.sh")));
        Assert.Equal(3, (await _h.OffloadAsync("merge", "g99")).ExitCode);
    }

    [Fact]
    public async Task Again_RepeatsThePromptModelAndCheck_OnTheCurrentHead_LinkedToTheOriginal_AndTagsAndGrepFindTasks()
    {
        var model = _h.Scenario("fix", Scenario(Tool("Bash", new { command = Fix }), Final("Fixed.")));
        var first = await _h.RunTaskAsync(model, "make add.sh add", "--check", "sh add_test.sh", "--tag", "math", "--tag", "bugfix", "--max-turns", "7");
        Assert.Equal(["math", "bugfix"], first.Tags);
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(first.Id)).Status);
        await _h.OffloadAsync("run", "--model", "sim:echo", "--tag", "docs", "write the readme");

        File.WriteAllText(Path.Combine(_h.Repo, "NOTES.md"), "later\n");
        _h.Git("add", "-A");
        _h.Git("commit", "-q", "-m", "a later commit");
        var head = _h.Git("rev-parse", "HEAD").Trim();
        var again = await _h.OffloadAsync("run", "--json", "--again", Id(first.Id));
        Assert.True(again.ExitCode == 0, again.ToString());
        var second = JsonSerializer.Deserialize<TaskInfo>(again.Stdout, OffloadJson.Options)!;
        Assert.Equal((first.Prompt, first.Model, first.Engine, first.Check, 7, first.Id), (second.Prompt, second.Model, second.Engine, second.Check, second.MaxTurns!.Value, second.AgainOf!.Value));
        Assert.Equal(["math", "bugfix"], second.Tags);
        Assert.Equal(head, second.BaseCommit);
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(second.Id)).Status);

        // Again of the again hangs off the first task: one series.
        var third = JsonSerializer.Deserialize<TaskInfo>((await _h.OffloadAsync("run", "--json", "--again", Id(second.Id), "--model", "sim:echo", "say hello")).Stdout, OffloadJson.Options)!;
        Assert.Equal((first.Id, "say hello", "sim:echo"), (third.AgainOf!.Value, third.Prompt, third.Model));

        var tagged = JsonSerializer.Deserialize<TaskInfo[]>((await _h.OffloadAsync("ls", "--json", "--tag", "math")).Stdout, OffloadJson.Options)!;
        Assert.Equal([third.Id, second.Id, first.Id], tagged.Select(t => t.Id));
        var found = JsonSerializer.Deserialize<TaskInfo[]>((await _h.OffloadAsync("ls", "--json", "--grep", "README")).Stdout, OffloadJson.Options)!;
        Assert.Equal("write the readme", Assert.Single(found).Prompt);
        Assert.Contains("no task matches", (await _h.OffloadAsync("ls", "--grep", "nothing like this")).Stdout, StringComparison.Ordinal);
        Assert.Contains($"again of task {first.Id}", (await _h.OffloadAsync("show", Id(second.Id))).Stdout, StringComparison.Ordinal);

        var missing = await _h.OffloadAsync("run", "--again", "999");
        Assert.Equal(3, missing.ExitCode);
        Assert.Contains("there is no task 999 to run again", missing.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CompareAndStats_ShowTasksSideBySide_AndFiguresAcrossThem_InTextAndJson()
    {
        var fixing = _h.Scenario("fixing", Scenario(
            Tool("Bash", new { command = "sh add_test.sh" }), Tool("Bash", new { command = Fix }), Tool("Bash", new { command = "sh add_test.sh" }), Final("Fixed add.sh.")));
        var wrong = _h.Scenario("wrong", Scenario(Final("Done.")));
        var a = await _h.RunTaskAsync(fixing, "make add.sh add", "--check", "sh add_test.sh", "--tag", "math");
        var b = await _h.RunTaskAsync(wrong, "make add.sh add, please", "--check", "sh add_test.sh", "--check-tries", "1", "--tag", "math");
        var c = await _h.RunTaskAsync("sim:echo", "say hello");
        foreach (var t in (TaskInfo[])[a, b, c])
        {
            await _h.WaitAsync(t.Id);
        }

        // compare: one column per task
        var text = (await _h.OffloadAsync("compare", Id(a.Id), Id(b.Id))).Stdout;
        var lines = text.Split('\n');
        Assert.Equal($"compare tasks {a.Id}, {b.Id}", lines[0]);
        Assert.Matches(@"^prompt\s+…add\s+…add, please$", Row(lines, "prompt"));
        Assert.Matches(@"^status\s+succeeded\s+failed$", Row(lines, "status"));
        Assert.Matches(@"^check\s+passed \(try 1\)\s+FAILED \(try 1\)$", Row(lines, "check"));
        Assert.Matches(@"^files\s+1 \(\+1 −1\)\s+0 \(\+0 −0\)$", Row(lines, "files"));
        Assert.Matches(@"^  add\.sh\s+\+1 −1$", Row(lines, "  add.sh"));
        Assert.Matches(@"^tests\s+2 run, last exit 0\s+-$", Row(lines, "tests"));
        Assert.Contains($"  #{a.Id}  turn 1  `sh add_test.sh` exited 1", text, StringComparison.Ordinal);
        Assert.Contains($"  #{a.Id}  turn 3  `sh add_test.sh` exited 0", text, StringComparison.Ordinal);

        var json = JsonSerializer.Deserialize<CompareResponse>((await _h.OffloadAsync("compare", "--json", Id(a.Id), Id(b.Id))).Stdout, OffloadJson.Options)!;
        Assert.Equal([a.Id, b.Id], json.Tasks.Select(t => t.Task.Id));
        Assert.Equal((true, false), (json.Tasks[0].Check!.Passed, json.Tasks[1].Check!.Passed));
        Assert.Equal("add.sh", Assert.Single(json.Tasks[0].Files).Path);
        Assert.Equal([1, 0], json.Tasks[0].Tests.Select(r => r.ExitCode!.Value));
        Assert.Equal([4, 1], json.Tasks.Select(t => t.Task.Turns));

        var diff = await _h.OffloadAsync("compare", "--diff", Id(a.Id), Id(b.Id));
        Assert.True(diff.ExitCode == 0, diff.ToString());
        Assert.Contains("-echo $(($1 + $2))\n+echo $(($1 - $2))", diff.Stdout, StringComparison.Ordinal);
        var tagged = JsonSerializer.Deserialize<CompareResponse>((await _h.OffloadAsync("compare", "--json", "--tag", "math")).Stdout, OffloadJson.Options)!;
        Assert.Equal(("tag math", 2), (tagged.Of, tagged.Tasks.Count));

        var alone = await _h.OffloadAsync("compare", Id(c.Id));
        Assert.Equal(2, alone.ExitCode);
        Assert.Contains($"task {c.Id} has no series to compare", alone.Stderr, StringComparison.Ordinal);
        Assert.Equal(3, (await _h.OffloadAsync("compare", Id(a.Id), "999")).ExitCode);
        Assert.Equal(2, (await _h.OffloadAsync("compare", "--diff", Id(a.Id))).ExitCode);

        // stats: across all three, and split
        var stats = JsonSerializer.Deserialize<StatsResponse>((await _h.OffloadAsync("stats", "--json")).Stdout, OffloadJson.Options)!;
        var all = stats.Total;
        Assert.Equal((3, 3, 2, 1), (all.Tasks, all.Ended, all.Succeeded, all.Failed));
        Assert.Equal(2.0 / 3, all.SuccessRate!.Value, 3);
        Assert.Equal((2, 1, 0.5), (all.Checked, all.CheckPassed, all.CheckPassRate!.Value));
        Assert.NotNull(all.MedianSeconds);
        Assert.True(all.P90Seconds >= all.MedianSeconds);
        var tasks = JsonSerializer.Deserialize<TaskInfo[]>((await _h.OffloadAsync("ls", "--json")).Stdout, OffloadJson.Options)!;
        Assert.Equal(tasks.Sum(t => (long)t.Turns), all.Turns);
        Assert.Equal(tasks.Sum(t => t.Usage.InputTokens), all.InputTokens);

        var byTag = JsonSerializer.Deserialize<StatsResponse>((await _h.OffloadAsync("stats", "--json", "--by", "tag")).Stdout, OffloadJson.Options)!;
        Assert.Equal([("(none)", 1), ("math", 2)], byTag.Rows.Select(r => (r.Key, r.Tasks)));
        var byStatus = JsonSerializer.Deserialize<StatsResponse>((await _h.OffloadAsync("stats", "--json", "--by", "status")).Stdout, OffloadJson.Options)!;
        Assert.Equal([("succeeded", 2), ("failed", 1)], byStatus.Rows.Select(r => (r.Key, r.Tasks)));
        var byModel = JsonSerializer.Deserialize<StatsResponse>((await _h.OffloadAsync("stats", "--json", "--by", "model", "--tag", "math")).Stdout, OffloadJson.Options)!;
        Assert.Equal(2, byModel.Rows.Count);
        Assert.Equal(2, byModel.Total.Tasks);

        var byDay = (await _h.OffloadAsync("stats", "--by", "day", "--since", "7d")).Stdout.Split('\n');
        var today = DateTimeOffset.Now.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        Assert.Matches($"^{today}  █+ +3 ", Assert.Single(byDay, l => l.StartsWith(today, StringComparison.Ordinal) && l.Contains('█', StringComparison.Ordinal)));
        Assert.Matches(@"^all\s+3\s+67%\s+50%", Assert.Single(byDay, l => l.StartsWith("all", StringComparison.Ordinal)));
        Assert.Contains("no tasks in that time", (await _h.OffloadAsync("stats", "--since", "2000-01-01T00:00", "--tag", "nothing")).Stdout, StringComparison.Ordinal);
        var bad = await _h.OffloadAsync("stats", "--since", "yesterday");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--since takes a span back from now", bad.Stderr, StringComparison.Ordinal);
    }

    private static string Row(string[] lines, string label) =>
        Assert.Single(lines, l => l.StartsWith(label + " ", StringComparison.Ordinal) && (label.StartsWith(' ') || !l.StartsWith("  ", StringComparison.Ordinal)));

    private static string Id(long id) => id.ToString(CultureInfo.InvariantCulture);
}
