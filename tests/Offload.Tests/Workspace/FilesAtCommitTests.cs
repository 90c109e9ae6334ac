using Offload.Workspace;

namespace Offload.Tests.Workspace;

/// <summary><see cref="GitWorkspace.ReadAtCommitAsync"/>: files as a commit has them, which is what a new worktree will hold.</summary>
public class FilesAtCommitTests
{
    [Fact]
    public async Task ReadAtCommit_GivesTheCommitsText_FollowsSymlinks_LeavesOutMissingFiles_AndIgnoresLaterChanges()
    {
        using var repo = await TempRepo.CreateAsync();
        repo.Write("AGENTS.md", "héllo — notes\nline two\n");
        File.CreateSymbolicLink(Path.Combine(repo.Root, "CLAUDE.md"), "AGENTS.md");
        await repo.CommitAsync("notes");
        var commit = await repo.GitAsync("rev-parse", "HEAD");
        repo.Write("AGENTS.md", "changed later\n");
        repo.Write("EMPTY.md", "");
        await repo.CommitAsync("later");

        var files = await GitWorkspace.ReadAtCommitAsync(repo.Root, commit, ["CLAUDE.md", "AGENTS.md", "EMPTY.md", "README.md"]);

        Assert.NotNull(files);
        Assert.Equal(
            new Dictionary<string, string> { ["CLAUDE.md"] = "héllo — notes\nline two\n", ["AGENTS.md"] = "héllo — notes\nline two\n", ["README.md"] = "# test\n" },
            files);
        var later = await GitWorkspace.ReadAtCommitAsync(repo.Root, await repo.GitAsync("rev-parse", "HEAD"), ["EMPTY.md", "AGENTS.md"]);
        Assert.Equal(new Dictionary<string, string> { ["EMPTY.md"] = "", ["AGENTS.md"] = "changed later\n" }, later);
    }

    [Fact]
    public async Task ReadAtCommit_IsNull_WhenTheCommitIsNotThere_OrTheFolderIsNoRepository()
    {
        using var repo = await TempRepo.CreateAsync();

        Assert.Null(await GitWorkspace.ReadAtCommitAsync(repo.Root, new string('e', 40), ["CLAUDE.md"]));
        Assert.Null(await GitWorkspace.ReadAtCommitAsync(repo.Home, "HEAD", ["CLAUDE.md"]));
    }
}
