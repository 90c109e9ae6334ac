using Offload.Tests.EndToEnd;

namespace Offload.Tests.Review;

/// <summary>The user's repository as a refusal must leave it: HEAD, <c>git status --porcelain</c>, and every file's bytes.</summary>
public sealed record RepoState(string Head, string Status, IReadOnlyDictionary<string, string> Files)
{
    public static RepoState Of(OffloadHarness h) => new(
        h.Git("rev-parse", "HEAD").Trim(),
        h.Git("status", "--porcelain", "--untracked-files=all"),
        Directory.EnumerateFiles(h.Repo, "*", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}.git{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .ToDictionary(f => Path.GetRelativePath(h.Repo, f), File.ReadAllText));

    public void AssertSame(RepoState other)
    {
        Assert.Equal(Head, other.Head);
        Assert.Equal(Status, other.Status);
        Assert.Equal(Files.OrderBy(f => f.Key), other.Files.OrderBy(f => f.Key));
    }
}
