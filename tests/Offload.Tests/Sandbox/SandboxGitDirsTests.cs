using Offload.Tests.Workspace;
using Offload.Workspace;

namespace Offload.Tests.Sandbox;

/// <summary>The sandbox reads a worktree's git directories from git's own files; what it reads is what git says.</summary>
public class SandboxGitDirsTests
{
    [Fact]
    public async Task ReadFromFiles_MatchesWhatGitSays_ForATaskWorktree_AGitWorktreeAdd_AndADetachedOne()
    {
        using var repo = await TempRepo.CreateAsync();
        var head = await repo.GitAsync("rev-parse", "HEAD");
        var task = await new GitWorkspace().CreateWorktreeAsync(repo.Root, repo.WorktreesDir, 7, "read-dirs", head);
        var added = Path.Combine(repo.WorktreesDir, "added");
        await repo.GitAsync("worktree", "add", "-q", "-b", "by-hand", added, head);
        var detached = Path.Combine(repo.WorktreesDir, "detached");
        await repo.GitAsync("worktree", "add", "-q", "--detach", detached, head);

        foreach (var worktree in new[] { task.Path, added, detached })
        {
            var fromFiles = Agent.Tools.Sandbox.ReadGitFiles(worktree);
            var fromGit = await Agent.Tools.Sandbox.AskGitAsync(worktree, CancellationToken.None);

            Assert.NotNull(fromFiles);
            Assert.Equal(fromGit, fromFiles);
        }

        Assert.Equal("refs/heads/offload/7-read-dirs", Agent.Tools.Sandbox.ReadGitFiles(task.Path)!.BranchRef);
        Assert.Null(Agent.Tools.Sandbox.ReadGitFiles(detached)!.BranchRef);
    }

    [Fact]
    public async Task ReadFromFiles_LeavesToGit_AMainCheckout_AndAnotherObjectFormat()
    {
        using var repo = await TempRepo.CreateAsync();
        Assert.Null(Agent.Tools.Sandbox.ReadGitFiles(repo.Root)); // .git is a folder: git is asked

        var head = await repo.GitAsync("rev-parse", "HEAD");
        var worktree = await new GitWorkspace().CreateWorktreeAsync(repo.Root, repo.WorktreesDir, 8, "format", head);
        File.AppendAllText(Path.Combine(repo.Root, ".git", "config"), "[extensions]\n\tobjectFormat = sha1\n");

        Assert.Null(Agent.Tools.Sandbox.ReadGitFiles(worktree.Path));
    }
}
