using System.Globalization;
using System.Text.Json;
using Offload.Protocol;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;

namespace Offload.Tests.Review;

/// <summary><c>offload merge</c> and <c>offload apply</c> against a real repository, and every refusal leaving it untouched.</summary>
public sealed class MergeApplyTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private async Task<TaskInfo> FinishedTaskAsync(string name = "greet")
    {
        var model = _h.Scenario(name, Scenario(
            Tool("Read", new { file_path = "app.py" }), // Edit needs a Read first, as in Claude Code
            Tool("Edit", new { file_path = "app.py", old_string = "hello", new_string = "hello, world" }),
            Tool("Write", new { file_path = "docs/notes.md", content = "# notes\nline two\n" }),
            Final("Changed the greeting and added notes.")));
        var task = await _h.RunTaskAsync(model, "change the greeting");
        var done = await _h.WaitAsync(task.Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        return done;
    }

    private static string Id(TaskInfo t) => t.Id.ToString(CultureInfo.InvariantCulture);

    [Fact]
    public async Task Merge_SquashesTheBranchIntoTheCurrentBranch_WithTheTitleAndSummaryAsMessage()
    {
        var task = await FinishedTaskAsync();
        var head = _h.Git("rev-parse", "HEAD").Trim();
        File.WriteAllText(Path.Combine(_h.Repo, "mine.txt"), "my own uncommitted file\n");

        var merge = await _h.OffloadAsync("merge", "--json", Id(task));

        Assert.True(merge.ExitCode == 0, merge.ToString());
        var response = JsonSerializer.Deserialize<MergeResponse>(merge.Stdout, OffloadJson.Options)!;
        Assert.Equal("squash", response.Mode);
        Assert.Equal("main", response.Into);
        Assert.Equal(["app.py", "docs/notes.md"], response.Files.Order());
        Assert.Equal(response.Commit, _h.Git("rev-parse", "HEAD").Trim());
        Assert.Equal(head, _h.Git("rev-parse", "HEAD^").Trim());
        Assert.Equal("", _h.Git("rev-list", "--parents", "-n1", "HEAD").Trim().Split(' ').Skip(2).FirstOrDefault() ?? "");
        var message = _h.Git("log", "-1", "--format=%B");
        Assert.StartsWith("change the greeting\n\nChanged the greeting and added notes.", message);
        Assert.Equal("print('hello, world')\n", File.ReadAllText(Path.Combine(_h.Repo, "app.py")));
        Assert.Equal("# notes\nline two\n", File.ReadAllText(Path.Combine(_h.Repo, "docs", "notes.md")));
        Assert.Equal("?? mine.txt\n", _h.Git("status", "--porcelain"));
        Assert.Contains(await _h.EventsAsync(task.Id), e => e is TaskMerged { Mode: "squash", Into: "main" });
    }

    [Fact]
    public async Task Merge_NoSquash_MakesAMergeCommitWithBothParents()
    {
        var task = await FinishedTaskAsync();
        var head = _h.Git("rev-parse", "HEAD").Trim();
        var tip = _h.Git("rev-parse", task.Branch).Trim();

        var merge = await _h.OffloadAsync("merge", "--no-squash", Id(task));

        Assert.True(merge.ExitCode == 0, merge.ToString());
        Assert.Contains($"merged task {task.Id} into main as", merge.Stdout);
        Assert.Equal($"{_h.Git("rev-parse", "HEAD").Trim()} {head} {tip}", _h.Git("rev-list", "--parents", "-n1", "HEAD").Trim());
        Assert.StartsWith($"Merge offload task {task.Id}: change the greeting", _h.Git("log", "-1", "--format=%B"));
        Assert.Equal("", _h.Git("status", "--porcelain"));
    }

    [Fact]
    public async Task Merge_RefusesWhenYourUncommittedChangesTouchTheTaskFiles_AndChangesNothing()
    {
        var task = await FinishedTaskAsync();
        File.WriteAllText(Path.Combine(_h.Repo, "app.py"), "print('my local edit')\n");
        var before = RepoState.Of(_h);

        var merge = await _h.OffloadAsync("merge", Id(task));
        var apply = await _h.OffloadAsync("apply", Id(task));

        Assert.Equal(11, merge.ExitCode);
        Assert.Contains("uncommitted changes in files the task also changed: app.py", merge.Stderr);
        Assert.Contains("git stash -u", merge.Stderr);
        Assert.Equal(11, apply.ExitCode);
        Assert.Contains("app.py", apply.Stderr);
        before.AssertSame(RepoState.Of(_h));
        Assert.DoesNotContain(await _h.EventsAsync(task.Id), e => e is TaskMerged);
    }

    [Fact]
    public async Task Merge_RefusesWhenTheMergeConflicts_NamesTheFiles_AndChangesNothing()
    {
        var task = await FinishedTaskAsync();
        File.WriteAllText(Path.Combine(_h.Repo, "app.py"), "print('goodbye')\n");
        _h.Git("commit", "-q", "-am", "my own change to the greeting");
        var before = RepoState.Of(_h);

        var merge = await _h.OffloadAsync("merge", Id(task));
        var apply = await _h.OffloadAsync("apply", Id(task));

        Assert.Equal(11, merge.ExitCode);
        Assert.Contains("conflicts with your current HEAD in: app.py", merge.Stderr);
        Assert.Contains($"offload reply {task.Id}", merge.Stderr);
        Assert.Equal(11, apply.ExitCode);
        before.AssertSame(RepoState.Of(_h));
    }

    [Fact]
    public async Task Merge_RefusesOnADetachedHead_AndApplyStillWorks()
    {
        var task = await FinishedTaskAsync();
        _h.Git("checkout", "-q", "--detach");
        var before = RepoState.Of(_h);

        var merge = await _h.OffloadAsync("merge", Id(task));

        Assert.Equal(11, merge.ExitCode);
        Assert.Contains("HEAD is detached", merge.Stderr);
        before.AssertSame(RepoState.Of(_h));

        var apply = await _h.OffloadAsync("apply", Id(task));
        Assert.True(apply.ExitCode == 0, apply.ToString());
        Assert.Equal(before.Head, _h.Git("rev-parse", "HEAD").Trim());
        Assert.Equal(" M app.py\n?? docs/notes.md\n", _h.Git("status", "--porcelain", "--untracked-files=all"));
    }

    [Fact]
    public async Task Apply_PutsTheChangesInTheWorkingTreeUncommitted_KeepingOtherLocalChanges()
    {
        var task = await FinishedTaskAsync();
        var head = _h.Git("rev-parse", "HEAD").Trim();
        File.WriteAllText(Path.Combine(_h.Repo, "README.md"), "# sample, edited locally\n");

        var apply = await _h.OffloadAsync("apply", "--json", Id(task));

        Assert.True(apply.ExitCode == 0, apply.ToString());
        var response = JsonSerializer.Deserialize<MergeResponse>(apply.Stdout, OffloadJson.Options)!;
        Assert.Equal(["app.py", "docs/notes.md"], response.Files.Order());
        Assert.Equal(head, _h.Git("rev-parse", "HEAD").Trim());
        Assert.Equal(" M README.md\n M app.py\n?? docs/notes.md\n", _h.Git("status", "--porcelain", "--untracked-files=all"));
        Assert.Equal("", _h.Git("diff", "--cached"));
        Assert.Equal("# sample, edited locally\n", File.ReadAllText(Path.Combine(_h.Repo, "README.md")));
        Assert.Equal("print('hello, world')\n", File.ReadAllText(Path.Combine(_h.Repo, "app.py")));
    }

    [Fact]
    public async Task Merge_OfARunningTask_IsRefusedWithTheStateCode_AndChangesNothing()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("slow", Scenario(Tool("Bash", new { command = "sleep 30" }), Final("done"))), "slow one");
        var before = RepoState.Of(_h);

        var merge = await _h.OffloadAsync("merge", Id(task));

        Assert.Equal(4, merge.ExitCode);
        Assert.Contains("once it has ended", merge.Stderr);
        Assert.Contains($"offload wait {task.Id}", merge.Stderr);
        before.AssertSame(RepoState.Of(_h));
        await _h.OffloadAsync("cancel", Id(task));
    }
}
