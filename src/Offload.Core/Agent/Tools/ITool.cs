using System.Text.Json;
using Offload.Protocol;

namespace Offload.Agent.Tools;

/// <summary>
/// One tool the builtin agent can call. Named and shaped like Claude Code's tools, since
/// Claude models are trained on them. A tool's failure is a <see cref="ToolResult"/> with
/// <c>IsError</c>; only a broken runtime throws.
/// </summary>
public interface ITool
{
    string Name { get; }
    string Description { get; }
    /// <summary>JSON schema of the input object.</summary>
    JsonElement InputSchema { get; }
    /// <summary>Whether the tool can change files or run commands (used by permission rules).</summary>
    bool Mutates { get; }
    /// <summary>
    /// Whether calls of this tool may run at the same time as the other such calls of the same turn (Read, Glob, Grep;
    /// a subagent tool may say yes while it <see cref="Mutates"/>). Calls that say no run alone, in the order given.
    /// </summary>
    bool ConcurrencySafe => !Mutates;
    Task<ToolResult> InvokeAsync(JsonElement input, ToolContext context, CancellationToken cancellationToken = default);
}

/// <param name="WorkDir">The task's worktree: file tools stay inside it, Bash runs in it.</param>
/// <param name="SpillDir">Where a tool keeps the full output of a result it had to cut.</param>
/// <param name="MaxOutputChars">The cap on what the model sees of one result.</param>
/// <param name="Environment">The whole environment of Bash commands; null inherits the daemon's.</param>
/// <param name="Sandbox">Run Bash commands under bubblewrap with this policy; null runs them unconfined.</param>
/// <param name="Limits">Processes, memory and disk for each Bash command (<see cref="CommandLimits"/>); null for none.</param>
/// <param name="Reads">What this task has Read, for Write and Edit's rule "read it first, and again if it changed"; null
/// only where a tool is tried on its own (tool tests), where that rule is off.</param>
/// <param name="Plan">The task's plan, for the plan tools (<see cref="PlanTool"/>); null where a tool is tried on its own.</param>
/// <param name="CallId">The call being run (set by the runner for each call): a subagent is keyed by it.</param>
public sealed record ToolContext(
    string WorkDir,
    string SpillDir,
    int MaxOutputChars = 30_000,
    TimeSpan? DefaultBashTimeout = null,
    IReadOnlyDictionary<string, string>? Environment = null,
    SandboxPolicy? Sandbox = null,
    SandboxLimits? Limits = null,
    FileReads? Reads = null,
    TaskPlan? Plan = null,
    string? CallId = null);

/// <param name="File">The file a Read saw or a Write or Edit left (<see cref="FileReads"/>).</param>
public sealed record ToolResult(string Output, bool IsError = false, int? ExitCode = null, bool Truncated = false, string? FullOutputPath = null, FileStamp? File = null)
{
    /// <summary>Events the call caused (a plan change), journaled with its result in one transaction.</summary>
    public IReadOnlyList<AgentEvent> Events { get; init; } = [];

    public static ToolResult Error(string message) => new(message, IsError: true);
}
