using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Offload.Protocol;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;

namespace Offload.Tests.Review;

/// <summary><c>offload reply</c>, <c>retry</c>, <c>checkpoints</c> and <c>rewind</c> through the real CLI and daemon.</summary>
public sealed class FollowUpTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private static string Id(TaskInfo t) => t.Id.ToString(CultureInfo.InvariantCulture);

    /// <summary>A scenario whose reply rule fires only when the whole earlier conversation (two assistant turns) is sent again.</summary>
    private string ReplyScenario(string name) => _h.Scenario(name, new
    {
        name,
        turns = new[] { Tool("Write", new { file_path = "first.txt", content = "first\n" }), Final("Wrote first.txt.") },
        rules = new[]
        {
            new { whenContains = "also fix", afterTurn = 2, turn = Tool("Write", new { file_path = "second.txt", content = "second\n" }, "Doing that too.") },
        },
        finalText = "Both files are there.",
    });

    [Fact]
    public async Task Reply_AfterSucceeded_ContinuesTheConversationInTheSameWorktreeAndBranch()
    {
        var task = await _h.RunTaskAsync(ReplyScenario("reply"), "write the first file");
        var first = await _h.WaitAsync(task.Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, first.Status);
        var firstCommit = _h.Git("rev-parse", task.Branch).Trim();

        var reply = await _h.OffloadAsync("reply", "--json", Id(task), "also fix the second file");

        Assert.True(reply.ExitCode == 0, reply.ToString());
        Assert.Equal(OffloadTaskStatus.Queued, JsonSerializer.Deserialize<TaskInfo>(reply.Stdout, OffloadJson.Options)!.Status);
        var done = await _h.WaitAsync(task.Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.Equal("Both files are there.", done.Summary);
        Assert.Equal(first.Worktree, done.Worktree);
        Assert.Equal(4, done.Turns);
        Assert.Equal(firstCommit, _h.Git("rev-parse", task.Branch + "^").Trim());
        Assert.Equal("first.txt\nsecond.txt\n", _h.Git("ls-tree", "--name-only", task.Branch, "first.txt", "second.txt"));

        var events = await _h.EventsAsync(task.Id);
        var userMessage = events.OfType<UserMessage>().Single();
        Assert.Equal(("also fix the second file", "reply"), (userMessage.Text, userMessage.Source));
        Assert.Equal([1, 2, 3, 4], events.OfType<AssistantMessage>().Select(m => m.Turn));
        Assert.Equal("Doing that too.", events.OfType<AssistantMessage>().Single(m => m.Turn == 3).Text);
    }

    [Fact]
    public async Task Reply_AfterLimited_NeedsARaisedTurnLimit_ThenGoesOn()
    {
        var model = _h.Scenario("limited", Scenario(
            Tool("Write", new { file_path = "a.txt", content = "a\n" }),
            Tool("Write", new { file_path = "b.txt", content = "b\n" }),
            Final("Wrote a and b.")));
        var task = await _h.RunTaskAsync(model, "write a and b", "--max-turns", "1");
        Assert.Equal(OffloadTaskStatus.Limited, (await _h.WaitAsync(task.Id)).Status);

        var refused = await _h.OffloadAsync("reply", Id(task), "go on");
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("--max-turns", refused.Stderr);
        Assert.Equal(OffloadTaskStatus.Limited, (await _h.ShowAsync(task.Id)).Status);

        var reply = await _h.OffloadAsync("reply", Id(task), "--max-turns", "10", "go on");
        Assert.True(reply.ExitCode == 0, reply.ToString());
        var done = await _h.WaitAsync(task.Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.Equal(10, done.MaxTurns);
        Assert.Equal("Wrote a and b.", done.Summary);
        Assert.Null(done.Error);
        Assert.Equal("a.txt\nb.txt\n", _h.Git("ls-tree", "--name-only", task.Branch, "a.txt", "b.txt"));
    }

    [Fact]
    public async Task Reply_WorksAfterFailedAndAfterCancelled()
    {
        var failing = _h.Scenario("failing", new
        {
            name = "failing",
            turns = new object[]
            {
                new { text = "", faults = new[] { new { kind = "status", status = 400, message = "bad request, once" } } },
                Final("Recovered."),
            },
        });
        var failed = await _h.RunTaskAsync(failing, "fail once");
        Assert.Equal(OffloadTaskStatus.Failed, (await _h.WaitAsync(failed.Id)).Status);
        Assert.Equal(0, (await _h.OffloadAsync("reply", Id(failed), "try again")).ExitCode);
        var recovered = await _h.WaitAsync(failed.Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, recovered.Status);

        var slow = _h.Scenario("slow", new
        {
            name = "slow",
            turns = new[] { Tool("Bash", new { command = "sleep 60" }) },
            rules = new[] { new { whenContains = "skip the wait", afterTurn = 0, turn = Final("Skipped it.") } },
        });
        var cancelled = await _h.RunTaskAsync(slow, "wait a minute");
        await EventsAsync(cancelled.Id, e => e is ToolCalled);
        Assert.Equal(0, (await _h.OffloadAsync("cancel", Id(cancelled))).ExitCode);
        Assert.Equal(OffloadTaskStatus.Cancelled, (await _h.ShowAsync(cancelled.Id)).Status);
        Assert.Equal(0, (await _h.OffloadAsync("reply", Id(cancelled), "skip the wait")).ExitCode);
        var afterCancel = await _h.WaitAsync(cancelled.Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, afterCancel.Status);
        Assert.Equal("Skipped it.", afterCancel.Summary);
    }

    [Fact]
    public async Task Reply_ToARunningTask_IsRefused()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("busy", Scenario(Tool("Bash", new { command = "sleep 60" }), Final("done"))), "busy");

        var reply = await _h.OffloadAsync("reply", Id(task), "hurry");

        Assert.Equal(4, reply.ExitCode);
        Assert.Contains("once it has ended", reply.Stderr);
        Assert.DoesNotContain(await _h.EventsAsync(task.Id), e => e is UserMessage);
        await _h.OffloadAsync("cancel", Id(task));
    }

    [Fact]
    public async Task Retry_StartsFreshFromTheBase_KeepsTheFirstAttemptOnARef_AndShowListsBoth()
    {
        var first = _h.Scenario("first", Scenario(Tool("Write", new { file_path = "attempt1.txt", content = "one\n" }), Final("First try.")));
        var second = _h.Scenario("second", Scenario(Tool("Write", new { file_path = "attempt2.txt", content = "two\n" }), Final("Second try.")));
        var task = await _h.RunTaskAsync(first, "try something");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);
        var firstTip = _h.Git("rev-parse", task.Branch).Trim();

        var retry = await _h.OffloadAsync("retry", Id(task), "--model", second);

        Assert.True(retry.ExitCode == 0, retry.ToString());
        var done = await _h.WaitAsync(task.Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.Equal("Second try.", done.Summary);
        Assert.Equal(second, done.Model);
        Assert.Equal(2, done.Turns);
        Assert.Equal("attempt2.txt\n", _h.Git("ls-tree", "--name-only", task.Branch, "attempt1.txt", "attempt2.txt"));
        Assert.Equal(task.BaseCommit, _h.Git("rev-parse", task.Branch + "^").Trim());
        Assert.Equal(firstTip, _h.Git("rev-parse", $"refs/offload/{task.Id}/attempt-1/tip").Trim());
        Assert.Equal("one\n", _h.Git("show", $"refs/offload/{task.Id}/attempt-1/tip:attempt1.txt"));
        Assert.Contains($"refs/offload/{task.Id}/attempt-1/turn-1", _h.Git("for-each-ref", "--format=%(refname)", $"refs/offload/{task.Id}/"));

        // the second attempt's conversation started again from the prompt: its first turn is turn 1
        var events = await _h.EventsAsync(task.Id);
        var boundary = events.OfType<AttemptStarted>().Single();
        Assert.Equal(2, boundary.Number);
        Assert.Equal([1, 2], events.Where(e => e.Seq > boundary.Seq).OfType<AssistantMessage>().Select(m => m.Turn));

        var show = JsonNode.Parse((await _h.OffloadAsync("show", "--json", Id(task))).Stdout)!;
        var attempts = show["attempts"]!.Deserialize<List<AttemptInfo>>(OffloadJson.Options)!;
        Assert.Equal([1, 2], attempts.Select(a => a.Number));
        Assert.Equal([first, second], attempts.Select(a => a.Model));
        Assert.All(attempts, a => Assert.Equal(OffloadTaskStatus.Succeeded, a.Status));
        Assert.Equal($"refs/offload/{task.Id}/attempt-1/tip", attempts[0].SavedRef);
        var text = await _h.OffloadAsync("show", Id(task));
        Assert.Contains("attempts (2)", text.Stdout);
        Assert.Contains($"kept on refs/offload/{task.Id}/attempt-1/tip", text.Stdout);
    }

    [Fact]
    public async Task Retry_AfterDiscard_StartsAgainWithANewBranch()
    {
        var model = _h.Scenario("again", Scenario(Tool("Write", new { file_path = "x.txt", content = "x\n" }), Final("Wrote x.")));
        var task = await _h.RunTaskAsync(model, "write x");
        await _h.WaitAsync(task.Id);
        Assert.Equal(0, (await _h.OffloadAsync("discard", "--yes", Id(task))).ExitCode);

        Assert.Equal(0, (await _h.OffloadAsync("retry", Id(task))).ExitCode);
        var done = await _h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.False(done.Discarded);
        Assert.Equal("x\n", _h.Git("show", $"{task.Branch}:x.txt"));
    }

    [Fact]
    public async Task Checkpoints_AfterEachTurnThatChangedFiles_RewindPutsWorktreeAndConversationBack()
    {
        var model = _h.Scenario("steps", Scenario(
            Tool("Write", new { file_path = "a.txt", content = "a1\n" }),
            Tool("Read", new { file_path = "a.txt" }),
            Tool("Write", new { file_path = "b.txt", content = "b\n" }),
            Tool("Edit", new { file_path = "a.txt", old_string = "a1", new_string = "a2" }),
            Final("Done in four steps.")));
        var task = await _h.RunTaskAsync(model, "four steps");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);

        var list = await _h.OffloadAsync("checkpoints", "--json", Id(task));
        var checkpoints = JsonSerializer.Deserialize<List<CheckpointInfo>>(list.Stdout, OffloadJson.Options)!;
        Assert.Equal([(1, 1), (3, 1), (4, 1)], checkpoints.Select(c => (c.Turn, c.FilesChanged)));
        Assert.Equal($"refs/offload/{task.Id}/turn-3", checkpoints[1].Ref);
        Assert.Equal(checkpoints[1].Commit, _h.Git("rev-parse", checkpoints[1].Ref).Trim());
        Assert.Equal([1, 3, 4], (await _h.EventsAsync(task.Id)).OfType<CheckpointSaved>().Select(c => c.Turn));
        Assert.Contains("   3  ", (await _h.OffloadAsync("checkpoints", Id(task))).Stdout);

        var noSuch = await _h.OffloadAsync("rewind", Id(task), "--to", "2");
        Assert.Equal(2, noSuch.ExitCode);
        Assert.Contains("its checkpoints are turns 1, 3, 4", noSuch.Stderr);

        var userRepo = RepoState.Of(_h);
        var rewind = await _h.OffloadAsync("rewind", Id(task), "--to", "1");
        Assert.True(rewind.ExitCode == 0, rewind.ToString());
        Assert.Equal("a1\n", File.ReadAllText(Path.Combine(task.Worktree, "a.txt")));
        Assert.False(File.Exists(Path.Combine(task.Worktree, "b.txt")));
        Assert.Equal("a.txt\n", _h.Git("ls-tree", "--name-only", task.Branch, "a.txt", "b.txt"));
        Assert.Equal("", Git(task.Worktree, "status", "--porcelain"));
        userRepo.AssertSame(RepoState.Of(_h));
        Assert.Equal([1], JsonSerializer.Deserialize<List<CheckpointInfo>>(
            (await _h.OffloadAsync("checkpoints", "--json", Id(task))).Stdout, OffloadJson.Options)!.Select(c => c.Turn));

        // the conversation holds one assistant turn now, so the scenario goes on at its second turn (Read)
        Assert.Equal(0, (await _h.OffloadAsync("reply", Id(task), "go on from there")).ExitCode);
        var done = await _h.WaitAsync(task.Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        var events = await _h.EventsAsync(task.Id);
        var rewound = events.OfType<TaskRewound>().Single();
        Assert.Equal(1, rewound.Turn);
        var after = events.Where(e => e.Seq > rewound.Seq).OfType<ToolCalled>().Select(c => c.Name);
        Assert.Equal(["Read", "Write", "Edit"], after);
        Assert.Equal(4 + 3, events.Count(e => e is ToolCalled)); // the journal keeps the rewound turns on record
        Assert.Equal("a2\n", File.ReadAllText(Path.Combine(task.Worktree, "a.txt")));
    }

    private static string Git(string dir, params string[] args)
    {
        var info = new System.Diagnostics.ProcessStartInfo("git") { WorkingDirectory = dir, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var p = System.Diagnostics.Process.Start(info)!;
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return output;
    }

    private async Task EventsAsync(long id, Func<AgentEvent, bool> match)
    {
        using var follower = _h.Start("logs", "-f", "--json", id.ToString(CultureInfo.InvariantCulture));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (await follower.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            if (match(JsonSerializer.Deserialize<AgentEvent>(line, OffloadJson.Options)!))
            {
                follower.Kill();
                return;
            }
        }

        throw new TimeoutException("the event never came");
    }
}
