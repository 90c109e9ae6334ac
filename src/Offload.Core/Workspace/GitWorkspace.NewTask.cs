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
        if (wanted == "HEAD" && KnownRepos.TryGetValue(full, out var known) && ReadHead(known) is { } head)
        {
            return new NewTaskRepo(new RepoInfo(known.Root, head.Branch ?? head.Commit, head.Commit, head.Branch), known.CommonDir);
        }

        if (Directory.Exists(full) && !wanted.StartsWith('-'))
        {
            var result = await Git.RunAsync(
                full,
                ["rev-parse", "--show-toplevel", "--path-format=absolute", "--git-common-dir", "--git-dir",
                 "HEAD^{commit}", wanted + "^{commit}", "--symbolic-full-name", "HEAD"],
                cancellationToken: cancellationToken);
            var lines = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            if (result.Ok && lines.Length == 6 && Path.IsPathRooted(lines[0]) && Path.IsPathRooted(lines[1]) && Path.IsPathRooted(lines[2])
                && IsObjectName(lines[3]) && IsObjectName(lines[4])
                && (lines[5] == "HEAD" || lines[5].StartsWith("refs/heads/", StringComparison.Ordinal)))
            {
                KnownRepos[full] = new KnownRepo(lines[0], lines[1], lines[2]);
                var currentBranch = lines[5] == "HEAD" ? null : lines[5]["refs/heads/".Length..];
                var name = wanted == "HEAD" ? currentBranch ?? lines[4] : wanted;
                return new NewTaskRepo(new RepoInfo(lines[0], name, lines[4], currentBranch), lines[1]);
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

    /// <summary>
    /// Where a folder's repository is, as git said at its first task (top level, common and own git directory): what
    /// git found there, and checked (its ownership among it), does not change while the folder stays. What does change,
    /// HEAD, is read afresh for every task (<see cref="ReadHead"/>), so that a burst of tasks from one repository does
    /// not start a git process each.
    /// </summary>
    private sealed record KnownRepo(string Root, string CommonDir, string GitDir);

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, KnownRepo> KnownRepos = new(StringComparer.Ordinal);

    /// <summary>
    /// HEAD's commit and branch from the git directory's files: <c>HEAD</c> names a branch (its loose ref, or its line in
    /// packed-refs) or holds a commit (detached). Null for anything else — a reftable store, an unborn branch, a symbolic
    /// ref to a ref, an unreadable file — and then git is asked.
    /// </summary>
    private static (string Commit, string? Branch)? ReadHead(KnownRepo repo)
    {
        try
        {
            if (Directory.Exists(Path.Combine(repo.CommonDir, "reftable")))
            {
                return null;
            }

            var head = File.ReadAllText(Path.Combine(repo.GitDir, "HEAD")).Trim();
            if (IsObjectName(head))
            {
                return (head, null);
            }

            if (!head.StartsWith("ref: refs/heads/", StringComparison.Ordinal))
            {
                return null;
            }

            var refName = head["ref: ".Length..];
            var loose = Path.Combine(repo.CommonDir, refName);
            if (File.Exists(loose))
            {
                var commit = File.ReadAllText(loose).Trim();
                return IsObjectName(commit) ? (commit, refName["refs/heads/".Length..]) : null;
            }

            var packed = Path.Combine(repo.CommonDir, "packed-refs");
            if (!File.Exists(packed))
            {
                return null;
            }

            foreach (var line in File.ReadLines(packed))
            {
                if (line.Length > refName.Length + 1 && line.EndsWith(refName, StringComparison.Ordinal) && line[^(refName.Length + 1)] == ' '
                    && line[..^(refName.Length + 1)] is var commit && IsObjectName(commit))
                {
                    return (commit, refName["refs/heads/".Length..]);
                }
            }

            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static bool IsObjectName(string text) => text.Length is 40 or 64 && text.All(char.IsAsciiHexDigitLower);
}
