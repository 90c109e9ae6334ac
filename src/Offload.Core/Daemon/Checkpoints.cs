using Offload.Engines;
using Offload.Protocol;
using Offload.Workspace;

namespace Offload.Daemon;

/// <summary>The checkpoint after a turn that changed files: the worktree saved on <c>refs/offload/&lt;id&gt;/turn-&lt;n&gt;</c>, then a <c>checkpoint</c> event.</summary>
public static class Checkpoints
{
    public static async Task SaveAsync(GitWorkspace workspace, Journal journal, string worktree, int turn, CancellationToken cancellationToken)
    {
        Checkpoint? saved;
        try
        {
            // Refreshes the stat data of the worktree's index (only that: what is staged stays). A fresh checkout's
            // index is "racily clean", and the snapshot, which works on a copy of it, would otherwise re-read every file each turn.
            await Git.RunAsync(worktree, ["update-index", "-q", "--refresh"], cancellationToken: cancellationToken);
            saved = await workspace.CheckpointAsync(worktree, journal.TaskId, turn, cancellationToken);
        }
        catch (WorkspaceException e)
        {
            // a missing checkpoint costs the user a rewind point, not the task
            await journal.AppendAsync(new ErrorRaised($"could not save the checkpoint of turn {turn}", e.Message), cancellationToken);
            return;
        }

        if (saved is not null)
        {
            await journal.AppendAsync(
                new CheckpointSaved(saved.Turn, GitWorkspace.CheckpointRefName(journal.TaskId, saved.Turn), saved.Sha, saved.FilesChanged),
                cancellationToken);
        }
    }
}
