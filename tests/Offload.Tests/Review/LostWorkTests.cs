using System.Globalization;
using System.Text.Json;
using Offload.Protocol;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;
using static Offload.Tests.Resilience.ResilienceKit;

namespace Offload.Tests.Review;

/// <summary>
/// The worktree is sometimes the only copy of a task's work (a commit that failed, hand edits there, turns since the
/// last commit): Offload never forgets it without a word. Through the real daemon, git and bubblewrap; the harness
/// lives in /var/tmp because a sandboxed command sees a private /tmp.
/// </summary>
public sealed class LostWorkTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new("/var/tmp");

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private static string Id(TaskInfo t) => t.Id.ToString(CultureInfo.InvariantCulture);

    private async Task<TaskInfo> FinishedTaskAsync(params object[] turns)
    {
        var task = await _h.RunTaskAsync(_h.Scenario("task" + Random.Shared.Next(), Scenario(turns)), "change the greeting");
        var done = await _h.WaitAsync(task.Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        return done;
    }

    private async Task<TaskInfo> ReplyAsync(TaskInfo task, string text)
    {
        var reply = await _h.OffloadAsync("reply", Id(task), text);
        Assert.True(reply.ExitCode == 0, reply.ToString());
        return await _h.WaitAsync(task.Id);
    }

    private string IndexLock(TaskInfo task) =>
        _h.Git("-C", task.Worktree, "rev-parse", "--path-format=absolute", "--git-path", "index.lock").Trim();

    private string? FileOnBranch(TaskInfo task, string path)
    {
        var files = _h.Git("ls-tree", "-r", "--name-only", task.Branch).Split('\n');
        return files.Contains(path) ? _h.Git("show", $"{task.Branch}:{path}") : null;
    }

    [Fact]
    public async Task AFinalCommitThatFails_EndsFailed_SaysWhereTheWorkIs_MergeRefuses_AndAReplyCommitsItOnceTheLockIsGone()
    {
        var task = await FinishedTaskAsync(
            Final("Nothing to change yet."),
            Tool("Write", new { file_path = "notes.txt", content = "the reply's work\n" }),
            Final("Wrote notes.txt."),
            Final("It is all committed now."));
        File.WriteAllText(IndexLock(task), ""); // a git that crashed left it

        var failed = await ReplyAsync(task, "write notes.txt");

        Assert.Equal(OffloadTaskStatus.Failed, failed.Status);
        Assert.Contains("committing the worktree failed", failed.Error);
        Assert.Contains($"still in the worktree {task.Worktree}", failed.Error);
        Assert.Contains($"offload reply {task.Id}", failed.Error);
        Assert.Null(FileOnBranch(task, "notes.txt"));
        Assert.Equal(OffloadTaskStatus.Failed, (await _h.EventsAsync(task.Id)).OfType<TaskFinished>().Last().Status);

        var before = RepoState.Of(_h);
        var merge = await _h.OffloadAsync("merge", Id(task));
        var apply = await _h.OffloadAsync("apply", Id(task));
        Assert.Equal(11, merge.ExitCode);
        Assert.Contains($"the worktree of task {task.Id} has changes not on its branch {task.Branch}: notes.txt", merge.Stderr);
        Assert.Equal(11, apply.ExitCode);
        Assert.Contains("notes.txt", apply.Stderr);
        before.AssertSame(RepoState.Of(_h));
        Assert.DoesNotContain(await _h.EventsAsync(task.Id), e => e is TaskMerged);

        // The way out the reason gives: the lock goes, a reply's run commits the worktree.
        File.Delete(IndexLock(task));
        var recovered = await ReplyAsync(task, "commit your work");
        Assert.Equal(OffloadTaskStatus.Succeeded, recovered.Status);
        Assert.Equal("the reply's work\n", FileOnBranch(task, "notes.txt"));
        merge = await _h.OffloadAsync("merge", Id(task));
        Assert.True(merge.ExitCode == 0, merge.ToString());
        Assert.Equal("the reply's work\n", File.ReadAllText(Path.Combine(_h.Repo, "notes.txt")));
    }

    [Fact]
    public async Task MergeNoSquashAndApply_RefuseWhileTheWorktreeHoldsHandEdits_ChangingNothing_AndTakeThemOnceCommitted()
    {
        var task = await FinishedTaskAsync(
            Tool("Read", new { file_path = "app.py" }), // Edit needs a Read first, as in Claude Code
            Tool("Edit", new { file_path = "app.py", old_string = "hello", new_string = "hello, world" }),
            Final("Changed the greeting."));
        File.WriteAllText(Path.Combine(task.Worktree, "README.md"), "# sample, edited by hand in the worktree\n");
        File.WriteAllText(Path.Combine(task.Worktree, "extra.txt"), "a new file made by hand\n");
        var before = RepoState.Of(_h);

        var merges = new[]
        {
            await _h.OffloadAsync("merge", Id(task)),
            await _h.OffloadAsync("merge", "--no-squash", Id(task)),
            await _h.OffloadAsync("apply", Id(task)),
        };

        foreach (var refused in merges)
        {
            Assert.True(refused.ExitCode == 11, refused.ToString());
            Assert.Contains($"has changes not on its branch {task.Branch}: README.md, extra.txt", refused.Stderr);
            Assert.Contains($"git -C {task.Worktree} add -A", refused.Stderr);
        }

        before.AssertSame(RepoState.Of(_h));
        Assert.DoesNotContain(await _h.EventsAsync(task.Id), e => e is TaskMerged);

        _h.Git("-C", task.Worktree, "add", "-A");
        _h.Git("-C", task.Worktree, "commit", "-q", "-m", "my edits");
        var merge = await _h.OffloadAsync("merge", "--no-squash", Id(task));
        Assert.True(merge.ExitCode == 0, merge.ToString());
        Assert.Equal("a new file made by hand\n", File.ReadAllText(Path.Combine(_h.Repo, "extra.txt")));
        Assert.Equal("print('hello, world')\n", File.ReadAllText(Path.Combine(_h.Repo, "app.py")));
    }

    /// <summary>Runs a task until its Bash call (in turn <paramref name="bashTurn"/>) is on record, then kills the daemon and deletes the worktree.</summary>
    private async Task<TaskInfo> KillDaemonAndDeleteWorktreeAsync(object[] turns, int bashTurn)
    {
        var task = await _h.RunTaskAsync(_h.Scenario("down", Scenario(turns)), "work while the daemon goes down");
        var pid = await _h.DaemonPidAsync();
        Assert.NotNull(await _h.NextEventAsync([task.Id], e => e is ToolCalled { Name: "Bash" } call && call.Turn == bashTurn, TimeSpan.FromSeconds(60), includePast: true));
        await KillNineAsync(pid);
        Directory.Delete(task.Worktree, recursive: true);
        return task;
    }

    [Fact]
    public async Task AWorktreeDeletedWhileTheDaemonWasDown_ComesBackFromTheLastCheckpoint_AndTheJournalAndReportSaySo()
    {
        var task = await KillDaemonAndDeleteWorktreeAsync(
            [
                new
                {
                    text = "",
                    toolCalls = new object[]
                    {
                        new { name = "Write", input = new { file_path = "first.txt", content = "turn one's work\n" } },
                        new { name = "Read", input = new { file_path = "app.py" } }, // Edit needs a Read first, as in Claude Code
                    },
                },
                Tool("Edit", new { file_path = "app.py", old_string = "hello", new_string = "hello again" }),
                Tool("Bash", new { command = UniqueSleep() }),
                Final("Done, after the restart."),
            ],
            bashTurn: 3);

        var done = await _h.WaitAsync(task.Id); // starts the daemon again

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.Equal("turn one's work\n", FileOnBranch(task, "first.txt"));
        Assert.Equal("print('hello again')\n", FileOnBranch(task, "app.py"));
        var events = await _h.EventsAsync(task.Id);
        var restored = Assert.Single(events.OfType<WorktreeRestored>());
        Assert.Equal(2, restored.Turn);
        Assert.Equal(events.OfType<CheckpointSaved>().Single(c => c.Turn == 2).Commit, restored.Checkpoint);
        var logs = await _h.OffloadAsync("logs", Id(task));
        Assert.Contains("worktree was gone; made again from its branch at", logs.Stdout);
        Assert.Contains("and the checkpoint of turn 2", logs.Stdout);
        var show = await _h.OffloadAsync("show", Id(task));
        Assert.Contains("and the checkpoint of turn 2", show.Stdout);
    }

    [Fact]
    public async Task AWorktreeDeletedWhileTheDaemonWasDown_WithoutACheckpoint_ComesBackFromTheBranch_AndTheJournalSaysWhatWasLost()
    {
        var task = await KillDaemonAndDeleteWorktreeAsync(
            [
                Tool("Bash", new { command = "echo unsaved > unsaved.txt && " + UniqueSleep() }),
                Final("Done, after the restart."),
            ],
            bashTurn: 1);

        var done = await _h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        var restored = Assert.Single((await _h.EventsAsync(task.Id)).OfType<WorktreeRestored>());
        Assert.Null(restored.Turn);
        Assert.Null(restored.Checkpoint);
        Assert.Equal(task.BaseCommit, restored.BranchCommit);
        var show = await _h.OffloadAsync("show", "--json", Id(task));
        using var json = JsonDocument.Parse(show.Stdout);
        Assert.Equal(task.BaseCommit, json.RootElement.GetProperty("restores")[0].GetProperty("branchCommit").GetString());
        var logs = await _h.OffloadAsync("logs", Id(task));
        Assert.Contains("changes not yet checkpointed were lost with the folder", logs.Stdout);
    }

    [Fact]
    public async Task Gc_UnregistersATaskWorktreeDeletedByHand_SoItsBranchCanBeDeleted_AndLeavesYourOwnWorktreesAlone()
    {
        var task = await FinishedTaskAsync(Tool("Write", new { file_path = "a.txt", content = "a\n" }), Final("Wrote a.txt."));
        var mine = Path.Combine(_h.Root, "my-worktree");
        _h.Git("worktree", "add", "-q", "-b", "mine", mine);
        Directory.Delete(mine, recursive: true);
        Directory.Delete(task.Worktree, recursive: true);

        var gc = await _h.OffloadAsync("gc");

        Assert.True(gc.ExitCode == 0, gc.ToString());
        Assert.Contains($"task {task.Id}", gc.Stdout);
        Assert.Contains("deleted by hand; unregistered from git", gc.Stdout);
        var registered = _h.Git("worktree", "list", "--porcelain");
        Assert.DoesNotContain(task.Worktree, registered);
        Assert.Contains(mine, registered); // the user's own: git's to prune, when the user asks it
        _h.Git("branch", "-D", task.Branch);
    }

    [Fact]
    public async Task Discard_OfATaskWhoseWorktreeWasDeletedByHand_RemovesBranchAndRegistration()
    {
        var task = await FinishedTaskAsync(Tool("Write", new { file_path = "a.txt", content = "a\n" }), Final("Wrote a.txt."));
        Directory.Delete(task.Worktree, recursive: true);

        var discard = await _h.OffloadAsync("discard", "--yes", Id(task));

        Assert.True(discard.ExitCode == 0, discard.ToString());
        Assert.Equal("", _h.Git("branch", "--list", task.Branch).Trim());
        Assert.DoesNotContain(task.Worktree, _h.Git("worktree", "list", "--porcelain"));
    }

    [Fact]
    public async Task Retry_OfATaskWhoseWorktreeWasDeletedByHand_KeepsTheAttemptAndStartsAgainFromTheBase()
    {
        var task = await FinishedTaskAsync(Tool("Write", new { file_path = "a.txt", content = "a\n" }), Final("Wrote a.txt."));
        var tip = _h.Git("rev-parse", task.Branch).Trim();
        Directory.Delete(task.Worktree, recursive: true);

        var retry = await _h.OffloadAsync("retry", Id(task));

        Assert.True(retry.ExitCode == 0, retry.ToString());
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);
        Assert.Equal(tip, _h.Git("rev-parse", $"refs/offload/{task.Id}/attempt-1/tip").Trim());
        Assert.Equal("a\n", FileOnBranch(task, "a.txt"));
        // Started again from the base: the new work's parent is the base, not a checkpoint of the lost worktree.
        // (Its hash may equal the first attempt's: same tree, parent, message and second.)
        Assert.Equal(task.BaseCommit, _h.Git("rev-parse", $"{task.Branch}^").Trim());
    }

    [Fact]
    public async Task Reply_ToATaskWhoseBranchIsCheckedOutInYourCheckout_Exits4_SaysWhatToDo_AndChangesNothing()
    {
        var task = await FinishedTaskAsync(
            Tool("Write", new { file_path = "a.txt", content = "a\n" }),
            Final("Wrote a.txt."),
            Final("Nothing more."));
        Assert.Equal(0, (await _h.OffloadAsync("merge", Id(task))).ExitCode);
        Assert.Equal(0, (await _h.OffloadAsync("gc")).ExitCode);
        Assert.False(Directory.Exists(task.Worktree));
        _h.Git("switch", "-q", task.Branch);
        var eventsBefore = (await _h.EventsAsync(task.Id)).Count;

        var reply = await _h.OffloadAsync("reply", Id(task), "one more thing");

        Assert.True(reply.ExitCode == 4, reply.ToString());
        Assert.Contains($"branch {task.Branch} of task {task.Id} is checked out in {_h.Repo}", reply.Stderr);
        Assert.Contains("switch that checkout to another branch", reply.Stderr);
        Assert.Equal(eventsBefore, (await _h.EventsAsync(task.Id)).Count);
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.ShowAsync(task.Id)).Status);
        Assert.False(Directory.Exists(task.Worktree));

        _h.Git("switch", "-q", "main");
        var tip = _h.Git("rev-parse", task.Branch).Trim();
        var done = await ReplyAsync(task, "one more thing");
        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        // Made again from the branch, which has the turn's work: not from the older checkpoint of that turn.
        var restored = Assert.Single((await _h.EventsAsync(task.Id)).OfType<WorktreeRestored>());
        Assert.Equal((tip, (int?)null, (string?)null), (restored.BranchCommit, restored.Turn, restored.Checkpoint));
        Assert.Equal(tip, _h.Git("rev-parse", task.Branch).Trim());
        Assert.Equal("", _h.Git("-C", task.Worktree, "status", "--porcelain", "--untracked-files=all"));
    }
}
