namespace Offload.Workspace;

/// <summary>What the follow-up verbs need beyond merge and checkpoints: keeping an attempt.</summary>
public sealed partial class GitWorkspace
{
    public static string CheckpointRefName(long taskId, int turn) => CheckpointRef(taskId, turn);

    public static string AttemptRefName(long taskId, int attempt) => $"{CheckpointPrefix(taskId)}attempt-{attempt}/tip";

    /// <summary>The commit <paramref name="name"/> points at, or null when there is no such branch or commit.</summary>
    public Task<string?> TryResolveAsync(string repoRoot, string name, CancellationToken cancellationToken = default) =>
        TryResolveCommitAsync(repoRoot, name, cancellationToken);

    /// <summary>Whether the task's worktree has no uncommitted changes (ignored files do not count; a nested repository by its HEAD).</summary>
    public async Task<bool> IsCleanAsync(string repoRoot, string worktree, string branch, CancellationToken cancellationToken = default)
    {
        var git = await OpenTaskAsync(repoRoot, worktree, branch, cancellationToken);
        return (await Git.OutputAsync(
            worktree, ["status", "--porcelain", "--untracked-files=all", "--ignore-submodules=dirty", "--", ".", .. SetupExclusions(git)], git.Environment, cancellationToken: cancellationToken)).Length == 0;
    }

    /// <summary>
    /// Ends an attempt so the next one can start from the base: whatever is uncommitted in the worktree is
    /// committed, the branch tip is kept on <c>refs/offload/&lt;id&gt;/attempt-&lt;n&gt;/tip</c> and the attempt's
    /// checkpoints under <c>refs/offload/&lt;id&gt;/attempt-&lt;n&gt;/</c>, then worktree and branch are removed
    /// (the runner creates them again from the base). Returns the saved commit, or null when there was no branch.
    /// </summary>
    public async Task<string?> SaveAttemptAsync(
        string repoRoot, string worktree, string branch, long taskId, int attempt, CancellationToken cancellationToken = default)
    {
        if (Directory.Exists(worktree))
        {
            await CommitAllAsync(repoRoot, worktree, branch, $"offload: the state of attempt {attempt} when it was retried", cancellationToken);
        }

        var tip = await TryResolveCommitAsync(repoRoot, "refs/heads/" + branch, cancellationToken);
        var updates = new System.Text.StringBuilder();
        if (tip is not null)
        {
            updates.Append($"update {AttemptRefName(taskId, attempt)} {tip}\n");
        }

        foreach (var (turn, sha, _) in await ReadCheckpointRefsAsync(repoRoot, taskId, cancellationToken))
        {
            updates.Append($"update {CheckpointPrefix(taskId)}attempt-{attempt}/turn-{turn} {sha}\n");
            updates.Append($"delete {CheckpointRef(taskId, turn)} {sha}\n");
        }

        if (updates.Length > 0)
        {
            await Git.OutputAsync(repoRoot, ["update-ref", "--stdin"], standardInput: updates.ToString(), cancellationToken: cancellationToken);
        }

        if (Directory.Exists(worktree))
        {
            await RemoveWorktreeAsync(repoRoot, worktree, branch, deleteBranch: false, cancellationToken);
        }

        if (tip is not null)
        {
            await Git.OutputAsync(repoRoot, ["branch", "-D", "--", branch], cancellationToken: cancellationToken);
        }

        return tip;
    }
}
