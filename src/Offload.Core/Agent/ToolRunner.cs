using Offload.Agent.Permissions;
using Offload.Agent.Tools;
using Offload.Engines;
using Offload.Protocol;

namespace Offload.Agent;

/// <summary>
/// Runs the tool calls of one turn, as Claude Code does: consecutive calls of tools that are
/// <see cref="ITool.ConcurrencySafe"/> (Read, Glob, Grep) run together; any other call runs alone, after those before
/// it and before those after it. Permissions are asked one call at a time, in call order, before a batch starts.
/// Each result is in the journal as soon as its call ends (so the journal can hold a batch's results out of call
/// order); the results come back in call order, which is the order the model gets them in, live and on resume.
/// </summary>
/// <param name="subagent">The Agent call whose subagent makes these calls (its results are marked with it); null for the task's agent.</param>
internal sealed class ToolRunner(ToolRegistry tools, PermissionGate permissions, EngineRun run, PermissionPolicy policy, ToolContext context, string? subagent = null)
{
    private readonly SemaphoreSlim _journal = new(1, 1); // one append at a time: live views see seq in order

    public async Task<IReadOnlyList<ToolResulted>> RunTurnAsync(IReadOnlyList<ToolCalled> calls, CancellationToken cancellationToken)
    {
        var results = new ToolResulted[calls.Count];
        for (var start = 0; start < calls.Count;)
        {
            var end = start + 1;
            if (ConcurrencySafe(calls[start]))
            {
                while (end < calls.Count && ConcurrencySafe(calls[end]))
                {
                    end++;
                }
            }

            var refusals = new ToolResult?[end - start];
            for (var i = start; i < end; i++)
            {
                refusals[i - start] = await RefusalAsync(calls[i], cancellationToken);
            }

            await Task.WhenAll(Enumerable.Range(start, end - start).Select(async i =>
                results[i] = await InvokeAsync(calls[i], refusals[i - start], cancellationToken)));
            start = end;
        }

        return results;
    }

    /// <summary>One call on its own: rules → approval → run; the result as stored (secrets redacted) is what the model sees.</summary>
    public async Task<ToolResulted> RunAsync(ToolCalled call, CancellationToken cancellationToken) =>
        await InvokeAsync(call, await RefusalAsync(call, cancellationToken), cancellationToken);

    private bool ConcurrencySafe(ToolCalled call) => tools.TryGetValue(call.Name, out var tool) && tool.ConcurrencySafe;

    /// <summary>Null when the call may run; otherwise the error result the model gets instead.</summary>
    private async Task<ToolResult?> RefusalAsync(ToolCalled call, CancellationToken cancellationToken) =>
        !tools.TryGetValue(call.Name, out var tool)
            ? ToolResult.Error($"there is no tool named {call.Name}; the tools are {string.Join(", ", tools.Values.Select(t => t.Name))}")
            : (context.Plan is { } plan ? await permissions.PlanRefusalAsync(run, plan, call, tool, context.WorkDir, cancellationToken) : null)
              ?? (call.Name == "ExitPlanMode" ? null : await permissions.CheckAsync(run, policy, call, cancellationToken));

    private async Task<ToolResulted> InvokeAsync(ToolCalled call, ToolResult? refusal, CancellationToken cancellationToken)
    {
        using var span = run.Telemetry?.StartTool(call, subagent);
        var result = refusal ?? await Task.Run(() => tools[call.Name].InvokeAsync(call.Input, context with { CallId = call.CallId }, cancellationToken), cancellationToken);
        if (result is { IsError: false, File: { } stamp })
        {
            context.Reads?.Record(stamp);
        }

        await _journal.WaitAsync(cancellationToken);
        try
        {
            var stored = await run.Journal.AppendAllAsync(
                [new ToolResulted(call.CallId, call.Name, result.Output, result.IsError, result.ExitCode, result.Truncated, result.FullOutputPath, result.File) { Subagent = subagent }, .. result.Events],
                cancellationToken);
            run.Telemetry?.EndTool(span, (ToolResulted)stored[0]);
            return (ToolResulted)stored[0];
        }
        finally
        {
            _journal.Release();
        }
    }
}
