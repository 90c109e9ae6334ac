namespace Offload.Workspace;

/// <summary>
/// A task's worktree as Offload's own git commands address it: the git dir and common dir Offload computed from the
/// repository (<c>&lt;common&gt;/worktrees/&lt;name&gt;</c>), never read from the worktree's <c>.git</c> file or the git
/// dir's <c>commondir</c>, which the agent could rewrite. Every git command on the worktree runs with
/// <see cref="Environment"/>: the three dirs explicit, and nothing the worktree could supply taking effect (no
/// fsmonitor, no recursion into a nested repository, hooks off as always; docs/sandbox.md).
/// </summary>
public sealed record TaskGit(string Worktree, string GitDir, string CommonDir, string Branch)
{
    public string BranchRef => "refs/heads/" + Branch;

    public string IndexFile => Path.Combine(GitDir, "index");

    public IReadOnlyDictionary<string, string> Environment { get; } = new Dictionary<string, string>
    {
        ["GIT_DIR"] = GitDir,
        ["GIT_WORK_TREE"] = Worktree,
        ["GIT_COMMON_DIR"] = CommonDir,
        // Command-line scope (above every config file, and passed on to any git that git starts).
        ["GIT_CONFIG_COUNT"] = "2",
        ["GIT_CONFIG_KEY_0"] = "core.fsmonitor",
        ["GIT_CONFIG_VALUE_0"] = "false",
        ["GIT_CONFIG_KEY_1"] = "submodule.recurse",
        ["GIT_CONFIG_VALUE_1"] = "false",
    };

    /// <summary><see cref="Environment"/> with another index file (a temporary one).</summary>
    public IReadOnlyDictionary<string, string> WithIndex(string indexFile) =>
        new Dictionary<string, string>(Environment) { ["GIT_INDEX_FILE"] = indexFile };

    /// <summary>
    /// The files in the worktree and its git dir that say where git's data is. The sandbox binds them read-only;
    /// <see cref="GitWorkspace.OpenTaskAsync"/> refuses a worktree where they say anything else than Offload computed.
    /// </summary>
    public IReadOnlyList<string> PointerFiles =>
        GitDir == CommonDir ? [] :
        [Path.Combine(Worktree, ".git"), Path.Combine(GitDir, "gitdir"), Path.Combine(GitDir, "commondir"), Path.Combine(GitDir, "config.worktree")];
}

public sealed partial class GitWorkspace
{
    /// <summary>Settings git itself writes into a linked worktree's <c>config.worktree</c> (sparse checkout).</summary>
    private static readonly string[] WorktreeConfigGitWrites = ["core.sparsecheckout", "core.sparsecheckoutcone", "index.sparse"];

    /// <summary>
    /// The task's worktree with its git dir computed from the repository at <paramref name="repoRoot"/> (the registration
    /// whose <c>gitdir</c> names this worktree), after checking that the worktree's own git files still say the same:
    /// the worktree is a folder, its <c>.git</c> a file naming that git dir, <c>commondir</c> the repository, HEAD the
    /// task's branch, and a <c>config.worktree</c> git reads holds nothing the repository's own does not. Anything else
    /// is a <see cref="WorkspaceErrors.Tampered"/> error, and nothing is followed.
    /// </summary>
    public static async Task<TaskGit> OpenTaskAsync(string repoRoot, string worktree, string branch, CancellationToken cancellationToken = default)
    {
        var dirs = await GitDirsAsync(repoRoot, cancellationToken);
        var common = Path.TrimEndingDirectorySeparator(dirs.CommonDir);
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(worktree));
        var ownCheckout = full == Path.TrimEndingDirectorySeparator(Path.GetFullPath(repoRoot)) && Path.TrimEndingDirectorySeparator(dirs.GitDir) == common;
        var gitDir = ownCheckout ? common : RegistrationOf(common, full);
        var git = new TaskGit(full, gitDir ?? Path.Combine(common, "worktrees", Path.GetFileName(full)), common, branch);
        var problem = gitDir is null
            ? $"no registration in {Path.Combine(common, "worktrees")} names {Path.Combine(full, ".git")} (its gitdir file was changed or removed)"
            : await ProblemAsync(git, ownCheckout, cancellationToken);
        if (problem is not null)
        {
            throw await TamperedAsync(git, problem, cancellationToken);
        }

        return git;
    }

    /// <summary>The registration <c>&lt;common&gt;/worktrees/&lt;name&gt;[n]</c> whose <c>gitdir</c> names the worktree's <c>.git</c>.</summary>
    private static string? RegistrationOf(string common, string worktree)
    {
        var registry = Path.Combine(common, "worktrees");
        var name = Path.GetFileName(worktree);
        var expected = Path.Combine(worktree, ".git");
        var candidates = new[] { Path.Combine(registry, name) }.Concat(
            Directory.Exists(registry)
                ? Directory.EnumerateDirectories(registry, name + "*").Where(d => Path.GetFileName(d)[name.Length..].All(char.IsAsciiDigit)).Order(StringComparer.Ordinal)
                : []);
        foreach (var candidate in candidates)
        {
            var gitdirFile = Path.Combine(candidate, "gitdir");
            if (IsPlainFile(gitdirFile) && SamePath(Path.GetFullPath(File.ReadAllText(gitdirFile).Trim(), candidate), expected))
            {
                return candidate;
            }
        }

        return null;
    }

    private static async Task<string?> ProblemAsync(TaskGit git, bool ownCheckout, CancellationToken cancellationToken)
    {
        if (new DirectoryInfo(git.Worktree).LinkTarget is { } link)
        {
            return $"the worktree {git.Worktree} was replaced by a symbolic link to {link}";
        }

        var dotGit = Path.Combine(git.Worktree, ".git");
        if (!ownCheckout)
        {
            if (!IsPlainFile(dotGit))
            {
                return $"{dotGit} was replaced or removed ({Describe(dotGit)}; Offload wrote a file naming {git.GitDir})";
            }

            var pointer = File.ReadAllText(dotGit).Trim();
            if (!pointer.StartsWith("gitdir: ", StringComparison.Ordinal) || !SamePath(Path.GetFullPath(pointer["gitdir: ".Length..].Trim(), git.Worktree), git.GitDir))
            {
                return $"{dotGit} was rewritten to point elsewhere (it reads \"{Shorten(pointer)}\"; Offload wrote \"gitdir: {git.GitDir}\")";
            }

            var commondir = Path.Combine(git.GitDir, "commondir");
            var common = IsPlainFile(commondir) ? File.ReadAllText(commondir).Trim() : null;
            if (common is null || !SamePath(Path.GetFullPath(common, git.GitDir), git.CommonDir))
            {
                return $"{commondir} was changed ({(common is null ? Describe(commondir) : $"it reads \"{Shorten(common)}\"")}; it must name {git.CommonDir})";
            }
        }

        var headFile = Path.Combine(git.GitDir, "HEAD");
        var head = IsPlainFile(headFile) ? File.ReadAllText(headFile).Trim() : null;
        if (head != "ref: " + git.BranchRef)
        {
            return $"HEAD of the worktree no longer names the task's branch ({(head is null ? Describe(headFile) : $"{headFile} reads \"{Shorten(head)}\"")}; it must read \"ref: {git.BranchRef}\")";
        }

        return ownCheckout ? null : await WorktreeConfigProblemAsync(git, cancellationToken);
    }

    /// <summary>
    /// A <c>config.worktree</c> is read when the repository sets <c>extensions.worktreeConfig</c>: it may then hold only
    /// what <c>git worktree add</c> copies from the repository's own (and git's sparse-checkout settings).
    /// </summary>
    private static async Task<string?> WorktreeConfigProblemAsync(TaskGit git, CancellationToken cancellationToken)
    {
        var file = Path.Combine(git.GitDir, "config.worktree");
        var absent = !File.Exists(file) && !Directory.Exists(file);
        if (absent || (IsPlainFile(file) && File.ReadAllText(file).Trim().Length == 0))
        {
            return null;
        }

        var repository = Path.Combine(git.CommonDir, "config");
        if (!File.ReadAllText(repository).Contains("worktreeconfig", StringComparison.OrdinalIgnoreCase))
        {
            return null; // git does not read it
        }

        var own = await ConfigEntriesAsync(git.CommonDir, file, cancellationToken);
        var allowed = await ConfigEntriesAsync(git.CommonDir, Path.Combine(git.CommonDir, "config.worktree"), cancellationToken) ?? [];
        var extra = own?.Where(e => !allowed.Contains(e) && !WorktreeConfigGitWrites.Contains(e.Split('\n')[0])).ToList();
        return extra is { Count: 0 } ? null
            : $"{file} sets what the repository's config does not ({(extra is null ? "it does not parse" : string.Join(", ", extra.Select(e => e.Split('\n')[0])))})";
    }

    /// <summary>The "name\nvalue" entries of one config file, read by git as data (no includes); null when it does not parse.</summary>
    private static async Task<HashSet<string>?> ConfigEntriesAsync(string commonDir, string file, CancellationToken cancellationToken)
    {
        if (!IsPlainFile(file))
        {
            return File.Exists(file) || Directory.Exists(file) ? null : [];
        }

        var listed = await Git.RunAsync(commonDir, ["config", "--no-includes", "--file", file, "--list", "-z"], new Dictionary<string, string> { ["GIT_DIR"] = commonDir }, cancellationToken: cancellationToken);
        return listed.Ok ? Git.SplitZ(listed.Stdout).ToHashSet(StringComparer.Ordinal) : null;
    }

    /// <summary>The task error for a worktree whose git files changed: what changed, and where the work saved so far is.</summary>
    private static async Task<WorkspaceException> TamperedAsync(TaskGit git, string problem, CancellationToken cancellationToken)
    {
        // Asked of the repository's own git dir, which the agent cannot write.
        var tip = await TryResolveCommitAsync(git.CommonDir, git.BranchRef, cancellationToken);
        var saved = tip is null ? $"branch {git.Branch} is gone" : $"branch {git.Branch} is at {tip[..12]}";
        if (TaskIdOf(git.Branch) is { } taskId && await ReadCheckpointRefsAsync(git.CommonDir, taskId, cancellationToken) is [.., var (turn, sha, _)])
        {
            saved += $", its last checkpoint is turn {turn} ({CheckpointRef(taskId, turn)}, {sha[..12]})";
        }

        return new WorkspaceException(
            WorkspaceErrors.Tampered,
            $"the task's git files were changed from inside its worktree: {problem}. Offload did not follow them and did not commit the worktree. "
            + $"The work saved so far is safe: {saved}; see it with `git log -p {git.Branch}`. Look at the worktree {git.Worktree} before you remove it.");
    }

    /// <summary>
    /// The index's entries, checked: a path that leaves the worktree is refused (a later checkout or reset would write
    /// or delete there); returned are the gitlinks whose folder holds a repository, which <see cref="DropNestedRepositoriesAsync"/> removes.
    /// </summary>
    private static async Task<List<string>> NestedRepositoriesAsync(TaskGit git, IReadOnlyDictionary<string, string> environment, CancellationToken cancellationToken)
    {
        var nested = new List<string>();
        foreach (var entry in Git.SplitZ(await Git.OutputAsync(git.Worktree, ["ls-files", "--stage", "-z"], environment, cancellationToken: cancellationToken)))
        {
            var tab = entry.IndexOf('\t', StringComparison.Ordinal);
            var path = entry[(tab + 1)..];
            if (path.StartsWith('/') || path.Split('/').Any(part => part is "" or "." or ".." || part.Equals(".git", StringComparison.OrdinalIgnoreCase)))
            {
                throw await TamperedAsync(git, $"the worktree's index names the path \"{Shorten(path)}\", which is not inside the worktree", cancellationToken);
            }

            if (entry.StartsWith("160000 ", StringComparison.Ordinal) && Path.Exists(Path.Combine(git.Worktree, path, ".git")))
            {
                nested.Add(path);
            }
        }

        return nested;
    }

    /// <summary>
    /// Takes the gitlinks of nested repositories out of the index before <c>git add -A</c>, which would otherwise run
    /// <c>git status</c> inside each with that repository's own config (filters, fsmonitor: written by the agent).
    /// Added again, a nested repository is read for its HEAD only.
    /// </summary>
    private static async Task DropNestedRepositoriesAsync(TaskGit git, IReadOnlyDictionary<string, string> environment, CancellationToken cancellationToken)
    {
        var nested = await NestedRepositoriesAsync(git, environment, cancellationToken);
        if (nested.Count > 0)
        {
            await Git.OutputAsync(
                git.Worktree, ["update-index", "-z", "--force-remove", "--stdin"], environment, string.Join('\0', nested) + "\0", cancellationToken);
        }
    }

    /// <summary>
    /// <c>git add -A</c> as Offload runs it: nested repositories' gitlinks out of the index first
    /// (<see cref="DropNestedRepositoriesAsync"/>), and nested repositories with no commit left out (git cannot record
    /// them, and would fail the whole add). Returns those left out, to say so (<see cref="NotCommitted"/>).
    /// </summary>
    private static async Task<List<string>> AddAllAsync(TaskGit git, IReadOnlyDictionary<string, string> environment, CancellationToken cancellationToken)
    {
        await DropNestedRepositoriesAsync(git, environment, cancellationToken);
        var untracked = Git.SplitZ(await Git.OutputAsync(
            git.Worktree, ["ls-files", "-z", "--others", "--exclude-standard", "--directory", "--no-empty-directory"], environment, cancellationToken: cancellationToken));
        var withoutCommit = untracked
            .Where(path => path.EndsWith('/') && Path.Exists(Path.Combine(git.Worktree, path, ".git")) && !HasCommit(Path.Combine(git.Worktree, path)))
            .Select(path => path.TrimEnd('/'))
            .ToList();
        await Git.OutputAsync(
            git.Worktree, ["add", "-A", "--", ".", .. withoutCommit.Select(path => $":(exclude,literal,top){path}"), .. SetupExclusions(git)], environment, cancellationToken: cancellationToken);
        return withoutCommit;
    }

    /// <summary>The commit message's note on what <see cref="AddAllAsync"/> left out, or nothing.</summary>
    private static string NotCommitted(List<string> left) => left.Count == 0
        ? ""
        : "\n\nNot committed (git repositories inside the worktree with no commit of their own; their files are still in the worktree):\n"
          + string.Concat(left.Select(path => $"  {path}/\n"));

    /// <summary>
    /// Whether the repository in <paramref name="dir"/> has a commit checked out, read from its files (its HEAD and refs),
    /// never by running git there, which would read its config: the agent wrote it.
    /// </summary>
    private static bool HasCommit(string dir)
    {
        try
        {
            var dotGit = Path.Combine(dir, ".git");
            var gitDir = Directory.Exists(dotGit) ? dotGit
                : File.ReadAllText(dotGit).Trim() is var pointer && pointer.StartsWith("gitdir:", StringComparison.Ordinal)
                    ? Path.GetFullPath(pointer["gitdir:".Length..].Trim(), dir)
                    : null;
            if (gitDir is null || !File.Exists(Path.Combine(gitDir, "HEAD")))
            {
                return false;
            }

            var head = File.ReadAllText(Path.Combine(gitDir, "HEAD")).Trim();
            if (!head.StartsWith("ref:", StringComparison.Ordinal))
            {
                return head.Length >= 40 && head.All(char.IsAsciiHexDigit);
            }

            var name = head["ref:".Length..].Trim();
            var common = File.Exists(Path.Combine(gitDir, "commondir"))
                ? Path.GetFullPath(File.ReadAllText(Path.Combine(gitDir, "commondir")).Trim(), gitDir)
                : gitDir;
            return new[] { gitDir, common }.Any(d => File.Exists(Path.Combine(d, name))
                || File.Exists(Path.Combine(d, "packed-refs")) && File.ReadLines(Path.Combine(d, "packed-refs")).Any(l => l.EndsWith(" " + name, StringComparison.Ordinal)));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return false;
        }
    }

    /// <summary>Whether two absolute paths name the same place, once symbolic links are followed (git writes real paths).</summary>
    private static bool SamePath(string a, string b) =>
        Path.TrimEndingDirectorySeparator(a) == Path.TrimEndingDirectorySeparator(b) || RealPath(a) == RealPath(b);

    private static string RealPath(string path)
    {
        var parts = new Queue<string>(path.Split('/', StringSplitOptions.RemoveEmptyEntries));
        var real = "/";
        for (var links = 0; parts.TryDequeue(out var part);)
        {
            var next = Path.GetFullPath(Path.Combine(real, part));
            if (new FileInfo(next).LinkTarget is not { } target || ++links > 40)
            {
                real = next;
                continue;
            }

            parts = new Queue<string>(Path.GetFullPath(target, real).Split('/', StringSplitOptions.RemoveEmptyEntries).Concat(parts));
            real = "/";
        }

        return real;
    }

    private static bool IsPlainFile(string path) => File.Exists(path) && new FileInfo(path).LinkTarget is null;

    private static string Describe(string path)
    {
        var info = new FileInfo(path);
        return info.LinkTarget is { } target ? $"it is now a symbolic link to {target}"
            : Directory.Exists(path) ? "it is now a folder"
            : info.Exists ? "it is no longer a plain file"
            : "it is missing";
    }

    private static string Shorten(string text) => (text.Length > 200 ? text[..200] + "…" : text).Replace('\n', ' ');
}
