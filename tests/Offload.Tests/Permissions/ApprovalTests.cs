using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Offload.Protocol;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;

namespace Offload.Tests.Permissions;

/// <summary>
/// Background approvals through the real CLI and daemon: a rule that asks parks the task in
/// needs_input with the exact call; approve/deny answer it; the question outlives the daemon.
/// </summary>
public sealed class ApprovalTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new();

    public Task InitializeAsync()
    {
        var settings = Path.Combine(_h.Repo, ".claude", "settings.json");
        Directory.CreateDirectory(Path.GetDirectoryName(settings)!);
        File.WriteAllText(settings, """{ "permissions": { "ask": ["Bash(touch:*)"], "deny": ["Bash(rm:*)"] } }""");
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task AskRule_ParksTheTaskInNeedsInput_ApproveRunsTheCallAndTheTaskGoesOn()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("approve", Scenario(
            Tool("Bash", new { command = "touch approved.txt" }),
            Final("Created approved.txt."))), "create a file");

        var asked = await WaitForAsync<PermissionRequested>(task.Id);
        await WaitForStatusAsync(task.Id, OffloadTaskStatus.NeedsInput);
        Assert.Equal("Bash", asked.Tool);
        Assert.Equal("""{"command":"touch approved.txt"}""", asked.Input.GetRawText());
        Assert.Equal($"Bash(touch:*) from {Path.Combine(_h.Repo, ".claude", "settings.json")}", asked.Rule);
        Assert.Equal(OffloadTaskStatus.NeedsInput, (await _h.ShowAsync(task.Id)).Status);
        var show = (await _h.OffloadAsync("show", Id(task))).Stdout;
        Assert.Contains($$"""
            waiting for approval
              Bash {"command":"touch approved.txt"}
              asked because: {{asked.Rule}}
              next: offload approve {{task.Id}} [--always] · offload deny {{task.Id}} --reason "…"
            """, show);
        Assert.Contains($"{task.Id}", (await _h.OffloadAsync("ls")).Stdout.Split('\n').Single(l => l.Contains("needs_input", StringComparison.Ordinal)));
        var logs = (await _h.OffloadAsync("logs", Id(task))).Stdout;
        Assert.Contains("needs approval: Bash {\"command\":\"touch approved.txt\"}", logs);

        var approve = await _h.OffloadAsync("approve", Id(task));
        Assert.True(approve.ExitCode == 0, approve.ToString());
        Assert.Equal($"task {task.Id}: approved Bash touch approved.txt\n", approve.Stdout);

        var done = await _h.WaitAsync(task.Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.Equal("", _h.Git("show", $"{done.Branch}:approved.txt"));
        var events = await _h.EventsAsync(task.Id);
        Assert.False(events.OfType<ToolResulted>().Single().IsError);
        Assert.Equal(
            [OffloadTaskStatus.Running, OffloadTaskStatus.NeedsInput, OffloadTaskStatus.Running, OffloadTaskStatus.Succeeded],
            events.OfType<StatusChanged>().Select(s => s.To));
        Assert.Equal(new PermissionAnswered(asked.RequestId, true), events.OfType<PermissionAnswered>().Single() with { TaskId = 0, Seq = 0, Attempt = 0, At = default });

        var again = await _h.OffloadAsync("approve", Id(task));
        Assert.Equal(4, again.ExitCode); // nothing to answer: conflict
        Assert.Contains($"task {task.Id} has no question waiting for an answer", again.Stderr);
    }

    [Fact]
    public async Task Wait_ReturnsWhenTheTaskStopsToAsk_UntilAndTimeoutSayWhatToWaitFor()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("asks", Scenario(
            Tool("Bash", new { command = "touch asked.txt" }),
            Final("Created asked.txt."))), "create a file");

        // Plain wait: not forever on a question nobody else will answer: exit 12, and what to type.
        var plain = await _h.OffloadAsync("wait", Id(task));
        Assert.True(plain.ExitCode == 12, plain.ToString());
        Assert.Contains($"task {task.Id} needs_input", plain.Stdout);
        Assert.Contains($"`offload approve {task.Id}`", plain.Stdout);

        var until = await _h.OffloadAsync("wait", "--until", "needs_input", Id(task));
        Assert.True(until.ExitCode == 0, until.ToString());

        // --until done waits through the question: it gives up at its timeout (13), the task still asking.
        var timedOut = await _h.OffloadAsync("wait", "--until", "done", "--timeout", "1s", "--json", Id(task));
        Assert.True(timedOut.ExitCode == 13, timedOut.ToString());
        Assert.Contains("gave up waiting after", timedOut.Stderr);
        Assert.Equal(OffloadTaskStatus.NeedsInput, JsonSerializer.Deserialize<TaskInfo[]>(timedOut.Stdout, OffloadJson.Options)![0].Status);

        // Someone answers while `wait --until done` blocks: it returns with the end.
        using var waiter = _h.Start("wait", "--until", "done", Id(task));
        Assert.Equal(0, (await _h.OffloadAsync("approve", Id(task))).ExitCode);
        Assert.True(waiter.WaitForExit(60_000), "wait --until done did not return after the approval");
        Assert.Equal(0, waiter.ExitCode);

        Assert.Equal(2, (await _h.OffloadAsync("wait", "--until", "later", Id(task))).ExitCode);
    }

    [Fact]
    public async Task TheWallClockLimit_StandsStillWhileTheTaskWaitsForAnAnswer()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("patient", Scenario(
            Tool("Bash", new { command = "touch waited.txt" }),
            Final("Created waited.txt after the wait."))), "create a file", "--timeout", "3s");
        var parked = await WaitForStatusAsync(task.Id, OffloadTaskStatus.NeedsInput);

        // The behaviour under test is about time itself: the question stays open for longer than the whole limit.
        await Task.Delay(parked.At.AddSeconds(4) - DateTimeOffset.UtcNow is { Ticks: > 0 } left ? left : TimeSpan.Zero);
        Assert.Equal(OffloadTaskStatus.NeedsInput, (await _h.ShowAsync(task.Id)).Status);
        Assert.Equal(0, (await _h.OffloadAsync("approve", Id(task))).ExitCode);

        var done = await _h.WaitAsync(task.Id);
        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        Assert.Equal("Created waited.txt after the wait.", done.Summary);
    }

    [Fact]
    public async Task Deny_WithAReason_TheModelGetsTheReasonAsTheToolError_AndTheTaskGoesOn()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("deny", new
        {
            name = "deny",
            turns = new[] { Tool("Bash", new { command = "touch denied.txt" }), Final("The reason never reached me.") },
            rules = new[] { new { whenContains = "not in this repository", afterTurn = 1, turn = new { text = "Understood: I left the file alone." } } },
        }), "create a file");
        await WaitForStatusAsync(task.Id, OffloadTaskStatus.NeedsInput);

        var deny = await _h.OffloadAsync("deny", Id(task), "--reason", "not in this repository");
        Assert.True(deny.ExitCode == 0, deny.ToString());
        Assert.Equal($"task {task.Id}: denied Bash touch denied.txt (not in this repository)\n", deny.Stdout);

        var done = await _h.WaitAsync(task.Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.Equal("Understood: I left the file alone.", done.Summary);
        var result = (await _h.EventsAsync(task.Id)).OfType<ToolResulted>().Single();
        Assert.True(result.IsError);
        Assert.Equal("The user denied this call: not in this repository", result.Output);
        Assert.DoesNotContain("denied.txt", _h.Git("ls-tree", "-r", "--name-only", done.Branch));
    }

    [Fact]
    public async Task PendingQuestion_SurvivesKillNineOfTheDaemon_AndIsAnsweredAfterTheRestart()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("restart", Scenario(
            Tool("Bash", new { command = "touch after-restart.txt" }),
            Final("Created it after the restart."))), "create a file");
        var asked = await WaitForAsync<PermissionRequested>(task.Id);
        await WaitForStatusAsync(task.Id, OffloadTaskStatus.NeedsInput);

        await KillDaemonAsync();

        // the next command starts a daemon, which resumes the task and parks it again on the same question
        var resumed = await WaitForAsync<StatusChanged>(task.Id, s => s.Reason == "resuming after a daemon restart");
        Assert.Equal(OffloadTaskStatus.NeedsInput, resumed.From);
        await WaitForStatusAsync(task.Id, OffloadTaskStatus.NeedsInput, resumed.Seq);
        var approve = await _h.OffloadAsync("approve", Id(task));
        Assert.True(approve.ExitCode == 0, approve.ToString());

        var done = await _h.WaitAsync(task.Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.Equal("", _h.Git("show", $"{done.Branch}:after-restart.txt"));
        var events = await _h.EventsAsync(task.Id);
        Assert.Equal(asked.RequestId, events.OfType<PermissionRequested>().Single().RequestId); // asked again, not recorded twice
        Assert.DoesNotContain(events.OfType<ToolResulted>(), r => r.IsError);                 // not reported as interrupted
    }

    [Fact]
    public async Task AnswerGivenWhileTheDaemonIsStopped_IsFoundByTheResumedRun()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("stopped", Scenario(
            Tool("Bash", new { command = "touch stopped.txt" }),
            Final("Done."))), "create a file");
        await WaitForStatusAsync(task.Id, OffloadTaskStatus.NeedsInput);

        var stop = await _h.OffloadAsync("daemon", "stop");
        Assert.True(stop.ExitCode == 0, stop.ToString());
        var deny = await _h.OffloadAsync("deny", Id(task), "--reason", "no new files"); // starts a daemon; the answer is stored at once

        Assert.True(deny.ExitCode == 0, deny.ToString());
        var done = await _h.WaitAsync(task.Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        var events = await _h.EventsAsync(task.Id);
        Assert.Single(events.OfType<PermissionRequested>());
        Assert.Equal("The user denied this call: no new files", events.OfType<ToolResulted>().Single().Output);
    }

    [Fact]
    public async Task ApproveAlways_AllowsTheSameCallForTheRestOfTheTask_EvenAfterARestart()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("always", Scenario(
            Tool("Bash", new { command = "touch once.txt" }),
            Tool("Bash", new { command = "touch twice.txt" }),
            Tool("Bash", new { command = "touch once.txt" }),
            Final("Done."))), "create files");
        await WaitForStatusAsync(task.Id, OffloadTaskStatus.NeedsInput);

        var approve = await _h.OffloadAsync("approve", "--always", "--json", Id(task));
        Assert.True(approve.ExitCode == 0, approve.ToString());
        Assert.Equal("Bash(touch once.txt)", JsonSerializer.Deserialize<PermissionAnswerResponse>(approve.Stdout, OffloadJson.Options)!.Rule);

        // the second, different command asks; the daemon dies while it waits
        var second = await WaitForAsync<PermissionRequested>(task.Id, p => p.Input.GetRawText().Contains("twice", StringComparison.Ordinal));
        await WaitForStatusAsync(task.Id, OffloadTaskStatus.NeedsInput, second.Seq);
        await KillDaemonAsync();
        var resumed = await WaitForAsync<StatusChanged>(task.Id, s => s.Reason == "resuming after a daemon restart");
        await WaitForStatusAsync(task.Id, OffloadTaskStatus.NeedsInput, resumed.Seq);
        Assert.Equal(0, (await _h.OffloadAsync("approve", Id(task))).ExitCode);

        // the third call, the approved one again, runs without asking: the --always answer came back from the journal
        var done = await _h.WaitAsync(task.Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        var events = await _h.EventsAsync(task.Id);
        Assert.Equal(["touch once.txt", "touch twice.txt"], events.OfType<PermissionRequested>().Select(p => p.Input.GetProperty("command").GetString()));
        Assert.Equal(3, events.OfType<ToolResulted>().Count(r => !r.IsError));
    }

    [Fact]
    public async Task Cancel_WhileWaitingForAnAnswer_EndsTheTaskCancelled_AndLeavesNothingToAnswer()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("cancel", Scenario(
            Tool("Bash", new { command = "touch never.txt" }),
            Final("Done."))), "create a file");
        await WaitForStatusAsync(task.Id, OffloadTaskStatus.NeedsInput);

        var cancel = await _h.OffloadAsync("cancel", Id(task));

        Assert.True(cancel.ExitCode == 0, cancel.ToString());
        Assert.Equal(OffloadTaskStatus.Cancelled, (await _h.WaitAsync(task.Id)).Status);
        Assert.Equal(4, (await _h.OffloadAsync("approve", Id(task))).ExitCode);
        Assert.DoesNotContain("never.txt", _h.Git("ls-tree", "-r", "--name-only", task.Branch));
    }

    [Fact]
    public async Task DenyRule_RefusesTheCallWithoutAsking_AndTellsTheModelWhichRule()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("denyrule", Scenario(
            Tool("Bash", new { command = "ls && rm -rf README.md" }),
            Final("Could not delete."))), "delete the readme");

        var done = await _h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        var events = await _h.EventsAsync(task.Id);
        Assert.Empty(events.OfType<PermissionRequested>());
        var result = events.OfType<ToolResulted>().Single();
        Assert.True(result.IsError);
        Assert.StartsWith($"Permission denied: denied by the rule Bash(rm:*) from {Path.Combine(_h.Repo, ".claude", "settings.json")}", result.Output);
        Assert.Contains("README.md", _h.Git("ls-tree", "-r", "--name-only", done.Branch));
    }

    [Fact]
    public async Task SettingsTheAgentWritesInItsWorktree_GrantItNothing()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("selfgrant", Scenario(
            Tool("Write", new { file_path = ".claude/settings.local.json", content = """{ "permissions": { "allow": ["Bash(touch:*)"] } }""" }),
            Tool("Bash", new { command = "touch sneaky.txt" }),
            Final("Done."))), "try to grant yourself");

        await WaitForAsync<PermissionRequested>(task.Id);
        Assert.Equal(0, (await _h.OffloadAsync("deny", Id(task))).ExitCode);
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);
    }

    private static string Id(TaskInfo task) => task.Id.ToString(CultureInfo.InvariantCulture);

    private async Task KillDaemonAsync()
    {
        var status = await _h.OffloadAsync("daemon", "status", "--json");
        var pid = JsonDocument.Parse(status.Stdout).RootElement.GetProperty("pid").GetInt32();
        using var daemon = Process.GetProcessById(pid);
        daemon.Kill();
        await daemon.WaitForExitAsync();
    }

    private Task<T> WaitForAsync<T>(long id, Func<T, bool>? match = null) where T : AgentEvent => _h.WaitForEventAsync(id, match);

    /// <summary>Waits for a change to <paramref name="status"/> after the event <paramref name="afterSeq"/>.</summary>
    private async Task<StatusChanged> WaitForStatusAsync(long id, OffloadTaskStatus status, long afterSeq = 0) =>
        await WaitForAsync<StatusChanged>(id, s => s.Seq > afterSeq && s.To == status);
}
