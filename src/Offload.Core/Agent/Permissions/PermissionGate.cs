using Offload.Agent.Tools;
using Offload.Daemon;
using Offload.Engines;
using Offload.Protocol;

namespace Offload.Agent.Permissions;

/// <summary>
/// The builtin agent's checkpoint before a tool runs: rules (<see cref="PermissionPolicy"/>) →
/// approval (the <see cref="PermissionBroker"/> parks the task until the user answers) → the
/// tool runs (Bash in the sandbox). A refusal is a tool result for the model, never an exception.
/// </summary>
public sealed class PermissionGate(PermissionBroker broker, Func<string, string?> getEnv)
{
    /// <summary>
    /// The rules of this run: the task's settings files and config, plus every
    /// <c>approve --always</c> answer in its journal (so they survive restarts).
    /// <paramref name="bashContained"/>: whether this run's Bash commands run in the sandbox.
    /// </summary>
    public PermissionPolicy PolicyFor(EngineRun run, bool bashContained)
    {
        var rules = PermissionRules.Load(run.Task.RepoPath, getEnv("HOME"), run.Config.Permissions);
        var requests = run.History.OfType<PermissionRequested>().ToDictionary(r => r.RequestId, StringComparer.Ordinal);
        var approved = run.History.OfType<PermissionAnswered>()
            .Where(a => a.Allowed && a.Always && requests.ContainsKey(a.RequestId))
            .Select(a => PermissionRule.AlwaysAllowFor(requests[a.RequestId].Tool, requests[a.RequestId].Input, run.Worktree))
            .ToList();
        return new PermissionPolicy(rules, approved, run.Worktree, getEnv("HOME"), bashContained);
    }

    /// <summary>Claude Code's words to the model while it is in plan mode; a refused call gets them too.</summary>
    public const string PlanModeNote =
        "Plan mode is active. The user indicated that they do not want you to execute yet -- you MUST NOT make any edits " +
        $"(with the exception of the plan file {TaskPlan.PlanFile}), run any non-readonly tools (including changing configs or making commits), " +
        "or otherwise make any changes to the system. This supercedes any other instructions you have received. " +
        $"Explore with Read, Glob and Grep, write your plan to {TaskPlan.PlanFile} with Write, then call ExitPlanMode for the user's approval.";

    /// <summary>
    /// Plan mode's rule, before the permission rules: while <paramref name="plan"/> is in plan mode only reading, searching,
    /// the plan tools and writing the plan file run, and <c>ExitPlanMode</c> parks the task (<see cref="PermissionBroker"/>,
    /// as a question on the call) until the user approves (plan mode ends, <see cref="PlanApproved"/>) or answers with
    /// <c>reply</c>/<c>deny</c> (the model gets the answer and plans on). Null when the call may go on to the rules.
    /// </summary>
    public async Task<ToolResult?> PlanRefusalAsync(EngineRun run, TaskPlan plan, ToolCalled call, ITool? tool, string worktree, CancellationToken cancellationToken)
    {
        if (call.Name == "ExitPlanMode")
        {
            if (!plan.PlanMode)
            {
                return ToolResult.Error("You are not in plan mode. This tool is only for exiting plan mode after writing a plan. If your plan was already approved, continue with the work.");
            }

            if (ExitPlanModeTool.Read(call.Input, worktree) is not { } proposed)
            {
                return ToolResult.Error($"There is no plan to approve: write your plan to {TaskPlan.PlanFile} with Write first, then call ExitPlanMode again.");
            }

            var history = await run.Journal.ReadAllAsync(cancellationToken);
            if (history.LastOrDefault(e => e is PlanProposed or ToolResulted) is not PlanProposed { } open || open.Plan != proposed)
            {
                await run.Journal.AppendAsync(new PlanProposed(proposed, call.Input.TryGetProperty("plan", out _) ? null : TaskPlan.PlanFile), cancellationToken);
            }

            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, run.SoftStop); // a stopping daemon leaves the task parked
            var answer = await broker.RequestAsync(run.Journal, call.Name, call.Input, "plan approval (offload approve, or offload reply with changes)", run.Clock, wait.Token);
            if (!answer.Allowed)
            {
                return ToolResult.Error("The user doesn't want to proceed with this tool use. The tool use was rejected. You are still in plan mode: " +
                    $"revise the plan in {TaskPlan.PlanFile} and call ExitPlanMode again. To tell you how to proceed, the user said:\n{answer.Reason ?? "(no reason given)"}");
            }

            await run.Journal.AppendAsync(new PlanApproved(proposed, ExitPlanModeTool.AllowedPrompts(call.Input)), cancellationToken);
            plan.Approve();
            return null;
        }

        if (!plan.PlanMode || tool is null || !tool.Mutates)
        {
            return null;
        }

        var path = call.Input.ValueKind == System.Text.Json.JsonValueKind.Object && call.Input.TryGetProperty("file_path", out var p) && p.ValueKind == System.Text.Json.JsonValueKind.String ? p.GetString() : null;
        if (call.Name is "Write" or "Edit" && path is not null && Path.GetFullPath(Path.Combine(worktree, path)) == Path.GetFullPath(Path.Combine(worktree, TaskPlan.PlanFile)))
        {
            return null;
        }

        return ToolResult.Error($"{call.Name} is not allowed in plan mode. {PlanModeNote}");
    }

    /// <summary>Null when the call may run; otherwise the error result the model gets instead.</summary>
    public async Task<ToolResult?> CheckAsync(EngineRun run, PermissionPolicy policy, ToolCalled call, CancellationToken cancellationToken)
    {
        var decision = policy.Decide(call.Name, call.Input);
        switch (decision.Behavior)
        {
            case PermissionBehavior.Allow:
                return null;
            case PermissionBehavior.Deny:
                return ToolResult.Error($"Permission denied: {decision.Why}. This call will not run; do the task another way or explain what you needed in your final answer.");
        }

        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, run.SoftStop); // a stopping daemon leaves the task parked
        var answer = await broker.RequestAsync(run.Journal, call.Name, call.Input, decision.Rule?.Describe() ?? decision.Why, run.Clock, wait.Token);
        if (!answer.Allowed)
        {
            return ToolResult.Error($"The user denied this call{(answer.Reason is null ? "." : ": " + answer.Reason)}");
        }

        if (answer.Always)
        {
            policy.Approve(PermissionRule.AlwaysAllowFor(call.Name, call.Input, run.Worktree));
        }

        return null;
    }
}
