using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Offload.Protocol;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;

namespace Offload.Tests.Review;

/// <summary><c>offload show</c> as a report, the unseen mark of <c>ls</c>, the last line of <c>logs -f</c>, and <c>wait</c>'s exit codes.</summary>
public sealed class ReportTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private static string Id(TaskInfo t) => t.Id.ToString(CultureInfo.InvariantCulture);

    [Fact]
    public async Task Show_ReportsFilesWithLineCounts_CommandsWithExitCodes_AndTheLastTestRun()
    {
        var model = _h.Scenario("tested", Scenario(
            Tool("Write", new { file_path = "test_app.py", content = "import sys\nprint('ran')\nsys.exit(1)\n" }),
            Tool("Bash", new { command = "python3 test_app.py" }),
            Tool("Edit", new { file_path = "test_app.py", old_string = "sys.exit(1)", new_string = "sys.exit(0)" }),
            Tool("Bash", new { command = "python3 test_app.py" }),
            Tool("Bash", new { command = "echo done" }),
            Final("Fixed the test.")));
        var task = await _h.RunTaskAsync(model, "fix the test");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);

        var json = await _h.OffloadAsync("show", "--json", Id(task));

        Assert.True(json.ExitCode == 0, json.ToString());
        var node = JsonNode.Parse(json.Stdout)!.AsObject();
        Assert.Equal(task.Id, (long)node["id"]!);
        Assert.Equal("succeeded", (string)node["status"]!);
        Assert.Equal("Fixed the test.", (string)node["summary"]!);
        var files = node["files"]!.Deserialize<List<ChangedFile>>(OffloadJson.Options)!;
        Assert.Equal([new ChangedFile("test_app.py", 3, 0, "added")], files);
        var commands = node["commands"]!.Deserialize<List<CommandRun>>(OffloadJson.Options)!;
        Assert.Equal(
            [("python3 test_app.py", 1, true), ("python3 test_app.py", 0, true), ("echo done", 0, false)],
            commands.Select(c => (c.Command, c.ExitCode ?? -1, c.IsTest)));
        Assert.Equal([2, 4, 5], commands.Select(c => c.Turn));
        Assert.Single(node["attempts"]!.AsArray());
        Assert.True((double)node["runSeconds"]! > 0);

        var text = (await _h.OffloadAsync("show", Id(task))).Stdout;
        Assert.Contains("tests     passed · `python3 test_app.py` exited 0 (turn 4, the last test run)", text);
        Assert.Contains("  exit 1   python3 test_app.py\n", text);
        Assert.Contains("  exit 0   python3 test_app.py   ← last test run\n", text);
        Assert.Contains("  added test_app.py  +3 -0", text);
        Assert.Contains("commands (3)", text);
    }

    [Fact]
    public async Task Ls_MarksAFinishedTaskUntilShowLooksAtItOrItIsMerged()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("quick", Scenario(Final("Nothing to do."))), "quick look");
        await _h.WaitAsync(task.Id);

        Assert.Contains($"{task.Id}*", (await _h.OffloadAsync("ls")).Stdout);
        await _h.OffloadAsync("show", Id(task));
        var after = (await _h.OffloadAsync("ls")).Stdout;
        Assert.DoesNotContain($"{task.Id}*", after);
        Assert.DoesNotContain("not looked at yet", after);

        var merged = await _h.RunTaskAsync(_h.Scenario("write", Scenario(Tool("Write", new { file_path = "n.txt", content = "n\n" }), Final("Wrote n."))), "write n");
        await _h.WaitAsync(merged.Id);
        Assert.Contains($"{merged.Id}*", (await _h.OffloadAsync("ls")).Stdout);
        Assert.Equal(0, (await _h.OffloadAsync("merge", Id(merged))).ExitCode);
        Assert.DoesNotContain($"{merged.Id}*", (await _h.OffloadAsync("ls")).Stdout);
    }

    [Fact]
    public async Task LogsFollow_EndsWithALineThatSaysHowTheTaskEndedAndWhatToTypeNext()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("short", Scenario(Tool("Bash", new { command = "echo hi" }, delayMs: 300), Final("Said hi."))), "say hi");

        var logs = await _h.OffloadAsync("logs", "-f", Id(task));

        var last = logs.Stdout.TrimEnd().Split('\n')[^1];
        Assert.EndsWith($"■ task {task.Id} succeeded · next: offload show {task.Id} · offload diff {task.Id} · offload merge {task.Id}", last);
    }

    [Fact]
    public async Task Wait_ExitsWithTheWorstOutcome()
    {
        var ok = await _h.RunTaskAsync(_h.Scenario("ok", Scenario(Final("fine"))), "ok");
        var limited = await _h.RunTaskAsync(_h.Scenario("loop", Scenario(
            Tool("Bash", new { command = "true" }), Tool("Bash", new { command = "true" }), Final("x"))), "limited", "--max-turns", "1");
        var failed = await _h.RunTaskAsync(_h.Scenario("bad", new
        {
            name = "bad",
            turns = new[] { new { text = "", faults = new[] { new { kind = "status", status = 400, times = 100 } } } },
        }), "fails");

        Assert.Equal(0, (await _h.OffloadAsync("wait", Id(ok))).ExitCode);
        Assert.Equal(9, (await _h.OffloadAsync("wait", Id(ok), Id(limited))).ExitCode);
        Assert.Equal(8, (await _h.OffloadAsync("wait", Id(ok), Id(failed))).ExitCode);
        Assert.Equal(3, (await _h.OffloadAsync("wait", "999")).ExitCode);
    }
}
