using Offload.Engines;
using Offload.Protocol;
using Offload.Workspace;

namespace Offload.Daemon;

/// <summary>The checkpoint after a turn that changed files: the worktree saved on <c>refs/offload/&lt;id&gt;/turn-&lt;n&gt;</c>, then a <c>checkpoint</c> event.</summary>
public static class Checkpoints
{
    /// <summary>
    /// Saves the turn's checkpoint. A failure costs the user a rewind point, not the task, except a worktree whose git
    /// files were changed (<see cref="WorkspaceErrors.Tampered"/>): that is journaled and ends the run.
    /// </summary>
    public static async Task SaveAsync(GitWorkspace workspace, Journal journal, TaskInfo task, int turn, CancellationToken cancellationToken)
    {
        Checkpoint? saved;
        try
        {
            saved = await workspace.CheckpointAsync(task.RepoPath, task.Worktree, task.Branch, journal.TaskId, turn, cancellationToken);
        }
        catch (WorkspaceException e) when (e.Code == WorkspaceErrors.Tampered)
        {
            await journal.AppendAsync(new ErrorRaised($"the git files of the worktree changed in turn {turn}", e.Message), cancellationToken);
            throw;
        }
        catch (WorkspaceException e)
        {
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
