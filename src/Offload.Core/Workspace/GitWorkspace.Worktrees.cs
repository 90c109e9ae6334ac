using System.Collections.Concurrent;

namespace Offload.Workspace;

public sealed partial class GitWorkspace
{
    private const string CreatingMarker = "offload: creating this worktree";

    private static readonly ConcurrentDictionary<string, GitDirs> DirsByRepo = new(StringComparer.Ordinal);

    /// <summary>
    /// A repository's own git directory and its common directory (where <c>worktrees/</c> lives), and whether its
    /// worktrees need what only <c>git worktree add</c> does: copying sparse-checkout patterns or per-worktree
    /// config (git copies those since 2.37), or a reftable ref store (whose worktree HEAD is not a file).
    /// </summary>
    private sealed record GitDirs(string GitDir, string CommonDir)
    {
        public bool NeedsWorktreeAdd =>
            File.Exists(Path.Combine(GitDir, "info", "sparse-checkout"))
            || File.Exists(Path.Combine(GitDir, "config.worktree"))
            || Directory.Exists(Path.Combine(CommonDir, "reftable"));
    }

    private static async Task<GitDirs> GitDirsAsync(string repoRoot, CancellationToken cancellationToken)
    {
        var key = Path.GetFullPath(repoRoot);
        if (DirsByRepo.TryGetValue(key, out var known) && Directory.Exists(known.CommonDir) && Directory.Exists(known.GitDir))
        {
            return known;
        }

        var lines = (await Git.OutputAsync(
            key, ["rev-parse", "--path-format=absolute", "--git-dir", "--git-common-dir"], cancellationToken: cancellationToken))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (lines.Length != 2)
        {
            throw new WorkspaceException(WorkspaceErrors.NotARepo, $"not a git repository: {key}. Run offload from inside a git repository.");
        }

        return DirsByRepo[key] = new GitDirs(lines[0], lines[1]);
    }

    /// <summary>
    /// Makes the worktree of a task that has its branch again, after its folder was deleted (by <c>gc</c>, a cleanup
    /// script, a reboot's purge of the data folder): the branch checked out as it is, then, when
    /// <paramref name="checkpoint"/> is given, the files set to that checkpoint's (uncommitted, as they were). What git
    /// still has registered at the path is forgotten first. Refuses, changing nothing, while the branch is checked out
    /// in another worktree (the user's own checkout): two checkouts of one branch would each move it under the other.
    /// </summary>
    public async Task RecreateWorktreeAsync(
        string repoRoot, string worktree, string branch, long taskId, string? checkpoint, CancellationToken cancellationToken = default)
    {
        var path = Path.GetFullPath(worktree);
        if (Directory.Exists(path))
        {
            return;
        }

        var tip = await RequireCommitAsync(repoRoot, "refs/heads/" + branch, cancellationToken);
        if ((await ListWorktreesAsync(repoRoot, cancellationToken)).FirstOrDefault(w => w.Branch == branch && w.Path != path && !w.Prunable) is { } other)
        {
            throw new WorkspaceException(
                WorkspaceErrors.BranchCheckedOut,
                $"branch {branch} of task {taskId} is checked out in {other.Path}, so the task cannot get its own worktree back; nothing was changed. "
                + $"Switch that checkout to another branch (e.g. `git -C {other.Path} switch -`, back to the one it was on), then try again.");
        }

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var dirs = await GitDirsAsync(repoRoot, cancellationToken);
        if (!dirs.NeedsWorktreeAdd)
        {
            await CreateWorktreeDirectlyAsync(repoRoot, dirs, path, branch, tip, taskId, cancellationToken, (true, checkpoint));
            return;
        }

        var gate = WorktreeGates.GetOrAdd(Path.GetFullPath(repoRoot), _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        try
        {
            ForgetWorktree(dirs, path);
            await Git.OutputAsync(repoRoot, ["worktree", "add", "--quiet", path, branch], cancellationToken: cancellationToken);
        }
        finally
        {
            gate.Release();
        }

        if (checkpoint is not null)
        {
            await RewindAsync(repoRoot, path, branch, checkpoint, cancellationToken);
        }

        await CopyWorktreeIncludesAsync(repoRoot, path, cancellationToken);
    }

    /// <summary>
    /// Forgets git's registration of a task worktree whose folder was deleted by hand, so that its branch can be
    /// deleted and checked out elsewhere again. Only that one: other worktrees git would prune are the user's
    /// business. True when there was one.
    /// </summary>
    public async Task<bool> ForgetDeletedWorktreeAsync(string repoRoot, string worktree, CancellationToken cancellationToken = default)
    {
        var path = Path.GetFullPath(worktree);
        if (Directory.Exists(path))
        {
            return false;
        }

        var dirs = await GitDirsAsync(repoRoot, cancellationToken);
        var gate = WorktreeGates.GetOrAdd(Path.GetFullPath(repoRoot), _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        try
        {
            return ForgetWorktree(dirs, path);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>Removes git's registrations of the (missing) folder <paramref name="path"/> and the staging folders of its making.</summary>
    private static bool ForgetWorktree(GitDirs dirs, string path)
    {
        var registry = Path.Combine(dirs.CommonDir, "worktrees");
        return Directory.Exists(registry) && ForgetLeftovers(registry, Path.GetDirectoryName(path)!, Path.GetFileName(path), path);
    }

    /// <summary>A worktree git has registered: its folder, the branch it has checked out (null when detached), and whether its folder is gone.</summary>
    private sealed record RegisteredWorktree(string Path, string? Branch, bool Prunable);

    private static async Task<List<RegisteredWorktree>> ListWorktreesAsync(string repoRoot, CancellationToken cancellationToken)
    {
        // NUL-terminated lines, a NUL alone between worktrees (git 2.36+).
        var fields = (await Git.OutputAsync(repoRoot, ["worktree", "list", "--porcelain", "-z"], cancellationToken: cancellationToken)).Split('\0');
        var worktrees = new List<RegisteredWorktree>();
        foreach (var line in fields)
        {
            if (line.StartsWith("worktree ", StringComparison.Ordinal))
            {
                worktrees.Add(new RegisteredWorktree(Path.GetFullPath(line["worktree ".Length..]), null, false));
            }
            else if (worktrees.Count > 0 && line.StartsWith("branch refs/heads/", StringComparison.Ordinal))
            {
                worktrees[^1] = worktrees[^1] with { Branch = line["branch refs/heads/".Length..] };
            }
            else if (worktrees.Count > 0 && line.StartsWith("prunable", StringComparison.Ordinal))
            {
                worktrees[^1] = worktrees[^1] with { Prunable = true };
            }
        }

        return worktrees;
    }

    /// <summary>
    /// Makes the worktree the way <c>git worktree add</c> does, but so that many can be made at once, without a git
    /// process each: the metadata folder <c>&lt;common&gt;/worktrees/&lt;name&gt;</c> (gitdir, commondir, HEAD on the
    /// unborn branch, locked while it is made) is written elsewhere and renamed into place, so other git commands
    /// never see it half-written (what made concurrent <c>worktree add</c>s fail), and no git process has to list
    /// every worktree. The branch (refused if it exists), the files and the index are then written in a staging folder
    /// next to the final one, which is renamed into place when complete: by Offload for a plain repository
    /// (<c>GitWorkspace.Checkout.cs</c>), by <c>git checkout -b</c> otherwise.
    /// </summary>
    /// <param name="existing">The task's branch exists and is checked out as it is (a worktree made again), the files
    /// then set to this checkpoint's when it is not null; otherwise the branch is made at <paramref name="baseCommit"/>.</param>
    private async Task<WorktreeInfo> CreateWorktreeDirectlyAsync(
        string repoRoot, GitDirs dirs, string path, string branch, string baseCommit, long taskId, CancellationToken cancellationToken,
        (bool Branch, string? Checkpoint) existing = default)
    {
        var name = Path.GetFileName(path);
        var registry = Path.Combine(dirs.CommonDir, "worktrees");
        Directory.CreateDirectory(registry);
        var resumeBranch = ForgetLeftovers(registry, Path.GetDirectoryName(path)!, name, path)
            && await BranchExistsAsync(repoRoot, branch, cancellationToken)
            || existing.Branch;

        var unique = Guid.NewGuid().ToString("N")[..12];
        var staging = Path.Combine(Path.GetDirectoryName(path)!, $".{name}.creating-{unique}");
        var scratch = Path.Combine(dirs.CommonDir, $"offload-new-worktree-{unique}");
        string? metadata = null;
        bool checkoutStarted = false, branchTaken = false, inPlace = false;
        try
        {
            Directory.CreateDirectory(scratch);
            File.WriteAllText(Path.Combine(scratch, "gitdir"), Path.Combine(path, ".git") + "\n");
            File.WriteAllText(Path.Combine(scratch, "commondir"), "../..\n");
            File.WriteAllText(Path.Combine(scratch, "HEAD"), $"ref: refs/heads/{branch}\n");
            // `git worktree prune` leaves a locked worktree alone while its folder is still at the staging path.
            File.WriteAllText(Path.Combine(scratch, "locked"), CreatingMarker + "\n");
            metadata = Register(registry, name, scratch);

            Directory.CreateDirectory(staging);
            File.WriteAllText(Path.Combine(staging, ".git"), $"gitdir: {metadata}\n");
            // The branch may be this task's own, made by an attempt that stopped before its folder was in place.
            var source = resumeBranch ? null : await CheckoutSourceAsync(repoRoot, dirs, baseCommit, cancellationToken);
            if (source is not null)
            {
                if (!CreateBranchRef(dirs, branch, baseCommit, source))
                {
                    branchTaken = true;
                    throw BranchTaken(repoRoot, branch, taskId);
                }

                checkoutStarted = true; // the branch is this attempt's: deleted again below if the rest fails
                await WriteFilesAsync(staging, metadata, source, cancellationToken);
            }
            else
            {
                await CheckoutWithGitAsync();
                if (existing.Checkpoint is { } checkpoint)
                {
                    // Before the folder is in place: all or nothing.
                    await RewindFilesAsync(new TaskGit(staging, metadata, dirs.CommonDir, branch), checkpoint, cancellationToken);
                }
            }

            var copied = await CopyWorktreeIncludesAsync(repoRoot, staging, cancellationToken);
            Directory.Move(staging, path);
            inPlace = true;
            File.Delete(Path.Combine(metadata, "locked"));
            return new WorktreeInfo(path, branch, baseCommit, copied);
        }
        catch
        {
            // A half-made worktree is worse than none: the task can be started again cleanly.
            TryDelete(scratch);
            if (!inPlace)
            {
                TryDelete(staging);
                if (metadata is not null)
                {
                    TryDelete(metadata);
                }

                if (checkoutStarted && !branchTaken)
                {
                    // Made by this checkout, if at all (it may have been cut short): deleted only while still at the base.
                    await Git.RunAsync(repoRoot, ["update-ref", "-d", "refs/heads/" + branch, baseCommit], cancellationToken: CancellationToken.None);
                }
            }

            throw;
        }

        async Task CheckoutWithGitAsync()
        {
            string[] checkout = resumeBranch
                ? ["reset", "--hard", "--no-recurse-submodules", "--quiet"]
                : ["checkout", "--quiet", "--no-track", "--no-recurse-submodules", "-b", branch, baseCommit];
            checkoutStarted = !resumeBranch;
            var result = await Git.RunAsync(staging, checkout, cancellationToken: cancellationToken);
            if (!result.Ok)
            {
                branchTaken = result.Stderr.Contains("already exists", StringComparison.Ordinal);
                throw branchTaken
                    ? BranchTaken(repoRoot, branch, taskId)
                    : await TryResolveCommitAsync(repoRoot, baseCommit, CancellationToken.None) is null
                        ? BaseMissing(repoRoot, baseCommit)
                        : new WorkspaceException(
                            WorkspaceErrors.GitFailed,
                            $"could not create the worktree for task {taskId} at {path}: {result.Stderr.Trim()}. "
                            + "Run `git worktree prune` in the repository and try again.");
            }
        }
    }

    /// <summary>
    /// Removes what an earlier attempt at this worktree left when it stopped before the folder was in place:
    /// registrations of the (missing) folder and staging folders. True when a registration was found, i.e. the
    /// task's branch, if it exists, was made by that attempt.
    /// </summary>
    private static bool ForgetLeftovers(string registry, string worktreesDir, string name, string path)
    {
        foreach (var staging in Directory.Exists(worktreesDir) ? Directory.EnumerateDirectories(worktreesDir, $".{name}.creating-*") : [])
        {
            TryDelete(staging);
        }

        var found = false;
        var gitFile = Path.Combine(path, ".git");
        foreach (var entry in Directory.EnumerateDirectories(registry, name + "*"))
        {
            string target;
            try
            {
                target = File.ReadAllText(Path.Combine(entry, "gitdir")).Trim();
            }
            catch (IOException)
            {
                continue;
            }

            if (target == gitFile)
            {
                TryDelete(entry);
                found = true;
            }
        }

        return found;
    }

    /// <summary>Renames the prepared metadata folder to <c>worktrees/&lt;name&gt;</c>, or name1, name2… as git does when taken.</summary>
    private static string Register(string registry, string name, string scratch)
    {
        for (var n = 0; ; n++)
        {
            var target = Path.Combine(registry, n == 0 ? name : name + n);
            if (Directory.Exists(target) || File.Exists(target))
            {
                continue;
            }

            try
            {
                Directory.Move(scratch, target);
                return target;
            }
            catch (IOException) when ((Directory.Exists(target) || File.Exists(target)) && n < 1000)
            {
                // taken in the meantime: the next name
            }
        }
    }

    private static void TryDelete(string directory)
    {
        try
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // best effort: what stays behind is found and removed by the next attempt
        }
    }
}
