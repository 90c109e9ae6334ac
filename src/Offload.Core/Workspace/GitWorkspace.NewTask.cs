namespace Offload.Workspace;

public sealed partial class GitWorkspace
{
    /// <summary>
    /// <see cref="ResolveRepoAsync"/> for a new task, in one git process when all is well, with the repository's
    /// common directory, so that whether the new task's branch is taken can be looked up without another git
    /// process (<see cref="LocalBranchExists"/>). Anything unusual (an error to explain, a HEAD that is neither a
    /// branch nor a commit) takes the step-by-step way, and then <see cref="NewTaskRepo.CommonDir"/> is null.
    /// </summary>
    public async Task<NewTaskRepo> ResolveForNewTaskAsync(string path, string? baseRef, CancellationToken cancellationToken = default)
    {
        var full = Path.GetFullPath(path);
        var wanted = string.IsNullOrWhiteSpace(baseRef) ? "HEAD" : baseRef.Trim();
        if (Directory.Exists(full) && !wanted.StartsWith('-'))
        {
            var result = await Git.RunAsync(
                full,
                ["rev-parse", "--show-toplevel", "--path-format=absolute", "--git-common-dir",
                 "HEAD^{commit}", wanted + "^{commit}", "--symbolic-full-name", "HEAD"],
                cancellationToken: cancellationToken);
            var lines = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            if (result.Ok && lines.Length == 5 && Path.IsPathRooted(lines[0]) && Path.IsPathRooted(lines[1])
                && IsObjectName(lines[2]) && IsObjectName(lines[3])
                && (lines[4] == "HEAD" || lines[4].StartsWith("refs/heads/", StringComparison.Ordinal)))
            {
                var currentBranch = lines[4] == "HEAD" ? null : lines[4]["refs/heads/".Length..];
                var name = wanted == "HEAD" ? currentBranch ?? lines[3] : wanted;
                return new NewTaskRepo(new RepoInfo(lines[0], name, lines[3], currentBranch), lines[1]);
            }
        }

        return new NewTaskRepo(await ResolveRepoAsync(path, baseRef, cancellationToken), null);
    }

    /// <summary>
    /// Whether local branch <paramref name="branch"/> exists, read from the files of the common directory (a loose
    /// ref, or a line of packed-refs) without starting git; null when the repository keeps its refs otherwise
    /// (reftable), and git must be asked.
    /// </summary>
    public static bool? LocalBranchExists(string commonDir, string branch)
    {
        if (Directory.Exists(Path.Combine(commonDir, "reftable")))
        {
            return null;
        }

        var refName = "refs/heads/" + branch;
        if (File.Exists(Path.Combine(commonDir, refName)))
        {
            return true;
        }

        try
        {
            // "<object> <refname>" lines; a ref is never both loose-deleted and packed (deleting rewrites packed-refs).
            var packed = File.ReadAllText(Path.Combine(commonDir, "packed-refs"));
            return packed.Contains($" {refName}\n", StringComparison.Ordinal);
        }
        catch (FileNotFoundException)
        {
            return false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static bool IsObjectName(string text) => text.Length is 40 or 64 && text.All(char.IsAsciiHexDigitLower);
}
