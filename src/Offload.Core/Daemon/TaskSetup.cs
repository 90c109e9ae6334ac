using Offload.Config;
using Offload.Engines;
using Offload.Protocol;
using Offload.Workspace;

namespace Offload.Daemon;

/// <summary>
/// The repository's <c>setup</c> commands (<c>"setup": ["npm ci"]</c> in <c>.offload/config.json</c>): run one by one in a
/// new worktree before the agent starts, in the task's sandbox as a Bash call of the agent is, with the network only when
/// <c>setupNetwork</c> is true. Each is journaled (<see cref="SetupRan"/>: command, exit code, the end of its output); the
/// first that fails ends the task failed with its output's tail. What they made is recorded as setup's and never committed
/// (<see cref="GitWorkspace.RecordSetupCreatedAsync"/>). Run again only in a worktree made again (a retry, a folder found
/// gone) or when an earlier attempt did not finish it.
/// </summary>
public static class TaskSetup
{
    /// <summary>Whether the journal says setup finished for the worktree as it is.</summary>
    public static bool Done(IReadOnlyList<AgentEvent> history)
    {
        for (var i = history.Count - 1; i >= 0; i--)
        {
            switch (history[i])
            {
                case SetupRan { KeptOut: not null }:
                    return true;
                case AttemptStarted or WorktreeRestored:
                    return false; // a new worktree since
            }
        }

        return false;
    }

    /// <summary>Runs every command; the reason the task fails, or null when all passed.</summary>
    public static async Task<string?> RunAsync(TaskInfo task, string worktree, string spillDir, OffloadConfig settings, GitWorkspace workspace, Journal journal, CancellationToken cancellationToken)
    {
        var context = await TaskCheck.ContextAsync(task, worktree, spillDir, settings, settings.SetupNetwork, cancellationToken);
        for (var i = 0; i < settings.Setup.Count; i++)
        {
            var command = settings.Setup[i];
            var run = await TaskCheck.RunCommandAsync(command, context, cancellationToken);
            var keptOut = run.Passed && i == settings.Setup.Count - 1
                ? await workspace.RecordSetupCreatedAsync(task.RepoPath, worktree, task.Branch, cancellationToken)
                : null;
            await journal.AppendAsync(new SetupRan(command, run.ExitCode, run.Passed, run.Tail, run.DurationMs, run.FullOutputPath, keptOut), cancellationToken);
            if (!run.Passed)
            {
                var end = string.Join(" · ", run.Tail.TrimEnd().Split('\n').TakeLast(5).Select(l => l.Trim()).Where(l => l.Length > 0));
                return $"setup failed: `{command}` " + (run.ExitCode is { } code ? $"exited {code}" : "did not finish (timed out or stopped by a limit)")
                    + (end.Length > 0 ? $"; its output ends: {(end.Length > 600 ? "…" + end[^600..] : end)}" : "")
                    + $" (the setup list is in {Path.Combine(task.RepoPath, ".offload", "config.json")}; fix it, then `offload retry {task.Id}`)";
            }
        }

        return null;
    }
}
