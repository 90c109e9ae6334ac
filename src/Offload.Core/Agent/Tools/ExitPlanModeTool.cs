using System.Text.Json;

namespace Offload.Agent.Tools;

/// <summary>
/// Ends plan mode (<c>run --plan-first</c>) as Claude Code 2.1.197 does: the agent has written its plan to the plan file
/// (<see cref="TaskPlan.PlanFile"/>) and proposes it; the input carries only optional <c>allowedPrompts</c> (a <c>plan</c>
/// text, as older versions sent it, is taken too). <see cref="Permissions.PermissionGate.PlanRefusalAsync"/> parks the task
/// in <c>needs_input</c> until the user approves; this runs only after that, and answers with the approved plan.
/// The plan file is removed then (the plan is in the journal and in this answer), so it never lands on the task's branch.
/// </summary>
public sealed class ExitPlanModeTool : ITool
{
    public string Name => "ExitPlanMode";

    public string Description =>
        "Use this tool when you are in plan mode and have finished writing your plan to the plan file " +
        $"({TaskPlan.PlanFile}) and are ready for the user's approval. The user sees the plan file; the task waits for their answer. " +
        "If they approve, you can start making changes; if they answer with feedback, revise the plan and call this tool again.";

    public JsonElement InputSchema { get; } = ToolInput.Schema("""
        {
          "type": "object",
          "properties": {
            "allowedPrompts": {
              "type": "array",
              "description": "Prompt-based permissions needed to implement the plan. These describe categories of actions rather than specific commands.",
              "items": {
                "type": "object",
                "properties": {
                  "tool": { "type": "string", "enum": ["Bash"], "description": "The tool this prompt applies to" },
                  "prompt": { "type": "string", "description": "Semantic description of the action, e.g. \"run tests\", \"install dependencies\"" }
                },
                "required": ["tool", "prompt"]
              }
            }
          },
          "additionalProperties": {}
        }
        """);

    public bool Mutates => false;

    public bool ConcurrencySafe => false;

    public Task<ToolResult> InvokeAsync(JsonElement input, ToolContext context, CancellationToken cancellationToken = default)
    {
        var plan = Read(input, context.WorkDir);
        var file = Path.Combine(context.WorkDir, TaskPlan.PlanFile);
        if (File.Exists(file))
        {
            File.Delete(file);
            var folder = Path.GetDirectoryName(file)!;
            if (!Directory.EnumerateFileSystemEntries(folder).Any())
            {
                Directory.Delete(folder);
            }
        }

        return Task.FromResult(new ToolResult(
            "User has approved your plan. You can now start coding. Start with updating your todo list if applicable\n\n" +
            "The plan is kept in the task's journal; the plan file was removed so that it does not land on the branch.\n\n" +
            $"## Approved Plan:\n{plan}"));
    }

    /// <summary>
    /// The input's <c>allowedPrompts</c> that have a tool and a prompt; null when there are none. Claude Code 2.1.197 turns
    /// them into session rules <c>Bash(prompt: …)</c> only behind a feature flag that is off, and such a rule is matched by
    /// a model classifier, not a pattern; Offload records them with the approval and shows them, and allows nothing by them.
    /// </summary>
    public static IReadOnlyList<Protocol.AllowedPrompt>? AllowedPrompts(JsonElement input)
    {
        if (input.ValueKind != JsonValueKind.Object || !input.TryGetProperty("allowedPrompts", out var list) || list.ValueKind != JsonValueKind.Array)
        {
            return null;
        }

        var prompts = list.EnumerateArray()
            .Where(p => p.ValueKind == JsonValueKind.Object
                && p.TryGetProperty("tool", out var t) && t.ValueKind == JsonValueKind.String
                && p.TryGetProperty("prompt", out var q) && q.ValueKind == JsonValueKind.String && !string.IsNullOrWhiteSpace(q.GetString()))
            .Select(p => new Protocol.AllowedPrompt(p.GetProperty("tool").GetString()!, p.GetProperty("prompt").GetString()!.Trim()))
            .ToList();
        return prompts.Count > 0 ? prompts : null;
    }

    /// <summary>The proposed plan: the <c>plan</c> text of the input, else the plan file; null when there is neither.</summary>
    public static string? Read(JsonElement input, string worktree)
    {
        if (input.ValueKind == JsonValueKind.Object && input.TryGetProperty("plan", out var text) && text.ValueKind == JsonValueKind.String
            && !string.IsNullOrWhiteSpace(text.GetString()))
        {
            return text.GetString()!.Trim();
        }

        var file = Path.Combine(worktree, TaskPlan.PlanFile);
        return File.Exists(file) && File.ReadAllText(file).Trim() is { Length: > 0 } written ? written : null;
    }
}
