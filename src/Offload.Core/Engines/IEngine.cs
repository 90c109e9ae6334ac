using Offload.Config;
using Offload.Protocol;

namespace Offload.Engines;

/// <summary>
/// Runs one turn of work for a task: from the journal so far (a fresh prompt, a reply, or an
/// interrupted run) until the agent stops, streaming everything it does into the journal.
/// </summary>
public interface IEngine
{
    string Name { get; }

    Task<EngineOutcome> RunAsync(EngineRun run, CancellationToken cancellationToken);
}

/// <param name="History">The task's journal before this attempt started, in order.</param>
/// <param name="SoftStop">The daemon is stopping: end at the next safe point with <see cref="EngineOutcome.Suspended"/>.</param>
public sealed record EngineRun(
    TaskInfo Task,
    string Worktree,
    IReadOnlyList<AgentEvent> History,
    Journal Journal,
    OffloadConfig Config,
    string SpillDir,
    DateTimeOffset StartedAt,
    CancellationToken SoftStop)
{
    /// <summary>Call after a turn whose tools may have changed files: saves a checkpoint of the worktree for that turn.</summary>
    public Func<int, CancellationToken, Task>? TurnEnded { get; init; }

    /// <summary>The run's wall-clock limit; paused while the task waits for the user (<see cref="Daemon.PermissionBroker"/>).</summary>
    public WallClock Clock { get; init; } = WallClock.None;

    /// <summary>
    /// Completes once <see cref="Worktree"/> is in place. A new task's worktree is still being made when its run starts,
    /// so that the first model call overlaps the checkout: await this before touching the worktree.
    /// </summary>
    public System.Threading.Tasks.Task WorktreeReady { get; init; } = System.Threading.Tasks.Task.CompletedTask;

    /// <summary>The attempt's spans (docs/telemetry.md); null when the daemon exports no telemetry.</summary>
    public Telemetry.RunTelemetry? Telemetry { get; init; }
}
