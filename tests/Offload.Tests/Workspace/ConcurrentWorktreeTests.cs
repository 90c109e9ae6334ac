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
}
