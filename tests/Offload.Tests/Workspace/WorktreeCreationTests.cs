using Offload.Workspace;

namespace Offload.Tests.Workspace;

/// <summary>
/// How a task's worktree is made (without `git worktree add`, so that many can be made at once) and what git sees
/// of it afterwards; the repositories that still need `git worktree add`; the new task's repository in one git call,
/// and its branches looked up without git.
/// </summary>
public class WorktreeCreationTests
{
    private readonly GitWorkspace _workspace = new();

    [Fact]
    public async Task CreateWorktree_LeavesAnOrdinaryWorktree_UnlockedWithNothingHalfMadeAround_ThatGitListsAndRemoves()
    {
        using var repo = await TempRepo.CreateAsync();
        var head = await repo.GitAsync("rev-parse", "HEAD");

        var worktree = await _workspace.CreateWorktreeAsync(repo.Root, repo.WorktreesDir, 4, "tidy-up", head);

        var listed = await repo.GitAsync("worktree", "list", "--porcelain");
        Assert.Contains($"worktree {worktree.Path}\nHEAD {head}\nbranch refs/heads/offload/4-tidy-up", listed, StringComparison.Ordinal);
        Assert.DoesNotContain("locked", listed, StringComparison.Ordinal);
        Assert.Equal(["4-tidy-up"], Directory.EnumerateFileSystemEntries(repo.WorktreesDir).Select(Path.GetFileName));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(repo.Root, ".git"), "offload-*"));
        Assert.Equal("", await TempRepo.GitInAsync(worktree.Path, "status", "--porcelain", "--untracked-files=all"));
        Assert.Equal(worktree.Path, await TempRepo.GitInAsync(worktree.Path, "rev-parse", "--show-toplevel"));
        Assert.Equal("offload/4-tidy-up@{0}: branch: Created from " + head,
            (await repo.GitAsync("reflog", "-1", "--format=%gD: %gs", "offload/4-tidy-up")));

        await _workspace.RemoveWorktreeAsync(repo.Root, worktree.Path, worktree.Branch, deleteBranch: true);

        Assert.Single((await repo.GitAsync("worktree", "list")).Split('\n'));
        Assert.Equal("", await repo.GitAsync("branch", "--list", "offload/*"));
    }

    [Fact]
    public async Task CreateWorktree_AfterAnAttemptThatStoppedBeforeTheFolderWasInPlace_ClearsItsLeftovers_AndKeepsTheBranch()
    {
        using var repo = await TempRepo.CreateAsync();
        var head = await repo.GitAsync("rev-parse", "HEAD");
        var path = Path.Combine(repo.WorktreesDir, "5-resume");
        // What a daemon killed between the checkout and the final rename leaves: the branch, a locked registration
        // of the folder, and the staging folder.
        await repo.GitAsync("branch", "offload/5-resume", head);
        var registration = Path.Combine(repo.Root, ".git", "worktrees", "5-resume");
        Directory.CreateDirectory(registration);
        File.WriteAllText(Path.Combine(registration, "gitdir"), Path.Combine(path, ".git") + "\n");
        File.WriteAllText(Path.Combine(registration, "commondir"), "../..\n");
        File.WriteAllText(Path.Combine(registration, "HEAD"), "ref: refs/heads/offload/5-resume\n");
        File.WriteAllText(Path.Combine(registration, "locked"), "offload: creating this worktree\n");
        var staging = Path.Combine(repo.WorktreesDir, ".5-resume.creating-0123456789ab");
        Directory.CreateDirectory(staging);
        File.WriteAllText(Path.Combine(staging, ".git"), $"gitdir: {registration}\n");

        var worktree = await _workspace.CreateWorktreeAsync(repo.Root, repo.WorktreesDir, 5, "resume", head);

        Assert.Equal(path, worktree.Path);
        Assert.Equal("offload/5-resume", await TempRepo.GitInAsync(path, "symbolic-ref", "--short", "HEAD"));
        Assert.Equal("# test\n", File.ReadAllText(Path.Combine(path, "README.md")));
        Assert.Equal("", await TempRepo.GitInAsync(path, "status", "--porcelain", "--untracked-files=all"));
        Assert.False(Directory.Exists(staging));
        Assert.Equal(2, (await repo.GitAsync("worktree", "list")).Split('\n').Length);
        Assert.DoesNotContain("locked", await repo.GitAsync("worktree", "list", "--porcelain"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task CreateWorktree_InASparseCheckout_GivesTheWorktreeTheSamePatterns_AsGitWorktreeAddDoes()
    {
        using var repo = await TempRepo.CreateAsync();
        repo.Write("src/a.txt", "a\n");
        repo.Write("docs/b.txt", "b\n");
        var head = await repo.CommitAsync("two folders");
        await repo.GitAsync("sparse-checkout", "set", "src");

        var worktree = await _workspace.CreateWorktreeAsync(repo.Root, repo.WorktreesDir, 6, "sparse", head);

        Assert.True(File.Exists(Path.Combine(worktree.Path, "src", "a.txt")));
        Assert.False(Directory.Exists(Path.Combine(worktree.Path, "docs")));
        Assert.Equal("offload/6-sparse", await TempRepo.GitInAsync(worktree.Path, "symbolic-ref", "--short", "HEAD"));
    }

    [Fact]
    public async Task CreateWorktree_FromALinkedWorktreeOfTheRepository_RegistersItWithTheRepository()
    {
        using var repo = await TempRepo.CreateAsync();
        var head = await repo.GitAsync("rev-parse", "HEAD");
        var linked = Path.Combine(repo.Home, "linked");
        await repo.GitAsync("worktree", "add", "--quiet", "-b", "side", linked, head);

        var worktree = await _workspace.CreateWorktreeAsync(linked, repo.WorktreesDir, 8, "from-linked", head);

        Assert.Equal(3, (await repo.GitAsync("worktree", "list")).Split('\n').Length);
        Assert.Equal(head, await TempRepo.GitInAsync(worktree.Path, "rev-parse", "HEAD"));
        Assert.Equal(
            Path.Combine(repo.Root, ".git"),
            await TempRepo.GitInAsync(worktree.Path, "rev-parse", "--path-format=absolute", "--git-common-dir"));
    }

    [Fact]
    public async Task CommitAll_WithUntrackedFilesHiddenFromStatusByConfig_StillCommitsANewFile()
    {
        using var repo = await TempRepo.CreateAsync();
        var head = await repo.GitAsync("rev-parse", "HEAD");
        await repo.GitAsync("config", "status.showUntrackedFiles", "no");
        var worktree = await _workspace.CreateWorktreeAsync(repo.Root, repo.WorktreesDir, 9, "t", head);
        TempRepo.WriteIn(worktree.Path, "notes/new.txt", "new\n");

        var commit = await _workspace.CommitAllAsync(repo.Root, worktree.Path, worktree.Branch, "added a file");

        Assert.NotNull(commit);
        Assert.Equal("notes/new.txt", await TempRepo.GitInAsync(worktree.Path, "diff-tree", "--no-commit-id", "--name-only", "-r", commit));
    }

    [Fact]
    public async Task ResolveForNewTask_AgreesWithResolveRepo_AndGivesTheCommonDirectory()
    {
        using var repo = await TempRepo.CreateAsync();
        var first = await repo.GitAsync("rev-parse", "HEAD");
        await repo.GitAsync("tag", "v1");
        repo.Write("src/a.txt", "a");
        await repo.CommitAsync("second");
        var subfolder = Path.Combine(repo.Root, "src");

        foreach (var baseRef in new string?[] { null, "v1", "main" })
        {
            var fast = await _workspace.ResolveForNewTaskAsync(subfolder, baseRef);

            Assert.Equal(await _workspace.ResolveRepoAsync(subfolder, baseRef), fast.Repo);
            Assert.Equal(Path.Combine(repo.Root, ".git"), fast.CommonDir);
        }

        await repo.GitAsync("checkout", "--quiet", "--detach", first);
        var detached = await _workspace.ResolveForNewTaskAsync(repo.Root, null);
        Assert.Equal(new RepoInfo(repo.Root, first, first, null), detached.Repo);
    }

    [Fact]
    public async Task ResolveForNewTask_FromAKnownFolder_ReadsHeadAfresh_AsGitWould_OnEveryKindOfHead()
    {
        using var repo = await TempRepo.CreateAsync();
        var subfolder = Path.Combine(repo.Root, "src");
        repo.Write("src/a.txt", "a");
        await repo.CommitAsync("second");
        await _workspace.ResolveForNewTaskAsync(subfolder, null); // git is asked once; the folder is known from here on

        async Task AgreesWithGitAsync(string folder, string why)
        {
            var fast = await _workspace.ResolveForNewTaskAsync(folder, null);
            Assert.True(await _workspace.ResolveRepoAsync(folder, null) == fast.Repo, why);
        }

        repo.Write("src/b.txt", "b");
        await repo.CommitAsync("third");
        await AgreesWithGitAsync(subfolder, "a new commit on the branch (loose ref)");
        await repo.GitAsync("pack-refs", "--all");
        await AgreesWithGitAsync(subfolder, "the branch only in packed-refs");
        await repo.GitAsync("checkout", "--quiet", "-b", "other");
        await AgreesWithGitAsync(subfolder, "another branch");
        await repo.GitAsync("checkout", "--quiet", "--detach", "HEAD~1");
        await AgreesWithGitAsync(subfolder, "a detached HEAD");

        var linked = Path.Combine(repo.WorktreesDir, "linked");
        await repo.GitAsync("worktree", "add", "--quiet", "-b", "in-linked", linked, "main");
        await _workspace.ResolveForNewTaskAsync(linked, null);
        await TempRepo.GitInAsync(linked, "commit", "--quiet", "--allow-empty", "-m", "in the linked worktree");
        await AgreesWithGitAsync(linked, "a linked worktree's own HEAD and branch");

        // Read without git: a config git cannot parse stops git, not this (the check that nothing else is asked)
        var configPath = Path.Combine(repo.Root, ".git", "config");
        var config = File.ReadAllText(configPath);
        var expected = await repo.GitAsync("rev-parse", "HEAD");
        File.WriteAllText(configPath, "[not valid");
        Assert.Equal(expected, (await _workspace.ResolveForNewTaskAsync(subfolder, null)).Repo.BaseCommit);
        File.WriteAllText(configPath, config);

        await repo.GitAsync("checkout", "--quiet", "--orphan", "empty");
        var error = await Assert.ThrowsAsync<WorkspaceException>(() => _workspace.ResolveForNewTaskAsync(subfolder, null));
        Assert.Equal("no_commits", error.Code); // an unborn branch: git is asked, and says why
    }

    [Fact]
    public async Task LocalBranchExists_FindsLooseAndPackedBranches_AndSeesARepackAndADeletion()
    {
        using var repo = await TempRepo.CreateAsync();
        var common = Path.Combine(repo.Root, ".git");
        await repo.GitAsync("branch", "offload/1-fix-it");
        await repo.GitAsync("branch", "offload/2-packed");
        await repo.GitAsync("pack-refs", "--all");
        await repo.GitAsync("branch", "offload/3-loose");

        Assert.True(GitWorkspace.LocalBranchExists(common, "offload/1-fix-it"));
        Assert.True(GitWorkspace.LocalBranchExists(common, "offload/2-packed"));
        Assert.True(GitWorkspace.LocalBranchExists(common, "offload/3-loose"));
        Assert.False(GitWorkspace.LocalBranchExists(common, "offload/1-fix"));
        Assert.False(GitWorkspace.LocalBranchExists(common, "offload/4-fix-it"));

        await repo.GitAsync("branch", "-D", "offload/2-packed");
        await repo.GitAsync("branch", "offload/4-fix-it");
        await repo.GitAsync("pack-refs", "--all");

        Assert.False(GitWorkspace.LocalBranchExists(common, "offload/2-packed"));
        Assert.True(GitWorkspace.LocalBranchExists(common, "offload/4-fix-it"));
    }

    [Fact]
    public async Task ResolveForNewTask_WithABaseThatIsNotACommit_RefusesAsResolveRepoDoes()
    {
        using var repo = await TempRepo.CreateAsync();

        var error = await Assert.ThrowsAsync<WorkspaceException>(() => _workspace.ResolveForNewTaskAsync(repo.Root, "no-such-branch"));

        Assert.Equal("bad_base", error.Code);
    }
}
