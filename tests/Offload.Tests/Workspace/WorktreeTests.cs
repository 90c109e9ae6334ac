using Offload.Protocol;
using Offload.Workspace;

namespace Offload.Tests.Workspace;

public class WorktreeTests
{
    private readonly GitWorkspace _workspace = new();

    [Fact]
    public async Task CreateWorktree_MakesBranchAndWorktreeAtBaseWithoutTouchingUserTree()
    {
        using var repo = await TempRepo.CreateAsync();
        var head = await repo.GitAsync("rev-parse", "HEAD");
        repo.Write("README.md", "user edit in progress\n");
        var before = await repo.StateAsync();

        var worktree = await _workspace.CreateWorktreeAsync(repo.Root, repo.WorktreesDir, 7, "fix-auth", head);

        Assert.Equal(new WorktreeInfo(Path.Combine(repo.WorktreesDir, "7-fix-auth"), "offload/7-fix-auth", head, []), worktree with { CopiedFiles = [] });
        Assert.Empty(worktree.CopiedFiles);
        Assert.Equal(head, await TempRepo.GitInAsync(worktree.Path, "rev-parse", "HEAD"));
        Assert.Equal("offload/7-fix-auth", await TempRepo.GitInAsync(worktree.Path, "symbolic-ref", "--short", "HEAD"));
        Assert.Equal("# test\n", File.ReadAllText(Path.Combine(worktree.Path, "README.md")));
        Assert.Equal(before, await repo.StateAsync());
    }

    [Fact]
    public async Task CreateWorktree_BranchAlreadyExists_RefusesAndChangesNothing()
    {
        using var repo = await TempRepo.CreateAsync();
        var head = await repo.GitAsync("rev-parse", "HEAD");
        await repo.GitAsync("branch", "offload/7-fix-auth");

        var error = await Assert.ThrowsAsync<WorkspaceException>(
            () => _workspace.CreateWorktreeAsync(repo.Root, repo.WorktreesDir, 7, "fix-auth", head));

        Assert.Equal("branch_exists", error.Code);
        Assert.Contains("git branch -D offload/7-fix-auth", error.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(repo.WorktreesDir, "7-fix-auth")));
        Assert.Equal(repo.Root, (await repo.GitAsync("worktree", "list", "--porcelain")).Split('\n')[0]["worktree ".Length..]);
        Assert.Single((await repo.GitAsync("worktree", "list")).Split('\n'));
    }

    [Fact]
    public async Task CreateWorktree_FolderAlreadyExists_RefusesAndCreatesNoBranch()
    {
        using var repo = await TempRepo.CreateAsync();
        var head = await repo.GitAsync("rev-parse", "HEAD");
        Directory.CreateDirectory(Path.Combine(repo.WorktreesDir, "7-fix-auth"));

        var error = await Assert.ThrowsAsync<WorkspaceException>(
            () => _workspace.CreateWorktreeAsync(repo.Root, repo.WorktreesDir, 7, "fix-auth", head));

        Assert.Equal("worktree_exists", error.Code);
        Assert.Equal("", await repo.GitAsync("branch", "--list", "offload/*"));
    }

    [Fact]
    public async Task CreateWorktree_BaseCommitNotInRepository_RefusesWithBadBaseAndCreatesNothing()
    {
        using var repo = await TempRepo.CreateAsync();

        var error = await Assert.ThrowsAsync<WorkspaceException>(
            () => _workspace.CreateWorktreeAsync(repo.Root, repo.WorktreesDir, 8, "t", new string('1', 40)));

        Assert.Equal("bad_base", error.Code);
        Assert.Equal("", await repo.GitAsync("branch", "--list", "offload/*"));
        Assert.False(Directory.Exists(Path.Combine(repo.WorktreesDir, "8-t")));
    }

    [Fact]
    public async Task CreateWorktree_LeftoverRegistrationOfMissingFolder_PrunesAndRetries()
    {
        using var repo = await TempRepo.CreateAsync();
        var head = await repo.GitAsync("rev-parse", "HEAD");
        var path = Path.Combine(repo.WorktreesDir, "7-fix-auth");
        await repo.GitAsync("worktree", "add", "--quiet", "-b", "old-branch", path, head);
        await repo.GitAsync("worktree", "lock", path);
        Directory.Delete(path, recursive: true);

        var worktree = await _workspace.CreateWorktreeAsync(repo.Root, repo.WorktreesDir, 7, "fix-auth", head);

        Assert.Equal("offload/7-fix-auth", await TempRepo.GitInAsync(worktree.Path, "symbolic-ref", "--short", "HEAD"));
    }

    [Fact]
    public async Task CreateWorktree_CopiesIgnoredFilesNamedInWorktreeInclude_AndCommitAllNeverCommitsThem()
    {
        using var repo = await TempRepo.CreateAsync();
        repo.Write(".gitignore", ".env\nconfig/local.json\nbuild/\n");
        repo.Write(".worktreeinclude", ".env\nconfig/local.json\nnotes.txt\n");
        var head = await repo.CommitAsync("ignore rules");
        repo.Write(".env", "SECRET=1\n");
        repo.Write("config/local.json", "{}");
        repo.Write("build/out.bin", "not included");
        repo.Write("notes.txt", "untracked but not ignored: not copied");

        var worktree = await _workspace.CreateWorktreeAsync(repo.Root, repo.WorktreesDir, 3, "env", head);

        Assert.Equal([".env", "config/local.json"], worktree.CopiedFiles);
        Assert.Equal("SECRET=1\n", File.ReadAllText(Path.Combine(worktree.Path, ".env")));
        Assert.Equal("{}", File.ReadAllText(Path.Combine(worktree.Path, "config/local.json")));
        Assert.False(File.Exists(Path.Combine(worktree.Path, "build/out.bin")));
        Assert.False(File.Exists(Path.Combine(worktree.Path, "notes.txt")));

        TempRepo.WriteIn(worktree.Path, "feature.txt", "work\n");
        var commit = await _workspace.CommitAllAsync(repo.Root, worktree.Path, worktree.Branch, "task 3");

        Assert.NotNull(commit);
        Assert.Equal("feature.txt", await TempRepo.GitInAsync(worktree.Path, "diff-tree", "--no-commit-id", "--name-only", "-r", commit));
    }

    [Fact]
    public async Task CommitAll_CommitsEverythingAsOffload_AndReturnsNullWhenNothingChanged()
    {
        using var repo = await TempRepo.CreateAsync();
        var head = await repo.GitAsync("rev-parse", "HEAD");
        var worktree = await _workspace.CreateWorktreeAsync(repo.Root, repo.WorktreesDir, 1, "t", head);
        TempRepo.WriteIn(worktree.Path, "new.txt", "new\n");
        TempRepo.WriteIn(worktree.Path, "README.md", "changed\n");

        var commit = await _workspace.CommitAllAsync(repo.Root, worktree.Path, worktree.Branch, "did the thing");
        var again = await _workspace.CommitAllAsync(repo.Root, worktree.Path, worktree.Branch, "nothing");

        Assert.Null(again);
        Assert.Equal(commit, await TempRepo.GitInAsync(worktree.Path, "rev-parse", "offload/1-t"));
        Assert.Equal(
            "Offload <offload@localhost>|Offload <offload@localhost>|did the thing",
            await TempRepo.GitInAsync(worktree.Path, "show", "-s", "--format=%an <%ae>|%cn <%ce>|%s", commit!));
        Assert.Equal("", await TempRepo.GitInAsync(worktree.Path, "status", "--porcelain"));
        Assert.Equal(head, await repo.GitAsync("rev-parse", "main"));
    }

    [Fact]
    public async Task DiffAndChangedFiles_DescribeTheBranchAgainstItsBase()
    {
        using var repo = await TempRepo.CreateAsync();
        repo.Write("old.txt", "one\ntwo\nthree\nfour\nfive\n");
        repo.Write("gone.txt", "bye\n");
        var head = await repo.CommitAsync("files");
        var worktree = await _workspace.CreateWorktreeAsync(repo.Root, repo.WorktreesDir, 2, "t", head);
        TempRepo.WriteIn(worktree.Path, "README.md", "# test\nmore\n");
        File.Move(Path.Combine(worktree.Path, "old.txt"), Path.Combine(worktree.Path, "renamed.txt"));
        File.Delete(Path.Combine(worktree.Path, "gone.txt"));
        File.WriteAllBytes(Path.Combine(worktree.Path, "blob.bin"), [0, 1, 2, 0, 255]);
        await _workspace.CommitAllAsync(repo.Root, worktree.Path, worktree.Branch, "changes");
        repo.Write("README.md", "main moved on\n");
        await repo.CommitAsync("main moves");

        var diff = await _workspace.DiffAsync(repo.Root, head, worktree.Branch);
        var files = await _workspace.ChangedFilesAsync(repo.Root, head, worktree.Branch);

        Assert.Contains("diff --git a/README.md b/README.md", diff, StringComparison.Ordinal);
        Assert.Contains("+more", diff, StringComparison.Ordinal);
        Assert.DoesNotContain("main moved on", diff, StringComparison.Ordinal);
        Assert.Contains("rename from old.txt", diff, StringComparison.Ordinal);
        Assert.Equal(
            new ChangedFile[]
            {
                new("README.md", 1, 0, "modified"),
                new("blob.bin", 0, 0, "added"),
                new("gone.txt", 0, 1, "deleted"),
                new("renamed.txt", 0, 0, "renamed"),
            },
            files.OrderBy(f => f.Path, StringComparer.Ordinal));
    }

    [Fact]
    public async Task Diff_MissingBranch_RefusesWithBranchMissing()
    {
        using var repo = await TempRepo.CreateAsync();
        var head = await repo.GitAsync("rev-parse", "HEAD");

        var error = await Assert.ThrowsAsync<WorkspaceException>(() => _workspace.DiffAsync(repo.Root, head, "offload/9-gone"));

        Assert.Equal("branch_missing", error.Code);
    }

    [Fact]
    public async Task RemoveWorktree_DeletesFolderBranchAndCheckpointRefs_AndReportsDiskUsageBefore()
    {
        using var repo = await TempRepo.CreateAsync();
        var head = await repo.GitAsync("rev-parse", "HEAD");
        var worktree = await _workspace.CreateWorktreeAsync(repo.Root, repo.WorktreesDir, 4, "t", head);
        TempRepo.WriteIn(worktree.Path, "big.txt", new string('x', 10_000));
        await _workspace.CheckpointAsync(repo.Root, worktree.Path, worktree.Branch, 4, 1);
        var otherTask = await _workspace.CreateWorktreeAsync(repo.Root, repo.WorktreesDir, 40, "t", head);
        TempRepo.WriteIn(otherTask.Path, "x.txt", "x");
        await _workspace.CheckpointAsync(repo.Root, otherTask.Path, otherTask.Branch, 40, 1);

        Assert.InRange(GitWorkspace.DiskUsage(worktree.Path), 10_000, 1_000_000);

        await _workspace.RemoveWorktreeAsync(repo.Root, worktree.Path, worktree.Branch, deleteBranch: true);

        Assert.False(Directory.Exists(worktree.Path));
        Assert.Equal(0, GitWorkspace.DiskUsage(worktree.Path));
        Assert.Equal("offload/40-t", await repo.GitAsync("branch", "--list", "--format=%(refname:short)", "offload/*"));
        Assert.Equal("refs/offload/40/turn-1", await repo.GitAsync("for-each-ref", "--format=%(refname)", "refs/offload/"));
        Assert.Equal(2, (await repo.GitAsync("worktree", "list")).Split('\n').Length);
    }

    [Fact]
    public async Task RemoveWorktree_KeepingBranch_LeavesBranchAndWorksWhenFolderIsAlreadyGone()
    {
        using var repo = await TempRepo.CreateAsync();
        var head = await repo.GitAsync("rev-parse", "HEAD");
        var worktree = await _workspace.CreateWorktreeAsync(repo.Root, repo.WorktreesDir, 5, "t", head);
        Directory.Delete(worktree.Path, recursive: true);

        await _workspace.RemoveWorktreeAsync(repo.Root, worktree.Path, worktree.Branch, deleteBranch: false);

        Assert.Equal(head, await repo.GitAsync("rev-parse", worktree.Branch));
        Assert.Single((await repo.GitAsync("worktree", "list")).Split('\n'));
    }

    [Fact]
    public async Task IsMerged_TrueOnlyOnceAnotherBranchContainsTheTip()
    {
        using var repo = await TempRepo.CreateAsync();
        var head = await repo.GitAsync("rev-parse", "HEAD");
        var worktree = await _workspace.CreateWorktreeAsync(repo.Root, repo.WorktreesDir, 6, "t", head);
        TempRepo.WriteIn(worktree.Path, "f.txt", "f");
        await _workspace.CommitAllAsync(repo.Root, worktree.Path, worktree.Branch, "work");

        Assert.False(await _workspace.IsMergedAsync(repo.Root, worktree.Branch));

        await repo.GitAsync("merge", "--quiet", "--ff-only", worktree.Branch);

        Assert.True(await _workspace.IsMergedAsync(repo.Root, worktree.Branch));
    }
}
