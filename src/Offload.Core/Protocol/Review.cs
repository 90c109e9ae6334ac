namespace Offload.Protocol;

// The API of the follow-up verbs: merge, apply, discard, gc, reply, retry, checkpoints, rewind, and the full report.

public sealed record MergeRequest(bool Squash = true);

/// <param name="Mode"><c>squash</c>, <c>merge</c> or <c>apply</c>.</param>
/// <param name="Into">The branch merged into (for apply: the repository's working tree).</param>
/// <param name="Commit">The new commit on <paramref name="Into"/>; null for apply, or when there was nothing to merge.</param>
/// <param name="Files">The paths written in the user's working tree.</param>
public sealed record MergeResponse(long Id, string Mode, string Into, string? Commit, IReadOnlyList<string> Files);

public sealed record DiscardRequest(bool Force = false);

public sealed record DiscardResponse(long Id, long BytesFreed, bool CancelledFirst);

/// <param name="Reason">Why the worktree was freed (merged, discarded) or kept (unmerged commits, uncommitted changes).</param>
public sealed record GcItem(long Id, string Worktree, long Bytes, string Reason);

public sealed record GcResponse(IReadOnlyList<GcItem> Removed, IReadOnlyList<GcItem> Kept, long BytesFreed);

/// <summary>A follow-up message; the caps given replace the task's (a raised budget lets a limited task go on).</summary>
public sealed record ReplyRequest(string Text, int? MaxTurns = null, decimal? MaxCostUsd = null, int? TimeoutSeconds = null);

public sealed record RetryRequest(string? Model = null, int? MaxTurns = null, decimal? MaxCostUsd = null, int? TimeoutSeconds = null);

public sealed record RewindRequest(int Turn);

public sealed record CheckpointInfo(int Turn, string Ref, string Commit, DateTimeOffset At, int FilesChanged);

public sealed record RewindResponse(TaskInfo Task, CheckpointInfo Checkpoint);

/// <summary>A shell command the agent ran. <paramref name="IsTest"/>: it looks like a test run (pytest, npm test, dotnet test, …).</summary>
public sealed record CommandRun(int Attempt, int Turn, string Command, int? ExitCode, bool IsError, bool IsTest, DateTimeOffset At);

/// <summary>One attempt of a task: the first run and each <c>offload retry</c>. Replies continue the same attempt.</summary>
public sealed record AttemptInfo(
    int Number, string Model, DateTimeOffset StartedAt, OffloadTaskStatus? Status, string? Reason, DateTimeOffset? FinishedAt,
    int Turns, decimal CostUsd, string? SavedRef);

/// <summary>How the task's work reached the user's repository.</summary>
public sealed record MergeRecord(string Mode, string Into, string? Commit, DateTimeOffset At);

/// <summary>
/// The worktree was found gone and made again from the branch at <paramref name="BranchCommit"/>, with the files of
/// the checkpoint of <paramref name="Turn"/> when there was one newer than that commit.
/// </summary>
public sealed record WorktreeRestoreRecord(DateTimeOffset At, string BranchCommit, int? Turn, string? Checkpoint);

/// <summary>One compaction of the builtin agent's conversation (<see cref="ContextCompacted"/>): when, why, how much it took out.</summary>
/// <param name="Cleared">How many tool outputs were cleared.</param>
/// <param name="Summarised">Whether the conversation before the last turns was replaced by a summary.</param>
public sealed record CompactionRecord(
    int Attempt, DateTimeOffset At, int Turn, string Reason, int Window, long TokensBefore, long TokensAfter, int Cleared, bool Summarised);

/// <summary>
/// Everything <c>offload show</c> tells: the task, its files with line counts, the commands it ran
/// (of the current attempt), its attempts, merges, the time it actually spent running, and each time its
/// worktree had to be made again, each compaction of its conversation; the agent's plan (its items, and for <c>--plan-first</c> the plan proposed or approved).
/// </summary>
public sealed record TaskDetails(
    TaskInfo Task,
    IReadOnlyList<ChangedFile> Files,
    IReadOnlyList<CommandRun> Commands,
    IReadOnlyList<AttemptInfo> Attempts,
    IReadOnlyList<MergeRecord> Merges,
    double RunSeconds,
    IReadOnlyList<WorktreeRestoreRecord>? Restores = null,
    IReadOnlyList<PlanItem>? Plan = null,
    string? ProposedPlan = null,
    string? ApprovedPlan = null,
    IReadOnlyList<CompactionRecord>? Compactions = null,
    IReadOnlyList<SubagentInfo>? Subagents = null,
    IReadOnlyList<AllowedPrompt>? ApprovedPrompts = null,
    IReadOnlyList<CheckRan>? Checks = null);

/// <summary>
/// A subagent the task's agent started with the <c>Agent</c> tool (call <paramref name="CallId"/>), with its share of the
/// task's turns, tokens and cost (they are in the task's totals too). <paramref name="Result"/>: its final message, once given.
/// </summary>
public sealed record SubagentInfo(string CallId, string Type, string Description, int Turns, long InputTokens, long OutputTokens, decimal CostUsd, string? Result);

/// <summary>
/// What a webhook receives when a task succeeds, fails, is limited or needs input. <paramref name="Text"/>
/// is the whole message in one line or a few (Slack's incoming webhooks show it as is).
/// </summary>
public sealed record TaskNotification(
    long Id, string Status, string Title, string? Summary, string? Reason, string Repo, string Branch,
    string Link, string Command, string Text, DateTimeOffset At);
