using System.Text.Json;
using System.Text.Json.Serialization;

namespace Offload.Protocol;

/// <summary>
/// One entry of a task's journal. The journal is the truth: live views replay it,
/// resume rebuilds the conversation from it. <see cref="Seq"/> is gapless per task.
/// The envelope fields are filled by the store when the event is appended.
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "type")]
[JsonDerivedType(typeof(TaskCreated), "task.created")]
[JsonDerivedType(typeof(StatusChanged), "task.status")]
[JsonDerivedType(typeof(UserMessage), "message.user")]
[JsonDerivedType(typeof(AssistantMessage), "message.assistant")]
[JsonDerivedType(typeof(ToolCalled), "tool.call")]
[JsonDerivedType(typeof(ToolResulted), "tool.result")]
[JsonDerivedType(typeof(UsageRecorded), "usage")]
[JsonDerivedType(typeof(ModelRetried), "model.retry")]
[JsonDerivedType(typeof(PermissionRequested), "permission.requested")]
[JsonDerivedType(typeof(PermissionAnswered), "permission.answered")]
[JsonDerivedType(typeof(CheckpointSaved), "checkpoint")]
[JsonDerivedType(typeof(ErrorRaised), "error")]
[JsonDerivedType(typeof(EngineNote), "engine.note")]
[JsonDerivedType(typeof(TaskFinished), "task.finished")]
[JsonDerivedType(typeof(AttemptStarted), "attempt.started")]
[JsonDerivedType(typeof(TaskRewound), "task.rewound")]
[JsonDerivedType(typeof(LimitsChanged), "task.limits")]
[JsonDerivedType(typeof(TaskMerged), "task.merged")]
[JsonDerivedType(typeof(TaskDiscarded), "task.discarded")]
[JsonDerivedType(typeof(WorktreeRestored), "worktree.restored")]
[JsonDerivedType(typeof(ContextCompacted), "context.compacted")]
[JsonDerivedType(typeof(PlanItemChanged), "plan.item")]
[JsonDerivedType(typeof(PlanProposed), "plan.proposed")]
[JsonDerivedType(typeof(PlanApproved), "plan.approved")]
[JsonDerivedType(typeof(CheckRan), "check.ran")]
[JsonDerivedType(typeof(SetupRan), "setup.ran")]
public abstract record AgentEvent
{
    public long TaskId { get; init; }
    public long Seq { get; init; }
    public int Attempt { get; init; }
    public DateTimeOffset At { get; init; }

    /// <summary>
    /// The <c>Agent</c> call (its call id) whose subagent wrote this event; null for the task's own agent (and in journals
    /// written before subagents). A subagent's conversation is the events that carry its id, so it resumes from them.
    /// </summary>
    public string? Subagent { get; init; }
}

/// <param name="PlanFirst">Started in plan mode (<c>run --plan-first</c>): the agent only reads until the user approves its plan.</param>
public sealed record TaskCreated(string Prompt, string Model, string Engine, string Branch, string BaseRef, string BaseCommit, bool PlanFirst = false) : AgentEvent
{
    /// <summary>The command that defines done (<c>run --check</c>), and how often a failure goes back to the agent.</summary>
    public string? Check { get; init; }
    public int? CheckTries { get; init; }
    public long? Group { get; init; }
    public IReadOnlyList<string>? Tags { get; init; }
    public long? AgainOf { get; init; }
}

/// <summary>
/// The task's check ran after the agent's final answer (<c>run --check</c>), in the sandbox, in the worktree.
/// <paramref name="Try"/> counts from 1 since the prompt or the user's last reply; a failure's
/// <paramref name="OutputTail"/> goes back to the agent while tries are left.
/// </summary>
public sealed record CheckRan(string Command, int? ExitCode, bool Passed, string OutputTail, long DurationMs, int Try, string? FullOutputPath = null) : AgentEvent;

/// <summary>
/// One of the repository's <c>setup</c> commands ran in the new worktree, in the sandbox, before the agent started.
/// On the last one, when all passed, <paramref name="KeptOut"/> lists the paths setup made, which are never committed;
/// its presence says setup is done for this worktree.
/// </summary>
public sealed record SetupRan(string Command, int? ExitCode, bool Passed, string OutputTail, long DurationMs, string? FullOutputPath = null, IReadOnlyList<string>? KeptOut = null) : AgentEvent;

public sealed record StatusChanged(OffloadTaskStatus From, OffloadTaskStatus To, string? Reason = null) : AgentEvent;

/// <summary>A user message: the prompt of a run, a reply, or a note the runtime adds for the model (e.g. an interrupted call).</summary>
public sealed record UserMessage(string Text, string Source = "user") : AgentEvent;

/// <summary>
/// The text part of one assistant turn; the tool calls of that turn follow as <see cref="ToolCalled"/>.
/// <paramref name="Thinking"/> holds the turn's thinking blocks as the model gave them (null in journals written
/// before thinking was kept, and for turns without any): they go back to the model unchanged with the turn.
/// </summary>
public sealed record AssistantMessage(int Turn, string Text, IReadOnlyList<ThinkingBlock>? Thinking = null) : AgentEvent;

/// <summary>
/// One thinking block of an assistant turn: the thought with its <paramref name="Signature"/>, or, when the provider
/// redacted it, only its encrypted <paramref name="RedactedData"/> (then <paramref name="Text"/> is empty). Both are
/// opaque: the provider checks them when they come back, so they are kept byte for byte.
/// </summary>
public sealed record ThinkingBlock(string Text, string? Signature = null, string? RedactedData = null)
{
    [JsonIgnore]
    public bool IsRedacted => RedactedData is not null;
}

/// <summary>Written before the tool runs.</summary>
public sealed record ToolCalled(int Turn, string CallId, string Name, JsonElement Input) : AgentEvent;

/// <summary>
/// Written after the tool ran. <see cref="Output"/> is what the model sees (possibly cut). <see cref="File"/>: the file a
/// Read saw or a Write or Edit left, so that a later Write or Edit (after a restart too) knows whether it was read and
/// whether it changed since (absent in journals written before it existed: such files count as not read).
/// </summary>
public sealed record ToolResulted(string CallId, string Name, string Output, bool IsError, int? ExitCode = null, bool Truncated = false, string? FullOutputPath = null, FileStamp? File = null) : AgentEvent;

/// <summary>A file as a tool saw it: its path relative to the worktree, size, modification time and SHA-256 (null past 64 MiB).</summary>
public sealed record FileStamp(string Path, long Size, DateTimeOffset ModifiedAt, string? Sha256);

public sealed record UsageRecorded(string Model, long InputTokens, long OutputTokens, long CacheReadTokens, long CacheWriteTokens, decimal CostUsd) : AgentEvent;

public sealed record ModelRetried(int Try, int DelayMs, string Reason) : AgentEvent;

public sealed record PermissionRequested(string RequestId, string Tool, JsonElement Input, string? Rule = null) : AgentEvent;

public sealed record PermissionAnswered(string RequestId, bool Allowed, string? Reason = null, bool Always = false) : AgentEvent;

public sealed record CheckpointSaved(int Turn, string Ref, string Commit, int FilesChanged) : AgentEvent;

/// <summary>
/// The task's worktree folder was gone (deleted while the daemon was down, by a cleanup script, by hand) and was made
/// again from its branch at <paramref name="BranchCommit"/>, with the files of the checkpoint of <paramref name="Turn"/>
/// (<paramref name="Checkpoint"/>) when one was taken on top of that commit. Changes made after that were only in the
/// deleted folder.
/// </summary>
public sealed record WorktreeRestored(string Worktree, string BranchCommit, int? Turn = null, string? Checkpoint = null) : AgentEvent;

/// <summary>
/// The conversation was made to fit the model's context window, in one step: the outputs of the tool calls in
/// <paramref name="Cleared"/> are replaced, in what the model sees from now on, by a note naming the file that keeps each
/// whole; and when <paramref name="Summary"/> is set, every event of the conversation before <paramref name="KeptFromSeq"/>
/// is replaced by that summary, written by the model. The journal itself keeps everything; the conversation is rebuilt
/// from it (<c>Conversation.Rebuild</c>), so resume, reply, rewind and retry see what the model saw.
/// </summary>
/// <param name="Turn">The task's turns so far when it happened.</param>
/// <param name="Reason"><c>threshold</c> (the next request would have passed the configured share of the window) or
/// <c>prompt too long</c> (the provider refused the request).</param>
/// <param name="Window">The context window, in tokens, the conversation was fitted to.</param>
/// <param name="TokensBefore">The estimated input tokens of the next request before, and <paramref name="TokensAfter"/> after.</param>
public sealed record ContextCompacted(
    int Turn,
    string Reason,
    int Window,
    long TokensBefore,
    long TokensAfter,
    IReadOnlyList<ClearedOutput> Cleared,
    string? Summary = null,
    long? KeptFromSeq = null) : AgentEvent;

/// <summary>A tool result taken out of the conversation; <paramref name="Path"/> holds its whole output.</summary>
public sealed record ClearedOutput(string CallId, string Path);

public sealed record ErrorRaised(string Message, string? Detail = null) : AgentEvent;

/// <summary>Anything an engine wants on record that has no better kind (e.g. a raw Claude Code stream line).</summary>
public sealed record EngineNote(string Kind, string Text) : AgentEvent;

public sealed record TaskFinished(OffloadTaskStatus Status, string? Summary, string? Reason, string? Commit) : AgentEvent;
