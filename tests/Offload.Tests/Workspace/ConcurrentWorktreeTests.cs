using Offload.Workspace;

namespace Offload.Tests.Workspace;

/// <summary>Many tasks start at once (max_parallel 100): their worktrees are all made in the same repository.</summary>
public class ConcurrentWorktreeTests
{
    [Fact]
    public async Task CreateWorktree_ManyAtOnceInOneRepository_AllSucceed()
    {
        using var repo = await TempRepo.CreateAsync();
        var head = await repo.GitAsync("rev-parse", "HEAD");
        var workspace = new GitWorkspace();

        var created = await Task.WhenAll(Enumerable.Range(1, 100)
            .Select(id => Task.Run(() => workspace.CreateWorktreeAsync(repo.Root, repo.WorktreesDir, id, "same-prompt", head))));

        Assert.Equal(100, created.Select(w => w.Path).Distinct().Count());
        foreach (var worktree in created)
        {
            Assert.Equal(head, await TempRepo.GitInAsync(worktree.Path, "rev-parse", "HEAD"));
        }

        Assert.Equal(101, (await repo.GitAsync("worktree", "list")).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public async Task CreateWorktree_WhileOtherTasksWorktreesAreRemovedAndPruned_AllSucceed()
    {
        using var repo = await TempRepo.CreateAsync();
        var head = await repo.GitAsync("rev-parse", "HEAD");
        var workspace = new GitWorkspace();
        var old = await Task.WhenAll(Enumerable.Range(1, 40)
            .Select(id => Task.Run(() => workspace.CreateWorktreeAsync(repo.Root, repo.WorktreesDir, id, "old", head))));

        // `git worktree remove` and `prune` read every registered worktree while new ones are being registered.
        var removing = old.Select(w => Task.Run(() => workspace.RemoveWorktreeAsync(repo.Root, w.Path, w.Branch, deleteBranch: true)));
        var creating = Enumerable.Range(41, 40)
            .Select(id => Task.Run(() => workspace.CreateWorktreeAsync(repo.Root, repo.WorktreesDir, id, "new", head)))
            .ToList();
        await Task.WhenAll(removing.Concat<Task>(creating));

        foreach (var worktree in creating.Select(c => c.Result))
        {
            Assert.Equal(worktree.Branch, await TempRepo.GitInAsync(worktree.Path, "symbolic-ref", "--short", "HEAD"));
            Assert.Equal("", await TempRepo.GitInAsync(worktree.Path, "status", "--porcelain", "--untracked-files=all"));
        }

        var listed = await repo.GitAsync("worktree", "list", "--porcelain");
        Assert.Equal(41, listed.Split('\n').Count(l => l.StartsWith("worktree ", StringComparison.Ordinal)));
        Assert.DoesNotContain("locked", listed, StringComparison.Ordinal);
        Assert.DoesNotContain("prunable", listed, StringComparison.Ordinal);
        Assert.Equal(40, (await repo.GitAsync("branch", "--list", "offload/*-new")).Split('\n').Length);
        Assert.Equal("", await repo.GitAsync("branch", "--list", "offload/*-old"));
    }
}
