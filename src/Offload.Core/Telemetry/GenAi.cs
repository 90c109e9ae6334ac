namespace Offload.Telemetry;

/// <summary>
/// Names from the OpenTelemetry GenAI semantic conventions (v1.41, the version Microsoft.Extensions.AI's chat spans
/// follow) and Offload's own, under <c>offload.</c>.
/// </summary>
internal static class GenAi
{
    public const string OperationName = "gen_ai.operation.name";
    public const string ProviderName = "gen_ai.provider.name";
    public const string RequestModel = "gen_ai.request.model";
    public const string AgentName = "gen_ai.agent.name";
    public const string ConversationId = "gen_ai.conversation.id";
    public const string InputTokens = "gen_ai.usage.input_tokens";
    public const string OutputTokens = "gen_ai.usage.output_tokens";
    public const string CacheReadTokens = "gen_ai.usage.cache_read.input_tokens";
    public const string CacheCreationTokens = "gen_ai.usage.cache_creation.input_tokens";
    public const string TokenType = "gen_ai.token.type";
    public const string ToolName = "gen_ai.tool.name";
    public const string ToolCallId = "gen_ai.tool.call.id";
    public const string ToolType = "gen_ai.tool.type";
    public const string ToolArguments = "gen_ai.tool.call.arguments";
    public const string ToolResult = "gen_ai.tool.call.result";
    public const string InputMessages = "gen_ai.input.messages";
    public const string OutputMessages = "gen_ai.output.messages";
    public const string SystemInstructions = "gen_ai.system_instructions";
    public const string ErrorType = "error.type";

    public const string InvokeAgent = "invoke_agent";
    public const string ExecuteTool = "execute_tool";

    public const string TaskId = "offload.task.id";
    public const string TaskStatus = "offload.task.status";
    public const string TaskCost = "offload.task.cost";
    public const string Attempt = "offload.attempt";
    public const string Engine = "offload.engine";
    public const string Subagent = "offload.subagent";

    /// <summary>The attributes whose values are prompts, messages or tool input and output: exported only when opted in.</summary>
    public static readonly string[] Content = [InputMessages, OutputMessages, SystemInstructions, ToolArguments, ToolResult];
}
