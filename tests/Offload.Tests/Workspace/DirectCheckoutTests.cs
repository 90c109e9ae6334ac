using System.Text;
using Offload.Workspace;

namespace Offload.Tests.Workspace;

/// <summary>
/// A plain repository's worktrees are written by Offload (files, index, branch, reflog) instead of a
/// <c>git checkout</c> per task: git must see exactly what its own checkout would have left. Repositories whose
/// checkout does more (attributes, submodules, line-ending or index settings) are still checked out by git.
/// </summary>
public sealed class DirectCheckoutTests
{
    private readonly GitWorkspace _workspace = new();

    [Fact]
    public async Task PlainRepository_IsWrittenByOffload_AndGitSeesTheCommitCleanWithoutRereadingAFile()
    {
        using var repo = await TempRepo.CreateAsync();
        // Paths whose order differs between a naive sort and git's (a.b, a/c, a-b, a0), nesting, odd names.
        foreach (var name in new[] { "a.b", "a/c", "a-b", "a0", "src/deep/er/file.cs", "with space.txt", "ünïcode.md", "empty" })
        {
            repo.Write(name, name == "empty" ? "" : $"content of {name}\n");
        }

        var binary = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        File.WriteAllBytes(Path.Combine(repo.Root, "blob.bin"), binary);
        repo.Write("run.sh", "#!/bin/sh\necho hi\n");
        File.SetUnixFileMode(Path.Combine(repo.Root, "run.sh"), (UnixFileMode)0b111_101_101);
        File.CreateSymbolicLink(Path.Combine(repo.Root, "link"), "src/deep/er/file.cs");
        var head = await repo.CommitAsync("a tree with everything");

        Assert.True(await GitWorkspace.WritesWorktreeItselfAsync(repo.Root, head));
        var worktree = await _workspace.CreateWorktreeAsync(repo.Root, repo.WorktreesDir, 7, "direct", head);

        // The index's stat data match the files: git finds nothing to refresh (diff-files does not re-read contents).
        var diffFiles = await Git.RunAsync(worktree.Path, ["diff-files", "--quiet"]);
        Assert.True(diffFiles.ExitCode == 0, "git diff-files saw changes: " + (await Git.RunAsync(worktree.Path, ["diff-files"])).Stdout);
        Assert.Equal("", await TempRepo.GitInAsync(worktree.Path, "status", "--porcelain", "--untracked-files=all"));
        Assert.Equal(await repo.GitAsync("rev-parse", head + "^{tree}"), await TempRepo.GitInAsync(worktree.Path, "write-tree"));
        Assert.Equal(
            await repo.GitAsync("ls-tree", "-r", "--format=%(objectmode) %(objectname)\t%(path)", head),
            await TempRepo.GitInAsync(worktree.Path, "ls-files", "--format=%(objectmode) %(objectname)\t%(path)"));
        Assert.Equal(("offload/7-direct", head), (await TempRepo.GitInAsync(worktree.Path, "symbolic-ref", "--short", "HEAD"), await TempRepo.GitInAsync(worktree.Path, "rev-parse", "HEAD")));
        Assert.Equal("offload/7-direct@{0}: branch: Created from " + head, await repo.GitAsync("reflog", "-1", "--format=%gD: %gs", "offload/7-direct"));
        Assert.Equal("ok", await repo.GitAsync("fsck", "--no-progress", "--no-dangling") is "" ? "ok" : "fsck complained");

        // The files are the commit's: contents, the executable bit, the link.
        Assert.Equal(binary, File.ReadAllBytes(Path.Combine(worktree.Path, "blob.bin")));
        Assert.Equal("content of ünïcode.md\n", File.ReadAllText(Path.Combine(worktree.Path, "ünïcode.md"), Encoding.UTF8));
        Assert.True(File.GetUnixFileMode(Path.Combine(worktree.Path, "run.sh")).HasFlag(UnixFileMode.UserExecute));
        Assert.False(File.GetUnixFileMode(Path.Combine(worktree.Path, "a.b")).HasFlag(UnixFileMode.UserExecute));
        Assert.Equal("src/deep/er/file.cs", new FileInfo(Path.Combine(worktree.Path, "link")).LinkTarget);

        // And a change is seen as one, staged and committed as usual.
        File.AppendAllText(Path.Combine(worktree.Path, "a0"), "more\n");
        Assert.Equal(" M a0", await TempRepo.GitInAsync(worktree.Path, "status", "--porcelain"));
    }

    [Fact]
    public async Task BranchThatExists_IsRefused_AndNothingIsLeftBehind()
    {
        using var repo = await TempRepo.CreateAsync();
        var head = await repo.GitAsync("rev-parse", "HEAD");
        await repo.GitAsync("branch", "offload/8-taken");
        await repo.GitAsync("pack-refs", "--all"); // packed, not a loose file: still taken

        Assert.True(await GitWorkspace.WritesWorktreeItselfAsync(repo.Root, head));
        var error = await Assert.ThrowsAsync<WorkspaceException>(() => _workspace.CreateWorktreeAsync(repo.Root, repo.WorktreesDir, 8, "taken", head));

        Assert.Equal(WorkspaceErrors.BranchExists, error.Code);
        Assert.False(Directory.Exists(Path.Combine(repo.WorktreesDir, "8-taken")));
        Assert.Empty(Directory.Exists(repo.WorktreesDir) ? Directory.EnumerateFileSystemEntries(repo.WorktreesDir) : []);
        Assert.Equal("", await repo.GitAsync("worktree", "prune", "--dry-run", "-v"));
        Assert.False(File.Exists(Path.Combine(repo.Root, ".git", "refs", "heads", "offload", "8-taken.lock")));
    }

    public static TheoryData<string, string> CheckoutsGitMustDo() => new()
    {
        { "line endings in .gitattributes", "attributes" },
        { "core.autocrlf", "autocrlf" },
        { "index.version 4", "index-v4" },
        { "a submodule", "submodule" },
    };

    [Theory]
    [MemberData(nameof(CheckoutsGitMustDo))]
    public async Task RepositoryWhoseCheckoutDoesMore_IsCheckedOutByGit_AndComesOutClean(string what, string kind)
    {
        using var repo = await TempRepo.CreateAsync();
        repo.Write("notes.txt", "one\ntwo\n");
        switch (kind)
        {
            case "attributes":
                repo.Write(".gitattributes", "*.txt text eol=crlf\n");
                break;
            case "autocrlf":
                await repo.GitAsync("config", "core.autocrlf", "true");
                break;
            case "index-v4":
                await repo.GitAsync("config", "index.version", "4");
                break;
        }

        var head = await repo.CommitAsync(what);
        if (kind == "submodule")
        {
            // A gitlink (what `git submodule add` records), committed without a checkout of it.
            await repo.GitAsync("update-index", "--add", "--cacheinfo", $"160000,{head},vendor/lib");
            await repo.GitAsync("commit", "--quiet", "-m", what);
            head = await repo.GitAsync("rev-parse", "HEAD");
        }

        Assert.False(await GitWorkspace.WritesWorktreeItselfAsync(repo.Root, head), what);
        var worktree = await _workspace.CreateWorktreeAsync(repo.Root, repo.WorktreesDir, 9, "by-git", head);

        Assert.Equal("", await TempRepo.GitInAsync(worktree.Path, "status", "--porcelain", "--untracked-files=all"));
        if (kind is "attributes" or "autocrlf")
        {
            Assert.Equal("one\r\ntwo\r\n", File.ReadAllText(Path.Combine(worktree.Path, "notes.txt")));
        }
    }
}
