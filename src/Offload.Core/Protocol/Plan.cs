using System.Text.Json;

namespace Offload.Protocol;

/// <summary>
/// One item of the agent's plan, as Claude Code's <c>TaskCreate</c>/<c>TaskUpdate</c> keep it: <paramref name="Status"/> is
/// <c>pending</c>, <c>in_progress</c>, <c>completed</c> or <c>deleted</c> (a deleted item is kept on record, shown nowhere).
/// </summary>
public sealed record PlanItem(
    string Id,
    string Subject,
    string Description,
    string Status,
    string? ActiveForm = null,
    string? Owner = null,
    IReadOnlyList<string>? Blocks = null,
    IReadOnlyList<string>? BlockedBy = null,
    JsonElement? Metadata = null);

/// <summary>How far the plan is: items completed of the items not deleted (<c>ls</c> shows it as <c>3/7</c>).</summary>
public sealed record PlanProgress(int Done, int Total);

/// <summary>
/// An item of the plan was created or changed: <paramref name="Item"/> is the whole item as it now is, and
/// <paramref name="Done"/>/<paramref name="Total"/> the plan's progress after the change, so that views need only the
/// last such event. The plan is the latest state of each item in the conversation as it stands (<c>Conversation.Current</c>).
/// </summary>
public sealed record PlanItemChanged(PlanItem Item, int Done, int Total) : AgentEvent;

/// <summary>The agent in plan mode proposed its plan (<c>ExitPlanMode</c>); the task now waits for <c>approve</c> or <c>reply</c>.</summary>
/// <param name="File">The plan file in the worktree the plan was read from; null when the plan came in the call's input.</param>
public sealed record PlanProposed(string Plan, string? File = null) : AgentEvent;

/// <summary>The user approved the proposed plan: plan mode is over, the agent may write and run commands.</summary>
/// <param name="AllowedPrompts">
/// The <c>allowedPrompts</c> of the approved <c>ExitPlanMode</c> call: what the agent said it will need (Claude Code's
/// prompt-based permissions). Recorded and shown; they allow nothing by themselves (docs/architecture.md, "The plan", says why).
/// </param>
public sealed record PlanApproved(string Plan, IReadOnlyList<AllowedPrompt>? AllowedPrompts = null) : AgentEvent;

/// <summary>One entry of <c>ExitPlanMode</c>'s <c>allowedPrompts</c>: a tool (<c>Bash</c>) and a description of the actions ("run tests").</summary>
public sealed record AllowedPrompt(string Tool, string Prompt)
{
    /// <summary>Claude Code's form of it as a permission rule: <c>Bash(prompt: run tests)</c>.</summary>
    public override string ToString() => $"{Tool}(prompt: {Prompt})";
}
