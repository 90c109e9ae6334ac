using Offload.Workspace;

namespace Offload.Tests.Workspace;

public class ResolveRepoTests
{
    private readonly GitWorkspace _workspace = new();

    [Fact]
    public async Task ResolveRepo_FromSubfolder_ReturnsRootCurrentBranchAndHeadCommit()
    {
        using var repo = await TempRepo.CreateAsync();
        repo.Write("src/a.txt", "a");
        var head = await repo.CommitAsync("second");

        var info = await _workspace.ResolveRepoAsync(Path.Combine(repo.Root, "src"), null);

        Assert.Equal(new RepoInfo(repo.Root, "main", head, "main"), info);
    }

    [Fact]
    public async Task ResolveRepo_WithBaseRef_ResolvesItToItsCommit()
    {
        using var repo = await TempRepo.CreateAsync();
        var first = await repo.GitAsync("rev-parse", "HEAD");
        await repo.GitAsync("tag", "v1");
        await repo.CommitAsync("second");

        var info = await _workspace.ResolveRepoAsync(repo.Root, "v1");

        Assert.Equal(new RepoInfo(repo.Root, "v1", first, "main"), info);
    }

    [Fact]
    public async Task ResolveRepo_DetachedHead_IsAllowedAndBasedOnThatCommit()
    {
        using var repo = await TempRepo.CreateAsync();
        var first = await repo.GitAsync("rev-parse", "HEAD");
        await repo.CommitAsync("second");
        await repo.GitAsync("checkout", "--quiet", "--detach", first);

        var info = await _workspace.ResolveRepoAsync(repo.Root, null);

        Assert.Equal(new RepoInfo(repo.Root, first, first, null), info);
    }

    [Fact]
    public async Task ResolveRepo_NotARepository_RefusesWithNotARepo()
    {
        var folder = Directory.CreateTempSubdirectory("offload-test-plain-").FullName;
        try
        {
            var error = await Assert.ThrowsAsync<WorkspaceException>(() => _workspace.ResolveRepoAsync(folder, null));

            Assert.Equal("not_a_repo", error.Code);
            Assert.Contains(folder, error.Message, StringComparison.Ordinal);
            Assert.Contains("git init", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task ResolveRepo_MissingFolder_RefusesWithNotARepo()
    {
        var error = await Assert.ThrowsAsync<WorkspaceException>(
            () => _workspace.ResolveRepoAsync(Path.Combine(Path.GetTempPath(), "offload-missing-" + Guid.NewGuid()), null));

        Assert.Equal("not_a_repo", error.Code);
    }

    [Fact]
    public async Task ResolveRepo_NoCommits_RefusesWithNoCommits()
    {
        using var repo = await TempRepo.CreateAsync(withCommit: false);

        var error = await Assert.ThrowsAsync<WorkspaceException>(() => _workspace.ResolveRepoAsync(repo.Root, null));

        Assert.Equal("no_commits", error.Code);
        Assert.Contains("git commit --allow-empty", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("no-such-branch")]
    [InlineData("--output=/tmp/x")]
    public async Task ResolveRepo_BaseThatDoesNotResolve_RefusesWithBadBase(string baseRef)
    {
        using var repo = await TempRepo.CreateAsync();

        var error = await Assert.ThrowsAsync<WorkspaceException>(() => _workspace.ResolveRepoAsync(repo.Root, baseRef));

        Assert.Equal("bad_base", error.Code);
        Assert.Contains(baseRef, error.Message, StringComparison.Ordinal);
    }
}
