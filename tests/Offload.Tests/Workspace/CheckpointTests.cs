using Offload.Workspace;

namespace Offload.Tests.Workspace;

public class CheckpointTests
{
    private readonly GitWorkspace _workspace = new();

    private static async Task<(TempRepo Repo, WorktreeInfo Worktree)> TaskAsync(long taskId)
    {
        var repo = await TempRepo.CreateAsync();
        repo.Write("keep.txt", "keep\n");
        repo.Write(".gitignore", "*.log\n");
        var head = await repo.CommitAsync("base");
        var worktree = await new GitWorkspace().CreateWorktreeAsync(repo.Root, repo.WorktreesDir, taskId, "t", head);
        return (repo, worktree);
    }

    [Fact]
    public async Task Checkpoint_SavesTrackedAndUntrackedFiles_WithoutMovingBranchOrChangingStatusOrIndex()
    {
        var (repo, worktree) = await TaskAsync(1);
        using var _ = repo;
        TempRepo.WriteIn(worktree.Path, "keep.txt", "edited\n");
        TempRepo.WriteIn(worktree.Path, "new/untracked.txt", "new\n");
        TempRepo.WriteIn(worktree.Path, "staged.txt", "staged\n");
        TempRepo.WriteIn(worktree.Path, "debug.log", "ignored\n");
        await TempRepo.GitInAsync(worktree.Path, "add", "staged.txt");
        var before = await RepoState.ReadAsync(worktree.Path);

        var checkpoint = await _workspace.CheckpointAsync(repo.Root, worktree.Path, worktree.Branch, 1, turn: 1);

        Assert.NotNull(checkpoint);
        Assert.Equal(before, await RepoState.ReadAsync(worktree.Path));
        Assert.Equal(checkpoint.Sha, await repo.GitAsync("rev-parse", "refs/offload/1/turn-1"));
        Assert.Equal(before.Head, await repo.GitAsync("rev-parse", checkpoint.Sha + "^"));
        Assert.Equal(
            ".gitignore\nREADME.md\nkeep.txt\nnew/untracked.txt\nstaged.txt",
            await repo.GitAsync("ls-tree", "-r", "--name-only", checkpoint.Sha));
        Assert.Equal("edited", await repo.GitAsync("show", checkpoint.Sha + ":keep.txt"));
        Assert.Equal(3, checkpoint.FilesChanged);
    }

    [Fact]
    public async Task Checkpoint_NothingChangedSincePrevious_ReturnsNull()
    {
        var (repo, worktree) = await TaskAsync(2);
        using var _ = repo;

        Assert.Null(await _workspace.CheckpointAsync(repo.Root, worktree.Path, worktree.Branch, 2, turn: 1));

        TempRepo.WriteIn(worktree.Path, "a.txt", "a");
        Assert.NotNull(await _workspace.CheckpointAsync(repo.Root, worktree.Path, worktree.Branch, 2, turn: 2));
        Assert.Null(await _workspace.CheckpointAsync(repo.Root, worktree.Path, worktree.Branch, 2, turn: 3));
        TempRepo.WriteIn(worktree.Path, "ignored.log", "only an ignored file changed");
        Assert.Null(await _workspace.CheckpointAsync(repo.Root, worktree.Path, worktree.Branch, 2, turn: 4));
    }

    [Fact]
    public async Task ListCheckpoints_ReturnsTurnsInOrderWithFilesChangedSincePrevious()
    {
        var (repo, worktree) = await TaskAsync(3);
        using var _ = repo;
        TempRepo.WriteIn(worktree.Path, "a.txt", "a");
        TempRepo.WriteIn(worktree.Path, "b.txt", "b");
        var first = await _workspace.CheckpointAsync(repo.Root, worktree.Path, worktree.Branch, 3, turn: 1);
        TempRepo.WriteIn(worktree.Path, "a.txt", "a2");
        var second = await _workspace.CheckpointAsync(repo.Root, worktree.Path, worktree.Branch, 3, turn: 2);
        File.Delete(Path.Combine(worktree.Path, "a.txt"));
        TempRepo.WriteIn(worktree.Path, "c.txt", "c");
        var tenth = await _workspace.CheckpointAsync(repo.Root, worktree.Path, worktree.Branch, 3, turn: 10);

        var list = await _workspace.ListCheckpointsAsync(repo.Root, 3);

        Assert.Equal([first!, second!, tenth!], list);
        Assert.Equal([2, 1, 2], list.Select(c => c.FilesChanged));
        Assert.Empty(await _workspace.ListCheckpointsAsync(repo.Root, 33));
    }

    [Fact]
    public async Task Rewind_RestoresFilesExactly_DeletingNewOnes_KeepingIgnoredOnes_AndLeavingBranch()
    {
        var (repo, worktree) = await TaskAsync(4);
        using var _ = repo;
        TempRepo.WriteIn(worktree.Path, "keep.txt", "turn 1\n");
        TempRepo.WriteIn(worktree.Path, "one.txt", "one\n");
        var turn1 = await _workspace.CheckpointAsync(repo.Root, worktree.Path, worktree.Branch, 4, turn: 1);
        var atTurn1 = await RepoState.ReadAsync(worktree.Path);
        TempRepo.WriteIn(worktree.Path, "keep.txt", "turn 2\n");
        File.Delete(Path.Combine(worktree.Path, "one.txt"));
        TempRepo.WriteIn(worktree.Path, "two/deep/two.txt", "two\n");
        await _workspace.CommitAllAsync(repo.Root, worktree.Path, worktree.Branch, "agent committed");
        var branchTip = await TempRepo.GitInAsync(worktree.Path, "rev-parse", "HEAD");
        TempRepo.WriteIn(worktree.Path, "three.txt", "three\n");
        TempRepo.WriteIn(worktree.Path, "run.log", "ignored output\n");

        await _workspace.RewindAsync(repo.Root, worktree.Path, worktree.Branch, turn1!.Sha);

        var after = await RepoState.ReadAsync(worktree.Path);
        Assert.Equal(branchTip, after.Head);
        Assert.Equal("refs/heads/offload/4-t", after.Branch);
        Assert.Equal(atTurn1.Files + "\nrun.log=ignored output\n", after.Files);
        var snapshot = await _workspace.CheckpointAsync(repo.Root, worktree.Path, worktree.Branch, 999, turn: 1);
        Assert.Equal(await repo.GitAsync("rev-parse", turn1.Sha + "^{tree}"), await repo.GitAsync("rev-parse", snapshot!.Sha + "^{tree}"));
    }

    [Fact]
    public async Task Rewind_UnknownCheckpoint_RefusesWithBadCheckpoint()
    {
        var (repo, worktree) = await TaskAsync(5);
        using var _ = repo;

        var error = await Assert.ThrowsAsync<WorkspaceException>(() => _workspace.RewindAsync(repo.Root, worktree.Path, worktree.Branch, new string('0', 40)));

        Assert.Equal("bad_checkpoint", error.Code);
    }
}
