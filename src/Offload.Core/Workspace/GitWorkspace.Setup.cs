namespace Offload.Workspace;

/// <summary>
/// What a repository's <c>setup</c> commands made in a new worktree (<c>node_modules/</c> from <c>npm ci</c> in a
/// repository that does not ignore it) is never committed: its paths are recorded once setup has run, in the
/// repository's git dir (<c>offload/setup-created/&lt;worktree&gt;</c>, which the sandbox keeps read-only), and every
/// <c>git add</c>, status and "uncommitted work" check Offload makes in that worktree leaves them out.
/// </summary>
public sealed partial class GitWorkspace
{
    /// <summary>Records the untracked paths (not ignored; a new folder as one path) now in the worktree as setup's; returns them.</summary>
    public async Task<IReadOnlyList<string>> RecordSetupCreatedAsync(string repoRoot, string worktree, string branch, CancellationToken cancellationToken = default)
    {
        var git = await OpenTaskAsync(repoRoot, worktree, branch, cancellationToken);
        var created = Git.SplitZ(await Git.OutputAsync(
                git.Worktree, ["ls-files", "-z", "--others", "--exclude-standard", "--directory"], git.Environment, cancellationToken: cancellationToken))
            .Select(path => path.TrimEnd('/'))
            .Where(path => path.Length > 0)
            .Order(StringComparer.Ordinal)
            .ToList();
        var file = SetupCreatedFile(git.CommonDir, git.Worktree);
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        await File.WriteAllTextAsync(file, string.Concat(created.Select(path => path + "\0")), cancellationToken);
        return created;
    }

    /// <summary>Setup's paths in the worktree at <paramref name="worktree"/> of <paramref name="repoRoot"/>; none when setup made none.</summary>
    public static async Task<IReadOnlyList<string>> SetupCreatedAsync(string repoRoot, string worktree, CancellationToken cancellationToken = default) =>
        ReadSetupCreated(SetupCreatedFile((await GitDirsAsync(repoRoot, cancellationToken)).CommonDir, Path.GetFullPath(worktree)));

    /// <summary>Whether <paramref name="path"/> (relative to the worktree) is one of <paramref name="created"/> or inside one.</summary>
    public static bool IsSetupCreated(IReadOnlyList<string> created, string path) =>
        created.Any(c => path == c || path.StartsWith(c + "/", StringComparison.Ordinal));

    /// <summary>Pathspecs that leave setup's paths out of a git command run at the worktree's top (after a positive <c>.</c>).</summary>
    private static IEnumerable<string> SetupExclusions(TaskGit git) =>
        ReadSetupCreated(SetupCreatedFile(git.CommonDir, git.Worktree)).Select(path => $":(exclude,literal,top){path}");

    private static string SetupCreatedFile(string commonDir, string worktree) =>
        Path.Combine(commonDir, "offload", "setup-created", Path.GetFileName(Path.TrimEndingDirectorySeparator(worktree)));

    private static void ForgetSetupCreated(string commonDir, string worktree)
    {
        var file = SetupCreatedFile(commonDir, worktree);
        if (File.Exists(file))
        {
            File.Delete(file);
        }
    }

    private static List<string> ReadSetupCreated(string file) =>
        File.Exists(file) ? [.. File.ReadAllText(file).Split('\0', StringSplitOptions.RemoveEmptyEntries)] : [];
}
