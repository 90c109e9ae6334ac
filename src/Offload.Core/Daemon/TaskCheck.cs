using System.Diagnostics;
using System.Text.Json;
using Offload.Agent.Tools;
using Offload.Config;
using Offload.Engines;
using Offload.Protocol;

namespace Offload.Daemon;

/// <summary>
/// The command that defines done (<c>run --check</c>): run after the agent's final answer, in the task's sandbox and
/// worktree, as a Bash call of the builtin agent is (same limits and confinement). Whatever engine the task has, a failure
/// goes back to it as a user message (source <see cref="Source"/>) while tries are left; the task succeeds only once it
/// passes.
/// </summary>
public static class TaskCheck
{
    /// <summary>The <see cref="UserMessage.Source"/> of the message that sends a failed check back to the agent.</summary>
    public const string Source = "check";

    /// <summary>How much of the end of the check's output the journal and the agent get.</summary>
    public const int TailChars = 4000;

    /// <summary>The longest a check may run: as long as the longest Bash call.</summary>
    public static readonly TimeSpan Timeout = BashTool.MaxTimeout;

    /// <summary>
    /// How many checks ran since the conversation last started over: the prompt, a retry, a rewind, or a reply of the
    /// user (a reply is new work, and gets its own tries).
    /// </summary>
    public static int TriesSoFar(IReadOnlyList<AgentEvent> history)
    {
        var tries = 0;
        for (var i = history.Count - 1; i >= 0; i--)
        {
            switch (history[i])
            {
                case CheckRan:
                    tries++;
                    break;
                case AttemptStarted or TaskRewound or TaskCreated or UserMessage { Source: "reply" or "user", Subagent: null }:
                    return tries;
            }
        }

        return tries;
    }

    /// <summary>Runs the check once; the event is not yet in the journal.</summary>
    public static async Task<CheckRan> RunAsync(TaskInfo task, string worktree, string spillDir, OffloadConfig settings, int attempt, CancellationToken cancellationToken)
    {
        var context = await ContextAsync(task, worktree, spillDir, settings, network: false, cancellationToken);
        var run = await RunCommandAsync(task.Check!, context, cancellationToken);
        return new CheckRan(task.Check!, run.ExitCode, run.Passed, run.Tail, run.DurationMs, attempt, run.FullOutputPath);
    }

    /// <summary>
    /// Where the task's own commands (its check, its setup) run: its worktree, in its sandbox as a Bash call of the agent
    /// (same limits and confinement), with the network only when <paramref name="network"/> opens it.
    /// </summary>
    internal static async Task<ToolContext> ContextAsync(TaskInfo task, string worktree, string spillDir, OffloadConfig settings, bool network, CancellationToken cancellationToken)
    {
        var sandbox = await Sandbox.ForTaskAsync(task.RepoPath, worktree, task.Branch, spillDir, settings.Sandbox, cancellationToken);
        if (sandbox is not null && network)
        {
            sandbox = sandbox with { Network = true };
        }

        return new ToolContext(worktree, spillDir, settings.Limits.MaxToolOutputChars, Timeout,
            SandboxEnvironment.ForCommands(sandboxed: sandbox is not null), sandbox, settings.Sandbox.Limits);
    }

    /// <summary>One command, for at most <see cref="Timeout"/>: how it exited and the last <see cref="TailChars"/> of its output.</summary>
    internal static async Task<CommandRun> RunCommandAsync(string command, ToolContext context, CancellationToken cancellationToken)
    {
        var input = JsonSerializer.SerializeToElement(new Dictionary<string, object?>
        {
            ["command"] = command,
            ["timeout"] = (long)Timeout.TotalMilliseconds,
        }, OffloadJson.Info<Dictionary<string, object?>>());
        var clock = Stopwatch.StartNew();
        var result = await new BashTool().InvokeAsync(input, context, cancellationToken);
        var output = result.Output;
        var tail = output.Length <= TailChars ? output : "…" + output[^TailChars..];
        return new CommandRun(result.ExitCode, !result.IsError && result.ExitCode == 0, tail, clock.ElapsedMilliseconds, result.FullOutputPath);
    }

    internal sealed record CommandRun(int? ExitCode, bool Passed, string Tail, long DurationMs, string? FullOutputPath);

    /// <summary>What the agent is told when its check failed and it may try again.</summary>
    public static string FailureMessage(CheckRan check, int tries) =>
        $"Offload ran the check that defines done for this task, and it failed: `{check.Command}` "
        + (check.ExitCode is { } code ? $"exited with code {code}" : "did not finish (timed out or stopped by a limit)")
        + $" (try {check.Try} of {tries}). The task is done only when it passes. The end of its output:\n\n```\n{check.OutputTail}\n```\n"
        + (check.FullOutputPath is { } full ? $"\nThe whole output is in {full}.\n" : "")
        + "\nFind and fix the cause (do not change the check or weaken the tests), then give your final answer again; the check runs again after it.";

    /// <summary>The task's error when its last try failed.</summary>
    public static string FailureReason(CheckRan check, int tries)
    {
        var last = check.OutputTail.TrimEnd().Split('\n').TakeLast(3).Select(l => l.Trim()).Where(l => l.Length > 0);
        var end = string.Join(" · ", last);
        if (end.Length > 300)
        {
            end = "…" + end[^300..];
        }

        return $"check failed: `{check.Command}` "
            + (check.ExitCode is { } code ? $"exited {code}" : "did not finish")
            + $" on try {check.Try} of {tries}" + (end.Length > 0 ? $"; its output ends: {end}" : "");
    }
}
