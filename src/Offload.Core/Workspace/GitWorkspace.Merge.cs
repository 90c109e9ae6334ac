namespace Offload.Workspace;

/// <summary>
/// Bringing a task's work into the user's own repository. The order is always: check (detached HEAD,
/// uncommitted changes in the task's files, conflicts computed with <c>git merge-tree</c> in the object
/// database only), and only when every check passes, write. A refusal leaves HEAD, index and files as they were.
/// </summary>
public sealed partial class GitWorkspace
{
    /// <summary>
    /// Merges the task branch into the user's current branch: one squashed commit with
    /// <paramref name="message"/>, or a merge commit with both parents. Uncommitted changes in files the
    /// task did not touch are kept. Returns the new commit, or null when there was nothing to merge.
    /// </summary>
    public async Task<string?> MergeAsync(
        string repoRoot, string branch, string baseCommit, bool squash, string message, CancellationToken cancellationToken = default)
    {
        var headRef = await Git.RunAsync(repoRoot, ["symbolic-ref", "-q", "HEAD"], cancellationToken: cancellationToken);
        if (!headRef.Ok)
        {
            throw new WorkspaceException(
                WorkspaceErrors.DetachedHead,
                $"HEAD is detached in {repoRoot}, so there is no branch to merge {branch} into. "
                + "Check out the branch you want it on (`git switch main`) and merge again, or use `offload apply`.");
        }

        var (head, tip, tree) = await PrepareAsync(repoRoot, branch, baseCommit, cancellationToken);
        if (tree is null)
        {
            return null;
        }

        var identity = (await Git.RunAsync(repoRoot, ["var", "GIT_COMMITTER_IDENT"], cancellationToken: cancellationToken)).Ok
            ? null
            : OffloadIdentity;
        List<string> commitTree = ["commit-tree", tree, "-p", head];
        if (!squash)
        {
            commitTree.AddRange(["-p", tip]);
        }

        commitTree.AddRange(["-m", message]);
        var commit = (await Git.OutputAsync(repoRoot, commitTree, identity, cancellationToken: cancellationToken)).Trim();

        // Like `git checkout`: moves index and files from HEAD's tree to the merged one, carrying
        // the user's other uncommitted changes along. The checks above make it succeed.
        await SwitchTreesAsync(repoRoot, head, commit, environment: null, cancellationToken);
        var branchRef = headRef.Stdout.Trim();
        var moved = await Git.RunAsync(
            repoRoot, ["update-ref", "-m", $"offload: merge {branch}", branchRef, commit, head], cancellationToken: CancellationToken.None);
        if (!moved.Ok)
        {
            await SwitchTreesAsync(repoRoot, commit, head, environment: null, CancellationToken.None);
            throw new WorkspaceException(
                WorkspaceErrors.Conflict,
                $"{branchRef} moved while {branch} was being merged into it; nothing was merged. Run the merge again.");
        }

        return commit;
    }

    /// <summary>
    /// Puts the task's changes into the user's working tree as uncommitted changes (new files untracked,
    /// the index untouched), merged three-way with whatever HEAD is now. Returns the paths written.
    /// </summary>
    public async Task<IReadOnlyList<string>> ApplyAsync(string repoRoot, string baseCommit, string branch, CancellationToken cancellationToken = default)
    {
        var (head, _, tree) = await PrepareAsync(repoRoot, branch, baseCommit, cancellationToken);
        if (tree is null)
        {
            return [];
        }

        var written = Git.SplitZ(await Git.OutputAsync(
            repoRoot, ["diff-tree", "-r", "-z", "--name-only", "--no-renames", head, tree], cancellationToken: cancellationToken));
        await WithTemporaryIndexAsync(repoRoot, env => SwitchTreesAsync(repoRoot, head, tree, env, cancellationToken));
        return written;
    }

    /// <summary>The checks shared by merge and apply; returns the merged tree, or null when it equals HEAD's.</summary>
    private static async Task<(string Head, string Tip, string? Tree)> PrepareAsync(
        string repoRoot, string branch, string baseCommit, CancellationToken cancellationToken)
    {
        var head = await TryResolveCommitAsync(repoRoot, "HEAD", cancellationToken)
            ?? throw new WorkspaceException(
                WorkspaceErrors.NoCommits,
                $"the repository at {repoRoot} has no commits, so there is nothing to merge into. Commit something first.");
        var tip = await RequireCommitAsync(repoRoot, branch, cancellationToken);

        var taskFiles = Git.SplitZ(await Git.OutputAsync(
            repoRoot, ["diff", "--name-only", "-z", "--no-renames", baseCommit, tip, "--"], cancellationToken: cancellationToken));
        var dirty = (await UncommittedPathsAsync(repoRoot, cancellationToken)).Intersect(taskFiles, StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        if (dirty.Count > 0)
        {
            throw new WorkspaceException(
                WorkspaceErrors.DirtyTree,
                $"you have uncommitted changes in files the task also changed: {string.Join(", ", dirty)}. "
                + "Commit or stash them (`git stash -u`), then try again; nothing was changed.",
                dirty);
        }

        var merged = await Git.RunAsync(
            repoRoot, ["merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", head, tip], cancellationToken: cancellationToken);
        var fields = Git.SplitZ(merged.Stdout);
        if (merged.ExitCode == 1)
        {
            var conflicts = fields.Skip(1).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            throw new WorkspaceException(
                WorkspaceErrors.Conflict,
                $"{branch} conflicts with your current HEAD in: {string.Join(", ", conflicts)}; nothing was changed. "
                + $"Resolve it by hand (`git merge {branch}`), or reply to the task to rebase its work.",
                conflicts);
        }

        if (!merged.Ok || fields.Length == 0)
        {
            throw Git.Failed(repoRoot, ["merge-tree", "--write-tree", head, tip], merged);
        }

        var tree = fields[0];
        var headTree = (await Git.OutputAsync(repoRoot, ["rev-parse", head + "^{tree}"], cancellationToken: cancellationToken)).Trim();
        return (head, tip, tree == headTree ? null : tree);
    }

    /// <summary>
    /// What a task's worktree holds that its branch does not: staged, unstaged and untracked paths (not ignored ones),
    /// sorted; empty when the folder is gone. Merge and apply take the branch, so these would be left out.
    /// </summary>
    public async Task<IReadOnlyList<string>> UncommittedFilesAsync(string worktree, CancellationToken cancellationToken = default) =>
        Directory.Exists(worktree) ? (await UncommittedPathsAsync(worktree, cancellationToken)).Order(StringComparer.Ordinal).ToList() : [];

    /// <summary>Staged, unstaged and untracked paths (not ignored ones) in a working tree.</summary>
    private static async Task<HashSet<string>> UncommittedPathsAsync(string repoRoot, CancellationToken cancellationToken)
    {
        var status = Git.SplitZ(await Git.OutputAsync(
            repoRoot, ["status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames"], cancellationToken: cancellationToken));
        return status.Where(e => e.Length > 3).Select(e => e[3..]).ToHashSet(StringComparer.Ordinal);
    }

    private static async Task SwitchTreesAsync(
        string repoRoot, string from, string to, IReadOnlyDictionary<string, string>? environment, CancellationToken cancellationToken)
    {
        var switched = await Git.RunAsync(repoRoot, ["read-tree", "-m", "-u", from, to], environment, cancellationToken: cancellationToken);
        if (!switched.Ok)
        {
            throw new WorkspaceException(
                WorkspaceErrors.DirtyTree,
                $"git refused to update your working tree: {switched.Stderr.Trim()}. "
                + "Move or commit the files it names, then try again; nothing was changed.");
        }
    }
}
