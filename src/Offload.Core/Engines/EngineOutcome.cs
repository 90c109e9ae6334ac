using Offload.Protocol;

namespace Offload.Engines;

/// <summary>The closed set of ways a run ends.</summary>
public abstract record EngineOutcome(OffloadTaskStatus Status, string? Summary, string? Reason)
{
    /// <summary>
    /// The engine knows that nothing in the worktree was changed by this run: none of its tools that write ran.
    /// False unless an engine says so (Claude Code's tools are its own, for one).
    /// </summary>
    public bool FilesUntouched { get; init; }

    public sealed record Succeeded(string Summary) : EngineOutcome(OffloadTaskStatus.Succeeded, Summary, null);

    public sealed record Failed(string Why, string? Summary = null) : EngineOutcome(OffloadTaskStatus.Failed, Summary, Why);

    /// <summary>A budget stopped it: turns, tokens, cost, wall time, a repeated action.</summary>
    public sealed record Limited(string Why, string? Summary = null) : EngineOutcome(OffloadTaskStatus.Limited, Summary, Why);

    /// <summary>Stopped at a safe point because the daemon is stopping; resumed at its next start.</summary>
    public sealed record Suspended() : EngineOutcome(OffloadTaskStatus.Running, null, "daemon stopping");

    public sealed record Cancelled(string Why = "cancelled by the user") : EngineOutcome(OffloadTaskStatus.Cancelled, null, Why);
}
