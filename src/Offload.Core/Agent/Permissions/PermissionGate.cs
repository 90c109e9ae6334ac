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
