namespace Offload.Protocol;

/// <summary>
/// A new attempt of the task starts from its base (<c>offload retry</c>): the conversation starts
/// again from the prompt, the earlier attempt's branch state is kept on <paramref name="SavedRef"/>.
/// </summary>
public sealed record AttemptStarted(int Number, string Model, string? SavedRef = null, string? SavedCommit = null) : AgentEvent;

/// <summary>
/// The worktree and the conversation went back to the end of turn <paramref name="Turn"/>
/// (<c>offload rewind</c>): events after <paramref name="ToSeq"/> stay on record but are no longer
/// part of the conversation.
/// </summary>
public sealed record TaskRewound(int Turn, long ToSeq, string Checkpoint, string? Commit) : AgentEvent;

/// <summary>The task's caps were raised (e.g. with <c>offload reply --max-turns</c>); null means unchanged.</summary>
public sealed record LimitsChanged(int? MaxTurns = null, decimal? MaxCostUsd = null, int? TimeoutSeconds = null) : AgentEvent;

/// <summary>
/// The task's branch was brought into the user's branch (<paramref name="Mode"/> <c>squash</c> or
/// <c>merge</c>) or working tree (<c>apply</c>). <paramref name="Tip"/> is the task branch's commit at
/// that moment: work committed after it is not merged.
/// </summary>
public sealed record TaskMerged(string Mode, string Into, string Tip, string? Commit, IReadOnlyList<string> Files) : AgentEvent;

/// <summary>The user threw the task's worktree and branch away.</summary>
public sealed record TaskDiscarded(long BytesFreed) : AgentEvent;
