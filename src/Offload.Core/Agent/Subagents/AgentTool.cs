using System.Text;
using System.Text.Json;
using Offload.Agent.Tools;

namespace Offload.Agent.Subagents;

/// <summary>
/// Claude Code's <c>Agent</c> tool: starts a subagent of one of <paramref name="types"/> on a prompt, in the same
/// worktree; its final message is the result. It may write (its tools may), yet calls of it in one turn run together,
/// as in Claude Code: <see cref="SubagentRunner"/> caps how many at once.
/// </summary>
public sealed class AgentTool(IReadOnlyList<AgentType> types, SubagentRunner runner) : ITool
{
    public const string ToolName = "Agent";

    public string Name => ToolName;

    public string Description { get; } = Describe(types);

    public JsonElement InputSchema { get; } = ToolInput.Schema("""
        {
          "type": "object",
          "properties": {
            "description": { "type": "string", "description": "A short (3-5 word) description of the task" },
            "prompt": { "type": "string", "description": "The task for the agent to perform" },
            "subagent_type": { "type": "string", "description": "The type of specialized agent to use for this task" },
            "model": { "type": "string", "enum": ["sonnet", "opus", "haiku", "fable"], "description": "Optional model override for this agent. Takes precedence over the agent definition's model frontmatter. If omitted, uses the agent definition's model, or inherits from the parent." }
          },
          "required": ["description", "prompt"],
          "additionalProperties": false
        }
        """);

    public bool Mutates => true;

    public bool ConcurrencySafe => true;

    public IReadOnlyList<AgentType> Types => types;

    public async Task<ToolResult> InvokeAsync(JsonElement input, ToolContext context, CancellationToken cancellationToken = default)
    {
        string prompt;
        string? requested;
        string? model;
        try
        {
            ToolInput.RequireString(input, "description");
            prompt = ToolInput.RequireString(input, "prompt");
            requested = ToolInput.OptionalString(input, "subagent_type");
            model = ToolInput.OptionalString(input, "model");
        }
        catch (ToolException e)
        {
            return ToolResult.Error(e.Message);
        }

        var name = string.IsNullOrWhiteSpace(requested) ? AgentTypes.GeneralPurpose : requested.Trim();
        if (types.FirstOrDefault(t => t.Name == name) is not { } type)
        {
            return ToolResult.Error($"Agent type '{name}' not found. Available agents: {string.Join(", ", types.Select(t => t.Name))}");
        }

        if (type.Invalid is { } invalid)
        {
            return ToolResult.Error($"Agent type '{name}' cannot be used: {invalid}.");
        }

        return await runner.RunAsync(context.CallId ?? throw new InvalidOperationException("The Agent tool needs the call id its subagent is keyed by."),
            type, prompt, model, context, cancellationToken);
    }

    /// <summary>Claude Code's description, with the types and their tools.</summary>
    private static string Describe(IReadOnlyList<AgentType> types)
    {
        var text = new StringBuilder("""
            Launch a new agent to handle complex, multi-step tasks autonomously.

            The Agent tool launches specialized agents that autonomously handle complex tasks. Each agent type has specific capabilities and tools available to it.

            Available agent types and the tools they have access to:

            """);
        foreach (var type in types)
        {
            var tools = type.Tools is { } only ? string.Join(", ", only.Where(type.Allows))
                : type.DisallowedTools.Count > 0 ? "All tools except " + string.Join(", ", type.DisallowedTools)
                : "*";
            text.Append($"- {type.Name}: {type.Description} (Tools: {tools})\n");
        }

        text.Append("""

            When using the Agent tool, specify a subagent_type parameter to select which agent type to use. If omitted, the general-purpose agent is used.

            Usage notes:
            - Launch multiple agents concurrently whenever possible, to maximize performance; to do that, use a single message with multiple tool uses.
            - When the agent is done, it will return a single message back to you. The result returned by the agent is not visible to the user. To show the user the result, you should send a text message back to the user with a concise summary of the result.
            - Each agent invocation is stateless: it starts with a fresh context. Your prompt should contain a highly detailed task description for the agent to perform autonomously, and you should specify exactly what information the agent should return back to you in its final and only message to you.
            - The agent's outputs should generally be trusted.
            - Clearly tell the agent whether you expect it to write code or just to do research (search, file reads, etc.), since it is not aware of the user's intent.
            """);
        return text.ToString();
    }
}
