using Offload.Workspace;

namespace Offload.Tests.Workspace;

/// <summary>
/// A real git repository in a fresh temp folder (branch <c>main</c>, one commit unless asked otherwise),
/// with a sibling folder for worktrees. Identity and signing are set in the repository's own config,
/// never in the test process's environment. Deleted on dispose.
/// </summary>
public sealed class TempRepo : IDisposable
{
    private static readonly Dictionary<string, string> TestEnvironment = new()
    {
        ["GIT_AUTHOR_NAME"] = "Test User",
        ["GIT_AUTHOR_EMAIL"] = "test@example.com",
        ["GIT_COMMITTER_NAME"] = "Test User",
        ["GIT_COMMITTER_EMAIL"] = "test@example.com",
    };

    private TempRepo(string home)
    {
        Home = home;
        Root = Path.Combine(home, "repo");
        WorktreesDir = Path.Combine(home, "worktrees");
        Directory.CreateDirectory(Root);
    }

    /// <summary>The temp folder holding the repository and the worktrees folder.</summary>
    public string Home { get; }

    public string Root { get; }

    public string WorktreesDir { get; }

    public static async Task<TempRepo> CreateAsync(bool withCommit = true)
    {
        var repo = new TempRepo(Path.Combine(Path.GetTempPath(), "offload-test-" + Guid.NewGuid().ToString("N")[..12]));
        await repo.GitAsync("init", "--quiet", "-b", "main");
        await repo.GitAsync("config", "user.name", "Test User");
        await repo.GitAsync("config", "user.email", "test@example.com");
        await repo.GitAsync("config", "commit.gpgsign", "false");
        if (withCommit)
        {
            repo.Write("README.md", "# test\n");
            await repo.CommitAsync("init");
        }

        return repo;
    }

    /// <summary>Runs git in the repository root; fails the test when git fails. Returns stdout without trailing whitespace.</summary>
    public Task<string> GitAsync(params string[] arguments) => GitInAsync(Root, arguments);

    public static async Task<string> GitInAsync(string directory, params string[] arguments)
    {
        var result = await Git.RunAsync(directory, arguments, TestEnvironment);
        Assert.True(result.Ok, $"git {string.Join(' ', arguments)} failed in {directory}: {result.Stderr}");
        return result.Stdout.TrimEnd();
    }

    public void Write(string relativePath, string content) => WriteIn(Root, relativePath, content);

    public static void WriteIn(string directory, string relativePath, string content)
    {
        var path = Path.Combine(directory, relativePath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
    }

    public string Read(string relativePath) => File.ReadAllText(Path.Combine(Root, relativePath));

    /// <summary>Stages everything and commits; returns the new HEAD.</summary>
    public Task<string> CommitAsync(string message) => CommitInAsync(Root, message);

    public static async Task<string> CommitInAsync(string directory, string message)
    {
        await GitInAsync(directory, "add", "-A");
        await GitInAsync(directory, "commit", "--quiet", "--allow-empty", "-m", message);
        return await GitInAsync(directory, "rev-parse", "HEAD");
    }

    /// <summary>HEAD, the branch it is on, <c>git status</c>, the index, and every file's content: what a refusal must not change.</summary>
    public Task<RepoState> StateAsync() => RepoState.ReadAsync(Root);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Home, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp folder is not worth failing a test over.
        }
    }
}

public sealed record RepoState(string Head, string Branch, string Status, string Index, string Files)
{
    public static async Task<RepoState> ReadAsync(string directory)
    {
        var branch = await Git.RunAsync(directory, ["symbolic-ref", "-q", "HEAD"]);
        var files = Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(directory, f))
            .Where(f => f != ".git" && !f.StartsWith(".git/", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Select(f => $"{f}={File.ReadAllText(Path.Combine(directory, f))}");
        return new RepoState(
            await TempRepo.GitInAsync(directory, "rev-parse", "HEAD"),
            branch.Ok ? branch.Stdout.Trim() : "(detached)",
            await TempRepo.GitInAsync(directory, "status", "--porcelain=v1", "--untracked-files=all"),
            await TempRepo.GitInAsync(directory, "ls-files", "--stage"),
            string.Join('\n', files));
    }
}
