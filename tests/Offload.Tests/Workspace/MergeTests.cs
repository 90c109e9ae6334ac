using Offload.Workspace;

namespace Offload.Tests.Workspace;

public class MergeTests
{
    private readonly GitWorkspace _workspace = new();

    /// <summary>A repository with a finished task: the task changed a.txt and added new.txt.</summary>
    private static async Task<(TempRepo Repo, WorktreeInfo Task)> FinishedTaskAsync()
    {
        var workspace = new GitWorkspace();
        var repo = await TempRepo.CreateAsync();
        repo.Write("a.txt", "line 1\nline 2\nline 3\n");
        repo.Write("b.txt", "b\n");
        var head = await repo.CommitAsync("base");
        var task = await workspace.CreateWorktreeAsync(repo.Root, repo.WorktreesDir, 1, "t", head);
        TempRepo.WriteIn(task.Path, "a.txt", "line 1 by task\nline 2\nline 3\n");
        TempRepo.WriteIn(task.Path, "new.txt", "new\n");
        await workspace.CommitAllAsync(repo.Root, task.Path, task.Branch, "task work 1");
        TempRepo.WriteIn(task.Path, "new.txt", "new, revised\n");
        await workspace.CommitAllAsync(repo.Root, task.Path, task.Branch, "task work 2");
        return (repo, task);
    }

    [Fact]
    public async Task Merge_Squash_MakesOneCommitOnCurrentBranch_KeepingUnrelatedUncommittedChanges()
    {
        var (repo, task) = await FinishedTaskAsync();
        using var _ = repo;
        var before = await repo.GitAsync("rev-parse", "HEAD");
        repo.Write("b.txt", "user is editing b\n");
        repo.Write("scratch.txt", "untracked user file\n");

        var commit = await _workspace.MergeAsync(repo.Root, task.Branch, task.BaseCommit, squash: true, "Task 1: do the thing");

        Assert.Equal(commit, await repo.GitAsync("rev-parse", "main"));
        Assert.Equal(before, await repo.GitAsync("rev-parse", "HEAD^"));
        Assert.Equal("Task 1: do the thing", await repo.GitAsync("show", "-s", "--format=%s%n%b", "HEAD"));
        Assert.Equal("M\ta.txt\nA\tnew.txt", await repo.GitAsync("diff-tree", "--no-commit-id", "--name-status", "-r", "HEAD"));
        Assert.Equal(" M b.txt\n?? scratch.txt", await repo.GitAsync("status", "--porcelain"));
        Assert.Equal("line 1 by task\nline 2\nline 3\n", repo.Read("a.txt"));
        Assert.Equal("new, revised\n", repo.Read("new.txt"));
        Assert.Equal("user is editing b\n", repo.Read("b.txt"));
        Assert.True(await _workspace.IsMergedAsync(repo.Root, task.Branch) is false);
    }

    [Fact]
    public async Task Merge_NoSquash_MakesMergeCommitWithTaskBranchAsSecondParent_EvenAfterMainMovedOn()
    {
        var (repo, task) = await FinishedTaskAsync();
        using var _ = repo;
        repo.Write("a.txt", "line 1\nline 2\nline 3 by user\n");
        var before = await repo.CommitAsync("user work");

        var commit = await _workspace.MergeAsync(repo.Root, task.Branch, task.BaseCommit, squash: false, "Merge task 1");

        var tip = await repo.GitAsync("rev-parse", task.Branch);
        Assert.Equal($"{commit} {before} {tip}", await repo.GitAsync("rev-list", "--parents", "-n", "1", "HEAD"));
        Assert.Equal("line 1 by task\nline 2\nline 3 by user\n", repo.Read("a.txt"));
        Assert.Equal("", await repo.GitAsync("status", "--porcelain"));
        Assert.True(await _workspace.IsMergedAsync(repo.Root, task.Branch));
        Assert.Contains("offload: merge offload/1-t", await repo.GitAsync("reflog", "-n", "1", "main"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Merge_NothingToMerge_ReturnsNullAndChangesNothing()
    {
        using var repo = await TempRepo.CreateAsync();
        var head = await repo.GitAsync("rev-parse", "HEAD");
        var task = await _workspace.CreateWorktreeAsync(repo.Root, repo.WorktreesDir, 2, "t", head);
        var before = await repo.StateAsync();

        Assert.Null(await _workspace.MergeAsync(repo.Root, task.Branch, head, squash: true, "nothing"));
        Assert.Empty(await _workspace.ApplyAsync(repo.Root, head, task.Branch));
        Assert.Equal(before, await repo.StateAsync());
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public async Task MergeOrApply_UncommittedChangesInTaskFiles_RefusesWithDirtyTreeAndChangesNothing(bool merge, bool staged)
    {
        var (repo, task) = await FinishedTaskAsync();
        using var _ = repo;
        repo.Write("a.txt", "user edit\n");
        repo.Write("new.txt", "user's own new file\n");
        if (staged)
        {
            await repo.GitAsync("add", "a.txt");
        }

        var before = await repo.StateAsync();

        var error = await Assert.ThrowsAsync<WorkspaceException>(() => merge
            ? _workspace.MergeAsync(repo.Root, task.Branch, task.BaseCommit, squash: true, "m")
            : _workspace.ApplyAsync(repo.Root, task.BaseCommit, task.Branch));

        Assert.Equal("dirty_tree", error.Code);
        Assert.Equal(["a.txt", "new.txt"], error.Files);
        Assert.Contains("a.txt, new.txt", error.Message, StringComparison.Ordinal);
        Assert.Contains("git stash -u", error.Message, StringComparison.Ordinal);
        Assert.Equal(before, await repo.StateAsync());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task MergeOrApply_ConflictWithCurrentHead_RefusesWithConflictAndChangesNothing(bool merge)
    {
        var (repo, task) = await FinishedTaskAsync();
        using var _ = repo;
        repo.Write("a.txt", "line 1 by user\nline 2\nline 3\n");
        await repo.CommitAsync("user changed the same line");
        repo.Write("b.txt", "unrelated uncommitted edit\n");
        var before = await repo.StateAsync();

        var error = await Assert.ThrowsAsync<WorkspaceException>(() => merge
            ? _workspace.MergeAsync(repo.Root, task.Branch, task.BaseCommit, squash: false, "m")
            : _workspace.ApplyAsync(repo.Root, task.BaseCommit, task.Branch));

        Assert.Equal("conflict", error.Code);
        Assert.Equal(["a.txt"], error.Files);
        Assert.Contains("a.txt", error.Message, StringComparison.Ordinal);
        Assert.Equal(before, await repo.StateAsync());
    }

    [Fact]
    public async Task Merge_DetachedHead_RefusesWithDetachedHeadAndChangesNothing()
    {
        var (repo, task) = await FinishedTaskAsync();
        using var _ = repo;
        await repo.GitAsync("checkout", "--quiet", "--detach");
        var before = await repo.StateAsync();

        var error = await Assert.ThrowsAsync<WorkspaceException>(
            () => _workspace.MergeAsync(repo.Root, task.Branch, task.BaseCommit, squash: true, "m"));

        Assert.Equal("detached_head", error.Code);
        Assert.Contains("git switch", error.Message, StringComparison.Ordinal);
        Assert.Equal(before, await repo.StateAsync());
    }

    [Fact]
    public async Task Apply_PutsChangesInWorkingTreeUncommitted_LeavingHeadAndIndexAlone()
    {
        var (repo, task) = await FinishedTaskAsync();
        using var _ = repo;
        repo.Write("b.txt", "staged user edit\n");
        await repo.GitAsync("add", "b.txt");
        var before = await repo.StateAsync();

        var written = await _workspace.ApplyAsync(repo.Root, task.BaseCommit, task.Branch);

        var after = await repo.StateAsync();
        Assert.Equal(["a.txt", "new.txt"], written);
        Assert.Equal(before.Head, after.Head);
        Assert.Equal(before.Index, after.Index);
        Assert.Equal(" M a.txt\nM  b.txt\n?? new.txt", after.Status);
        Assert.Equal("line 1 by task\nline 2\nline 3\n", repo.Read("a.txt"));
        Assert.Equal("new, revised\n", repo.Read("new.txt"));
        Assert.Equal("staged user edit\n", repo.Read("b.txt"));
    }

    [Fact]
    public async Task Apply_DeletionInTask_DeletesFileUncommitted_AndWorksOnDetachedHead()
    {
        using var repo = await TempRepo.CreateAsync();
        repo.Write("doomed.txt", "x\n");
        var head = await repo.CommitAsync("base");
        var task = await _workspace.CreateWorktreeAsync(repo.Root, repo.WorktreesDir, 3, "t", head);
        File.Delete(Path.Combine(task.Path, "doomed.txt"));
        await _workspace.CommitAllAsync(repo.Root, task.Path, task.Branch, "delete");
        await repo.GitAsync("checkout", "--quiet", "--detach");

        var written = await _workspace.ApplyAsync(repo.Root, head, task.Branch);

        Assert.Equal(["doomed.txt"], written);
        Assert.False(File.Exists(Path.Combine(repo.Root, "doomed.txt")));
        Assert.Equal(" D doomed.txt", await repo.GitAsync("status", "--porcelain"));
    }
}
