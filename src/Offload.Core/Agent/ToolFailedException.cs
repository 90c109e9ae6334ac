namespace Offload.Agent;

/// <summary>
/// Marks a tool result as a failure for the model clients (<c>FunctionResultContent.Exception</c>): nothing throws it.
/// The message is the tool's own output, which is what the model reads.
/// </summary>
public sealed class ToolFailedException(string message) : Exception(message);
