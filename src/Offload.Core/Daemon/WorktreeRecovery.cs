using Offload.Agent;
using Offload.Protocol;
using Offload.Workspace;

namespace Offload.Daemon;

/// <summary>
/// A task's worktree can hold the only copy of its work: what the turns change is committed when a run ends and
/// kept meanwhile on checkpoint refs. A worktree folder found gone is made again from the task's branch and, when
/// the branch does not have it yet, the last checkpoint; the event this returns says which, for the journal.
/// </summary>
public static class WorktreeRecovery
{
    public static async Task<WorktreeRestored> RecreateAsync(
        GitWorkspace workspace, TaskInfo task, string branchTip, IReadOnlyList<AgentEvent> history, CancellationToken cancellationToken)
    {
        // A checkpoint is a commit on top of the branch tip of its turn. One on top of today's tip holds work the
        // branch lacks; an older one's work was committed since (a run's end, a rewind).
        var last = Conversation.Current(history).OfType<CheckpointSaved>().LastOrDefault();
        var checkpoint = last is not null && await workspace.TryResolveAsync(task.RepoPath, last.Commit + "^", cancellationToken) == branchTip ? last : null;
        await workspace.RecreateWorktreeAsync(task.RepoPath, task.Worktree, task.Branch, task.Id, checkpoint?.Commit, cancellationToken);
        return new WorktreeRestored(task.Worktree, branchTip, checkpoint?.Turn, checkpoint?.Commit);
    }
}
