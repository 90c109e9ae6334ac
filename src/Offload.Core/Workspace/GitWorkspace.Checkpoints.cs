using System.Globalization;

namespace Offload.Workspace;

public sealed partial class GitWorkspace
{
    private const string CheckpointRefRoot = "refs/offload/";

    /// <summary>
    /// Saves the worktree's whole state (tracked and untracked files, not ignored ones) as a commit on
    /// <c>refs/offload/&lt;id&gt;/turn-&lt;n&gt;</c> whose parent is the task branch's tip, through a temporary index so
    /// the task branch, HEAD and the worktree's own index stay as they are. Returns null when nothing changed since the
    /// previous checkpoint (or since the branch's tip, for the first one). A worktree whose git files changed is refused
    /// (<see cref="OpenTaskAsync"/>).
    /// </summary>
    public async Task<Checkpoint?> CheckpointAsync(
        string repoRoot, string worktree, string branch, long taskId, int turn, CancellationToken cancellationToken = default)
    {
        var git = await OpenTaskAsync(repoRoot, worktree, branch, cancellationToken);
        // Refreshes the stat data of the worktree's index (only that: what is staged stays). A fresh checkout's index is
        // "racily clean", and the snapshot, which works on a copy of it, would otherwise re-read every file each turn.
        await Git.RunAsync(worktree, ["update-index", "-q", "--ignore-submodules", "--refresh"], git.Environment, cancellationToken: cancellationToken);
        var tree = await SnapshotTreeAsync(git, cancellationToken);
        var previous = (await ReadCheckpointRefsAsync(worktree, taskId, cancellationToken, git.Environment)).Where(c => c.Turn != turn).Select(c => c.Sha).LastOrDefault();
        var tip = (await Git.OutputAsync(
            worktree, ["rev-parse", git.BranchRef, (previous ?? git.BranchRef) + "^{tree}"], git.Environment, cancellationToken: cancellationToken))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var previousTree = tip[1];
        if (previousTree == tree)
        {
            return null;
        }

        var sha = (await Git.OutputAsync(
            worktree,
            ["-c", "commit.gpgsign=false", "commit-tree", tree, "-p", tip[0], "-m", $"offload checkpoint: task {taskId}, turn {turn}"],
            WithIdentity(git.Environment),
            cancellationToken: cancellationToken)).Trim();
        await Git.OutputAsync(
            worktree,
            ["update-ref", "-m", $"offload checkpoint turn {turn}", CheckpointRef(taskId, turn), sha],
            git.Environment,
            cancellationToken: cancellationToken);
        var filesChanged = await CountChangedFilesAsync(worktree, previousTree, tree, cancellationToken, git.Environment);
        var time = await CommitTimeAsync(worktree, sha, cancellationToken, git.Environment);
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
    public async Task RewindAsync(string repoRoot, string worktree, string branch, string checkpointSha, CancellationToken cancellationToken = default)
    {
        var git = await OpenTaskAsync(repoRoot, worktree, branch, cancellationToken);
        if (await TryResolveCommitAsync(git.CommonDir, checkpointSha, cancellationToken) is null)
        {
            throw new WorkspaceException(
                WorkspaceErrors.BadCheckpoint,
                $"checkpoint {checkpointSha} is not a commit in {repoRoot}. List the task's checkpoints and pick one of those.");
        }

        await RewindFilesAsync(git, checkpointSha, cancellationToken);
    }

    /// <summary><see cref="RewindAsync"/> on a worktree Offload is still making (its folder not yet where its registration says).</summary>
    private static async Task RewindFilesAsync(TaskGit git, string checkpointSha, CancellationToken cancellationToken)
    {
        await WithIndexCopyAsync(git.IndexFile, async index =>
        {
            // The temporary index first records every file now in the worktree, so that the reset
            // below knows which ones to delete, then switches index and files to the checkpoint's tree.
            var env = git.WithIndex(index);
            await AddAllAsync(git, env, cancellationToken);
            await Git.OutputAsync(git.Worktree, ["read-tree", "--reset", "-u", checkpointSha + "^{tree}"], env, cancellationToken: cancellationToken);
        });
    }

    private static string CheckpointPrefix(long taskId) => $"{CheckpointRefRoot}{taskId}/";

    private static string CheckpointRef(long taskId, int turn) => $"{CheckpointPrefix(taskId)}turn-{turn}";

    private static async Task<string> SnapshotTreeAsync(TaskGit git, CancellationToken cancellationToken)
    {
        var tree = "";
        await WithIndexCopyAsync(git.IndexFile, async index =>
        {
            var env = git.WithIndex(index);
            await AddAllAsync(git, env, cancellationToken);
            tree = (await Git.OutputAsync(git.Worktree, ["write-tree"], env, cancellationToken: cancellationToken)).Trim();
        });
        return tree;
    }

    /// <summary>Runs <paramref name="action"/> with GIT_INDEX_FILE pointing at a copy of the checkout's index (the user's own checkout: merge and apply).</summary>
    private static async Task WithTemporaryIndexAsync(string checkout, Func<IReadOnlyDictionary<string, string>, Task> action)
    {
        var indexPath = (await Git.OutputAsync(checkout, ["rev-parse", "--path-format=absolute", "--git-path", "index"])).Trim();
        await WithIndexCopyAsync(indexPath, index => action(new Dictionary<string, string> { ["GIT_INDEX_FILE"] = index }));
    }

    /// <summary>Runs <paramref name="action"/> with the path of a copy of the index <paramref name="indexPath"/>, deleted after.</summary>
    private static async Task WithIndexCopyAsync(string indexPath, Func<string, Task> action)
    {
        var temporary = Path.Combine(Path.GetTempPath(), $"offload-index-{Guid.NewGuid():N}");
        try
        {
            if (File.Exists(indexPath))
            {
                File.Copy(indexPath, temporary);
            }

            await action(temporary);
        }
        finally
        {
            File.Delete(temporary);
            File.Delete(temporary + ".lock");
        }
    }

    private static async Task<List<(int Turn, string Sha, DateTimeOffset Time)>> ReadCheckpointRefsAsync(
        string repo, long taskId, CancellationToken cancellationToken, IReadOnlyDictionary<string, string>? environment = null)
    {
        var output = await Git.OutputAsync(
            repo,
            ["for-each-ref", "--format=%(refname)%00%(objectname)%00%(committerdate:unix)", CheckpointPrefix(taskId)],
            environment,
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

    private static async Task<int> CountChangedFilesAsync(
        string repo, string from, string to, CancellationToken cancellationToken, IReadOnlyDictionary<string, string>? environment = null) =>
        Git.SplitZ(await Git.OutputAsync(
            repo, ["diff-tree", "-r", "-z", "--name-only", "--no-renames", from, to], environment, cancellationToken: cancellationToken)).Length;

    private static async Task<DateTimeOffset> CommitTimeAsync(
        string repo, string sha, CancellationToken cancellationToken, IReadOnlyDictionary<string, string>? environment = null) =>
        DateTimeOffset.FromUnixTimeSeconds(long.Parse(
            (await Git.OutputAsync(repo, ["show", "-s", "--format=%ct", sha], environment, cancellationToken: cancellationToken)).Trim(),
            CultureInfo.InvariantCulture));
}
