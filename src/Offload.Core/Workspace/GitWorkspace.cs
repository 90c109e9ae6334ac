using System.Text;

namespace Offload.Workspace;

/// <summary>
/// Git worktrees and branches for tasks, through the <c>git</c> CLI: each task gets a worktree on
/// branch <c>offload/&lt;id&gt;-&lt;slug&gt;</c>; its turns are checkpointed on hidden refs; its changes reach
/// the user's own tree only through <see cref="MergeAsync"/> or <see cref="ApplyAsync"/>, which refuse
/// rather than leave anything half done. Nothing here writes to the user's working tree, index or
/// HEAD except those two.
/// </summary>
public sealed partial class GitWorkspace
{
    public const string BranchPrefix = "offload/";
    public const string WorktreeIncludeFile = ".worktreeinclude";
    private const int MaxSlugLength = 30;

    /// <summary>The identity of commits Offload makes on task branches and checkpoint refs.</summary>
    private static readonly Dictionary<string, string> OffloadIdentity = new()
    {
        ["GIT_AUTHOR_NAME"] = "Offload",
        ["GIT_AUTHOR_EMAIL"] = "offload@localhost",
        ["GIT_COMMITTER_NAME"] = "Offload",
        ["GIT_COMMITTER_EMAIL"] = "offload@localhost",
    };

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, SemaphoreSlim> WorktreeGates = new(StringComparer.Ordinal);

    public static string BranchName(long taskId, string slug) => $"{BranchPrefix}{taskId}-{slug}";

    public async Task<RepoInfo> ResolveRepoAsync(string path, string? baseRef, CancellationToken cancellationToken = default)
    {
        var full = Path.GetFullPath(path);
        if (!Directory.Exists(full))
        {
            throw new WorkspaceException(
                WorkspaceErrors.NotARepo,
                $"not a git repository: {full} does not exist. Run offload from inside a git repository.");
        }

        var top = await Git.RunAsync(full, ["rev-parse", "--show-toplevel"], cancellationToken: cancellationToken);
        if (!top.Ok || top.Stdout.Trim().Length == 0)
        {
            throw new WorkspaceException(
                WorkspaceErrors.NotARepo,
                $"not a git repository: {full}. Run offload from inside a git repository, "
                + "or `git init && git commit --allow-empty -m init` first.");
        }

        var root = top.Stdout.Trim();
        if (await TryResolveCommitAsync(root, "HEAD", cancellationToken) is null)
        {
            throw new WorkspaceException(
                WorkspaceErrors.NoCommits,
                $"the repository at {root} has no commits yet, so there is nothing to base a task on. "
                + "Commit something first, e.g. `git commit --allow-empty -m init`.");
        }

        var branch = await Git.RunAsync(root, ["symbolic-ref", "-q", "--short", "HEAD"], cancellationToken: cancellationToken);
        var currentBranch = branch.Ok ? branch.Stdout.Trim() : null;

        var wanted = string.IsNullOrWhiteSpace(baseRef) ? "HEAD" : baseRef.Trim();
        var commit = await TryResolveCommitAsync(root, wanted, cancellationToken)
            ?? throw new WorkspaceException(
                WorkspaceErrors.BadBase,
                $"base `{wanted}` is not a commit in {root}. Check the name with `git rev-parse --verify {wanted}`, "
                + $"or fetch it first (`git fetch origin {wanted}`).");

        var name = wanted == "HEAD" ? currentBranch ?? commit : wanted;
        return new RepoInfo(root, name, commit, currentBranch);
    }

    /// <summary>A branch- and folder-safe name for a task: lowercase ASCII words joined by '-', never empty.</summary>
    public static string Slug(string title)
    {
        var words = new List<string>();
        var word = new StringBuilder();
        foreach (var c in title ?? "")
        {
            if (char.IsAsciiLetterOrDigit(c))
            {
                word.Append(char.ToLowerInvariant(c));
            }
            else if (word.Length > 0)
            {
                words.Add(word.ToString());
                word.Clear();
            }
        }

        if (word.Length > 0)
        {
            words.Add(word.ToString());
        }

        var slug = new StringBuilder();
        foreach (var w in words)
        {
            var needed = slug.Length == 0 ? w.Length : slug.Length + 1 + w.Length;
            if (needed > MaxSlugLength)
            {
                if (slug.Length == 0)
                {
                    slug.Append(w, 0, MaxSlugLength);
                }

                break;
            }

            if (slug.Length > 0)
            {
                slug.Append('-');
            }

            slug.Append(w);
        }

        return slug.Length == 0 ? "task" : slug.ToString();
    }

    /// <summary>
    /// Creates branch <c>offload/&lt;id&gt;-&lt;slug&gt;</c> at <paramref name="baseCommit"/> and its worktree at
    /// <c>&lt;worktreesDir&gt;/&lt;id&gt;-&lt;slug&gt;</c>, then copies the ignored files <c>.worktreeinclude</c> names.
    /// Refuses, changing nothing, when the branch or the folder already exists. The folder appears only once it
    /// is complete, so a folder that exists is a worktree that is ready.
    /// </summary>
    public async Task<WorktreeInfo> CreateWorktreeAsync(
        string repoRoot, string worktreesDir, long taskId, string slug, string baseCommit, CancellationToken cancellationToken = default)
    {
        var name = $"{taskId}-{slug}";
        var branch = BranchPrefix + name;
        var path = Path.GetFullPath(Path.Combine(worktreesDir, name));

        if (Directory.Exists(path) || File.Exists(path))
        {
            throw new WorkspaceException(
                WorkspaceErrors.WorktreeExists,
                $"worktree folder {path} already exists, so task {taskId} cannot use it. "
                + $"Remove it (`git worktree remove --force {path}` or delete the folder) if it is left over.");
        }

        Directory.CreateDirectory(worktreesDir);
        var dirs = await GitDirsAsync(repoRoot, cancellationToken);
        return dirs.NeedsWorktreeAdd
            ? await AddWorktreeOneAtATimeAsync(repoRoot, path, branch, baseCommit, taskId, cancellationToken)
            : await CreateWorktreeDirectlyAsync(repoRoot, dirs, path, branch, baseCommit, taskId, cancellationToken);
    }

    /// <summary>
    /// The general way, through <c>git worktree add</c>, for repositories whose worktrees need more than the direct
    /// way writes (sparse checkout, per-worktree config, reftable). Concurrent <c>git worktree add</c>s in one
    /// repository read each other's half-written metadata and fail ("failed to read .git/worktrees/…/commondir"),
    /// and a prune could drop a neighbour's: one at a time.
    /// </summary>
    private async Task<WorktreeInfo> AddWorktreeOneAtATimeAsync(
        string repoRoot, string path, string branch, string baseCommit, long taskId, CancellationToken cancellationToken)
    {
        if (await BranchExistsAsync(repoRoot, branch, cancellationToken))
        {
            throw BranchTaken(repoRoot, branch, taskId);
        }

        if (await TryResolveCommitAsync(repoRoot, baseCommit, cancellationToken) is null)
        {
            throw BaseMissing(repoRoot, baseCommit);
        }

        var gate = WorktreeGates.GetOrAdd(Path.GetFullPath(repoRoot), _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        GitResult result;
        try
        {
            result = await AddWorktreeAsync(repoRoot, branch, path, baseCommit, cancellationToken);
            if (!result.Ok && IsStaleRegistration(result.Stderr))
            {
                await Git.RunAsync(repoRoot, ["worktree", "unlock", path], cancellationToken: cancellationToken);
                await Git.OutputAsync(repoRoot, ["worktree", "prune"], cancellationToken: cancellationToken);
                result = await AddWorktreeAsync(repoRoot, branch, path, baseCommit, cancellationToken);
            }
        }
        finally
        {
            gate.Release();
        }

        if (!result.Ok)
        {
            throw new WorkspaceException(
                WorkspaceErrors.GitFailed,
                $"could not create the worktree for task {taskId} at {path}: {result.Stderr.Trim()}. "
                + "Run `git worktree prune` in the repository and try again.");
        }

        try
        {
            var copied = await CopyWorktreeIncludesAsync(repoRoot, path, cancellationToken);
            return new WorktreeInfo(path, branch, baseCommit, copied);
        }
        catch
        {
            // A half-prepared worktree is worse than none: the task can be started again cleanly.
            await RemoveWorktreeAsync(repoRoot, path, branch, deleteBranch: true, CancellationToken.None);
            throw;
        }
    }

    private static WorkspaceException BranchTaken(string repoRoot, string branch, long taskId) =>
        new(
            WorkspaceErrors.BranchExists,
            $"branch {branch} already exists in {repoRoot}, so task {taskId} cannot use it. "
            + $"Delete it with `git branch -D {branch}` if it is left over, or discard the task that owns it.");

    private static WorkspaceException BaseMissing(string repoRoot, string baseCommit) =>
        new(
            WorkspaceErrors.BadBase,
            $"base commit {baseCommit} is not in {repoRoot}. Start the task again from a commit that exists.");

    /// <summary>
    /// Stages everything in the task's worktree (ignored files stay out) and commits it as Offload onto
    /// <c>refs/heads/&lt;branch&gt;</c> itself (<c>write-tree</c>, <c>commit-tree</c>, <c>update-ref</c> from the tip it read),
    /// whatever the worktree's files say (<see cref="OpenTaskAsync"/> refuses a worktree whose git files changed).
    /// Returns the new commit, or null when there was nothing to commit.
    /// </summary>
    public async Task<string?> CommitAllAsync(string repoRoot, string worktree, string branch, string message, CancellationToken cancellationToken = default)
    {
        var git = await OpenTaskAsync(repoRoot, worktree, branch, cancellationToken);
        var env = git.Environment;
        // Most runs end with nothing new since the last commit: one read-only git process says so (status takes no lock
        // and writes nothing, GIT_OPTIONAL_LOCKS=0). Untracked files count, whatever status.showUntrackedFiles says;
        // a nested repository counts by its HEAD (=dirty: git would otherwise run status inside it, with its config).
        var status = await Git.OutputAsync(
            worktree, ["status", "--porcelain", "-z", "--untracked-files=all", "--ignore-submodules=dirty", "--", ".", .. SetupExclusions(git)], env, cancellationToken: cancellationToken);
        if (status.Length == 0)
        {
            return null;
        }

        var left = await AddAllAsync(git, env, cancellationToken);
        var tree = (await Git.OutputAsync(worktree, ["write-tree"], env, cancellationToken: cancellationToken)).Trim();
        var tip = (await Git.OutputAsync(worktree, ["rev-parse", git.BranchRef, git.BranchRef + "^{tree}"], env, cancellationToken: cancellationToken))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (tip[1] == tree)
        {
            return null;
        }

        var commit = (await Git.OutputAsync(
            worktree, ["-c", "commit.gpgsign=false", "commit-tree", tree, "-p", tip[0], "-m", message + NotCommitted(left)], WithIdentity(env), cancellationToken: cancellationToken)).Trim();
        await Git.OutputAsync(worktree, ["update-ref", "-m", "offload: commit the task's worktree", git.BranchRef, commit, tip[0]], env, cancellationToken: cancellationToken);
        return commit;
    }

    private static Dictionary<string, string> WithIdentity(IReadOnlyDictionary<string, string> environment)
    {
        var combined = new Dictionary<string, string>(environment);
        foreach (var (name, value) in OffloadIdentity)
        {
            combined[name] = value;
        }

        return combined;
    }

    /// <summary>The task's changes as a unified diff: what <paramref name="branch"/> changed since <paramref name="baseCommit"/>.</summary>
    public async Task<string> DiffAsync(string repoRoot, string baseCommit, string branch, CancellationToken cancellationToken = default)
    {
        await RequireCommitAsync(repoRoot, branch, cancellationToken);
        return await Git.OutputAsync(
            repoRoot,
            ["diff", "--no-color", "--no-ext-diff", "-M", "--src-prefix=a/", "--dst-prefix=b/", $"{baseCommit}...{branch}", "--"],
            cancellationToken: cancellationToken);
    }

    /// <summary>How branch <paramref name="to"/> differs from branch <paramref name="from"/>: two tasks' work side by side.</summary>
    public async Task<string> DiffBetweenAsync(string repoRoot, string from, string to, CancellationToken cancellationToken = default)
    {
        await RequireCommitAsync(repoRoot, from, cancellationToken);
        await RequireCommitAsync(repoRoot, to, cancellationToken);
        return await Git.OutputAsync(
            repoRoot,
            ["diff", "--no-color", "--no-ext-diff", "-M", "--src-prefix=a/", "--dst-prefix=b/", "refs/heads/" + from, "refs/heads/" + to, "--"],
            cancellationToken: cancellationToken);
    }

    /// <summary>
    /// The files the task changed, with lines added and deleted (0/0 for binary files). Change is one of
    /// <c>added</c>, <c>modified</c>, <c>deleted</c>, <c>renamed</c>, <c>copied</c>, <c>type_changed</c>.
    /// </summary>
    public async Task<IReadOnlyList<Protocol.ChangedFile>> ChangedFilesAsync(
        string repoRoot, string baseCommit, string branch, CancellationToken cancellationToken = default)
    {
        await RequireCommitAsync(repoRoot, branch, cancellationToken);
        var range = $"{baseCommit}...{branch}";
        var numstat = Git.SplitZ(await Git.OutputAsync(
            repoRoot, ["diff", "--no-ext-diff", "-M", "--numstat", "-z", range, "--"], cancellationToken: cancellationToken));
        var nameStatus = Git.SplitZ(await Git.OutputAsync(
            repoRoot, ["diff", "--no-ext-diff", "-M", "--name-status", "-z", range, "--"], cancellationToken: cancellationToken));

        var counts = new Dictionary<string, (int Added, int Deleted)>(StringComparer.Ordinal);
        for (var i = 0; i < numstat.Length; i++)
        {
            // "added\tdeleted\tpath", or for a rename "added\tdeleted\t" followed by old and new path fields.
            var parts = numstat[i].Split('\t');
            var path = parts[2].Length > 0 ? parts[2] : numstat[i += 2];
            counts[path] = (ParseCount(parts[0]), ParseCount(parts[1]));
        }

        var files = new List<Protocol.ChangedFile>();
        for (var i = 0; i < nameStatus.Length; i++)
        {
            var status = nameStatus[i];
            var path = nameStatus[++i];
            if (status[0] is 'R' or 'C')
            {
                path = nameStatus[++i];
            }

            var (added, deleted) = counts.GetValueOrDefault(path);
            files.Add(new Protocol.ChangedFile(path, added, deleted, ChangeName(status[0])));
        }

        return files;
    }

    /// <summary>Bytes used by the files under <paramref name="path"/>, not following symbolic links.</summary>
    public static long DiskUsage(string path)
    {
        if (!Directory.Exists(path))
        {
            return File.Exists(path) ? new FileInfo(path).Length : 0;
        }

        long total = 0;
        var pending = new Stack<DirectoryInfo>();
        pending.Push(new DirectoryInfo(path));
        while (pending.Count > 0)
        {
            var directory = pending.Pop();
            IEnumerable<FileSystemInfo> entries;
            try
            {
                entries = directory.EnumerateFileSystemInfos();
            }
            catch (Exception e) when (e is UnauthorizedAccessException or DirectoryNotFoundException)
            {
                continue;
            }

            foreach (var entry in entries)
            {
                if (entry.LinkTarget is not null)
                {
                    continue;
                }

                if (entry is DirectoryInfo sub)
                {
                    pending.Push(sub);
                }
                else if (entry is FileInfo file)
                {
                    total += file.Length;
                }
            }
        }

        return total;
    }

    /// <summary>
    /// Removes the task's worktree (even with changes in it) and, when asked, its branch and checkpoint refs.
    /// Callers decide whether unmerged work may go (<see cref="IsMergedAsync"/>); this does not ask again.
    /// </summary>
    public async Task RemoveWorktreeAsync(string repoRoot, string worktree, string branch, bool deleteBranch, CancellationToken cancellationToken = default)
    {
        var full = Path.GetFullPath(worktree);
        // One removal at a time in a repository: `git worktree remove` reads every registered worktree and fails
        // ("Invalid path '…/.git/worktrees/…'") when a neighbour's removal or prune deletes one under it.
        var gate = WorktreeGates.GetOrAdd(Path.GetFullPath(repoRoot), _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        try
        {
            var removed = await Git.RunAsync(repoRoot, ["worktree", "remove", "--force", "--force", full], cancellationToken: cancellationToken);
            if (!removed.Ok && Directory.Exists(full))
            {
                throw Git.Failed(repoRoot, ["worktree", "remove", "--force", "--force", full], removed);
            }

            await Git.OutputAsync(repoRoot, ["worktree", "prune"], cancellationToken: cancellationToken);
            ForgetSetupCreated((await GitDirsAsync(repoRoot, cancellationToken)).CommonDir, full);
        }
        finally
        {
            gate.Release();
        }

        if (!deleteBranch)
        {
            return;
        }

        if (await BranchExistsAsync(repoRoot, branch, cancellationToken))
        {
            await Git.OutputAsync(repoRoot, ["branch", "-D", "--", branch], cancellationToken: cancellationToken);
        }

        if (TaskIdOf(branch) is { } taskId)
        {
            var refs = await Git.OutputAsync(
                repoRoot, ["for-each-ref", "--format=delete %(refname)", CheckpointPrefix(taskId)], cancellationToken: cancellationToken);
            if (refs.Length > 0)
            {
                await Git.OutputAsync(repoRoot, ["update-ref", "--stdin"], standardInput: refs, cancellationToken: cancellationToken);
            }
        }
    }

    /// <summary>Whether the branch's tip is reachable from some other local branch, i.e. its work is kept elsewhere.</summary>
    public async Task<bool> IsMergedAsync(string repoRoot, string branch, CancellationToken cancellationToken = default)
    {
        var tip = await RequireCommitAsync(repoRoot, branch, cancellationToken);
        var containing = await Git.OutputAsync(
            repoRoot, ["for-each-ref", "--format=%(refname)", "--contains", tip, "refs/heads/"], cancellationToken: cancellationToken);
        return containing.Split('\n', StringSplitOptions.RemoveEmptyEntries).Any(r => r != "refs/heads/" + branch);
    }

    private static async Task<GitResult> AddWorktreeAsync(string repoRoot, string branch, string path, string baseCommit, CancellationToken cancellationToken)
    {
        var added = await Git.RunAsync(repoRoot, ["worktree", "add", "--quiet", "-b", branch, path, baseCommit], cancellationToken: cancellationToken);
        if (!added.Ok && !Directory.Exists(path) && !added.Stderr.Contains("already exists", StringComparison.Ordinal))
        {
            // `worktree add -b` creates the branch before it checks the folder; do not leave it behind.
            await Git.RunAsync(repoRoot, ["branch", "-D", "--", branch], cancellationToken: CancellationToken.None);
        }

        return added;
    }

    private static bool IsStaleRegistration(string stderr) =>
        stderr.Contains("missing but already registered worktree", StringComparison.Ordinal)
        || stderr.Contains("missing but locked worktree", StringComparison.Ordinal)
        || stderr.Contains("already registered", StringComparison.Ordinal);

    private static async Task<IReadOnlyList<string>> CopyWorktreeIncludesAsync(string repoRoot, string worktree, CancellationToken cancellationToken)
    {
        var copied = new List<string>();
        foreach (var relative in await WorktreeIncludesAsync(repoRoot, cancellationToken))
        {
            var source = Path.Combine(repoRoot, relative);
            var target = Path.Combine(worktree, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            var info = new FileInfo(source);
            if (info.LinkTarget is { } linkTarget)
            {
                File.CreateSymbolicLink(target, linkTarget);
            }
            else if (info.Exists)
            {
                File.Copy(source, target, overwrite: false);
            }
            else
            {
                continue;
            }

            copied.Add(relative);
        }

        return copied;
    }

    /// <summary>The ignored files of the repository that <c>.worktreeinclude</c> names (relative paths, in order): what a new worktree gets copied.</summary>
    public static async Task<IReadOnlyList<string>> WorktreeIncludesAsync(string repoRoot, CancellationToken cancellationToken = default)
    {
        var includeFile = Path.Combine(repoRoot, WorktreeIncludeFile);
        if (!File.Exists(includeFile))
        {
            return [];
        }

        var candidates = Git.SplitZ(await Git.OutputAsync(
            repoRoot,
            ["ls-files", "-z", "--others", "--ignored", "--exclude-from=" + includeFile],
            cancellationToken: cancellationToken));
        if (candidates.Length == 0)
        {
            return [];
        }

        // Only files git itself ignores: a tracked or merely untracked file is the branch's business, not ours.
        var ignored = await Git.RunAsync(
            repoRoot,
            ["check-ignore", "-z", "--stdin"],
            standardInput: string.Join('\0', candidates) + "\0",
            cancellationToken: cancellationToken);
        if (ignored.ExitCode > 1)
        {
            throw Git.Failed(repoRoot, ["check-ignore", "-z", "--stdin"], ignored);
        }

        return [.. Git.SplitZ(ignored.Stdout).Order(StringComparer.Ordinal)];
    }

    private static async Task<bool> BranchExistsAsync(string repoRoot, string branch, CancellationToken cancellationToken) =>
        (await Git.RunAsync(repoRoot, ["show-ref", "--verify", "--quiet", "refs/heads/" + branch], cancellationToken: cancellationToken)).Ok;

    private static async Task<string?> TryResolveCommitAsync(string repoRoot, string name, CancellationToken cancellationToken)
    {
        if (name.Length == 0 || name.StartsWith('-'))
        {
            return null;
        }

        var result = await Git.RunAsync(repoRoot, ["rev-parse", "--verify", "--quiet", name + "^{commit}"], cancellationToken: cancellationToken);
        return result.Ok ? result.Stdout.Trim() : null;
    }

    private static async Task<string> RequireCommitAsync(string repoRoot, string name, CancellationToken cancellationToken) =>
        await TryResolveCommitAsync(repoRoot, name, cancellationToken)
        ?? throw new WorkspaceException(
            WorkspaceErrors.BranchMissing,
            $"`{name}` is not a branch or commit in {repoRoot}; the task's branch may have been deleted. "
            + "Check `git branch --list 'offload/*'`.");

    private static long? TaskIdOf(string branch)
    {
        if (!branch.StartsWith(BranchPrefix, StringComparison.Ordinal))
        {
            return null;
        }

        var rest = branch[BranchPrefix.Length..];
        var dash = rest.IndexOf('-', StringComparison.Ordinal);
        return long.TryParse(dash < 0 ? rest : rest[..dash], out var id) ? id : null;
    }

    private static int ParseCount(string count) => int.TryParse(count, out var n) ? n : 0;

    private static string ChangeName(char status) => status switch
    {
        'A' => "added",
        'D' => "deleted",
        'R' => "renamed",
        'C' => "copied",
        'T' => "type_changed",
        _ => "modified",
    };
}
