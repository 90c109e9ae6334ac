using System.Globalization;

namespace Offload.Workspace;

public sealed partial class GitWorkspace
{
    private const string CheckpointRefRoot = "refs/offload/";

    /// <summary>
    /// Saves the worktree's whole state (tracked and untracked files, not ignored ones) as a commit on
    /// <c>refs/offload/&lt;id&gt;/turn-&lt;n&gt;</c>, through a temporary index so the task branch, HEAD and the
    /// worktree's own index stay as they are. Returns null when nothing changed since the previous
    /// checkpoint (or since HEAD, for the first one).
    /// </summary>
    public async Task<Checkpoint?> CheckpointAsync(string worktree, long taskId, int turn, CancellationToken cancellationToken = default)
    {
        var tree = await SnapshotTreeAsync(worktree, cancellationToken);
        var previous = (await ReadCheckpointRefsAsync(worktree, taskId, cancellationToken)).Where(c => c.Turn != turn).Select(c => c.Sha).LastOrDefault();
        var previousTree = (await Git.OutputAsync(
            worktree, ["rev-parse", (previous ?? "HEAD") + "^{tree}"], cancellationToken: cancellationToken)).Trim();
        if (previousTree == tree)
        {
            return null;
        }

        var sha = (await Git.OutputAsync(
            worktree,
            ["-c", "commit.gpgsign=false", "commit-tree", tree, "-p", "HEAD", "-m", $"offload checkpoint: task {taskId}, turn {turn}"],
            OffloadIdentity,
            cancellationToken: cancellationToken)).Trim();
        await Git.OutputAsync(
            worktree,
            ["update-ref", "-m", $"offload checkpoint turn {turn}", CheckpointRef(taskId, turn), sha],
            cancellationToken: cancellationToken);
        var filesChanged = await CountChangedFilesAsync(worktree, previousTree, tree, cancellationToken);
        var time = await CommitTimeAsync(worktree, sha, cancellationToken);
        return new Checkpoint(turn, sha, time, filesChanged);
    }

    /// <summary>The task's checkpoints in turn order, each with the number of files changed since the one before.</summary>
    public async Task<IReadOnlyList<Checkpoint>> ListCheckpointsAsync(string repoRoot, long taskId, CancellationToken cancellationToken = default)
    {
        var refs = await ReadCheckpointRefsAsync(repoRoot, taskId, cancellationToken);
        var checkpoints = new List<Checkpoint>();
        string? previous = null;
        foreach (var (turn, sha, time) in refs)
        {
            var from = previous ?? sha + "^";
            checkpoints.Add(new Checkpoint(turn, sha, time, await CountChangedFilesAsync(repoRoot, from, sha, cancellationToken)));
            previous = sha;
        }

        return checkpoints;
    }

    /// <summary>
    /// Makes the worktree's files exactly those of a checkpoint: changed files restored, files the
    /// checkpoint did not have deleted, ignored files left alone. The branch, HEAD and index do not move,
    /// so the rewound state shows as uncommitted changes.
    /// </summary>
    public async Task RewindAsync(string worktree, string checkpointSha, CancellationToken cancellationToken = default)
    {
        if (await TryResolveCommitAsync(worktree, checkpointSha, cancellationToken) is null)
        {
            throw new WorkspaceException(
                WorkspaceErrors.BadCheckpoint,
                $"checkpoint {checkpointSha} is not a commit in {worktree}. List the task's checkpoints and pick one of those.");
        }

        await WithTemporaryIndexAsync(worktree, async env =>
        {
            // The temporary index first records every file now in the worktree, so that the reset
            // below knows which ones to delete, then switches index and files to the checkpoint's tree.
            await Git.OutputAsync(worktree, ["add", "-A"], env, cancellationToken: cancellationToken);
            await Git.OutputAsync(worktree, ["read-tree", "--reset", "-u", checkpointSha + "^{tree}"], env, cancellationToken: cancellationToken);
        });
    }

    private static string CheckpointPrefix(long taskId) => $"{CheckpointRefRoot}{taskId}/";

    private static string CheckpointRef(long taskId, int turn) => $"{CheckpointPrefix(taskId)}turn-{turn}";

    private static async Task<string> SnapshotTreeAsync(string worktree, CancellationToken cancellationToken)
    {
        var tree = "";
        await WithTemporaryIndexAsync(worktree, async env =>
        {
            await Git.OutputAsync(worktree, ["add", "-A"], env, cancellationToken: cancellationToken);
            tree = (await Git.OutputAsync(worktree, ["write-tree"], env, cancellationToken: cancellationToken)).Trim();
        });
        return tree;
    }

    /// <summary>Runs <paramref name="action"/> with GIT_INDEX_FILE pointing at a copy of the worktree's index.</summary>
    private static async Task WithTemporaryIndexAsync(string worktree, Func<IReadOnlyDictionary<string, string>, Task> action)
    {
        var indexPath = (await Git.OutputAsync(worktree, ["rev-parse", "--path-format=absolute", "--git-path", "index"])).Trim();
        var temporary = Path.Combine(Path.GetTempPath(), $"offload-index-{Guid.NewGuid():N}");
        try
        {
            if (File.Exists(indexPath))
            {
                File.Copy(indexPath, temporary);
            }

            await action(new Dictionary<string, string> { ["GIT_INDEX_FILE"] = temporary });
        }
        finally
        {
            File.Delete(temporary);
            File.Delete(temporary + ".lock");
        }
    }

    private static async Task<List<(int Turn, string Sha, DateTimeOffset Time)>> ReadCheckpointRefsAsync(
        string repo, long taskId, CancellationToken cancellationToken)
    {
        var output = await Git.OutputAsync(
            repo,
            ["for-each-ref", "--format=%(refname)%00%(objectname)%00%(committerdate:unix)", CheckpointPrefix(taskId)],
            cancellationToken: cancellationToken);
        var refs = new List<(int, string, DateTimeOffset)>();
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = line.Split('\0');
            var name = fields[0][CheckpointPrefix(taskId).Length..];
            if (fields.Length == 3
                && name.StartsWith("turn-", StringComparison.Ordinal)
                && int.TryParse(name["turn-".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var turn)
                && long.TryParse(fields[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out var seconds))
            {
                refs.Add((turn, fields[1], DateTimeOffset.FromUnixTimeSeconds(seconds)));
            }
        }

        return refs.OrderBy(r => r.Item1).ToList();
    }

    private static async Task<int> CountChangedFilesAsync(string repo, string from, string to, CancellationToken cancellationToken) =>
        Git.SplitZ(await Git.OutputAsync(
            repo, ["diff-tree", "-r", "-z", "--name-only", "--no-renames", from, to], cancellationToken: cancellationToken)).Length;

    private static async Task<DateTimeOffset> CommitTimeAsync(string repo, string sha, CancellationToken cancellationToken) =>
        DateTimeOffset.FromUnixTimeSeconds(long.Parse(
            (await Git.OutputAsync(repo, ["show", "-s", "--format=%ct", sha], cancellationToken: cancellationToken)).Trim(),
            CultureInfo.InvariantCulture));
}
