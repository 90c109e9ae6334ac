using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace Offload.Models;

/// <summary>
/// OpenAI's protocols have no error flag on a tool result (a Chat Completions <c>tool</c> message carries only
/// <c>tool_call_id</c> and <c>content</c>; a Responses <c>function_call_output</c> only <c>call_id</c> and
/// <c>output</c>), and the OpenAI adapter drops <see cref="FunctionResultContent.Exception"/>. So a failed result is
/// sent as its text after "Error: ", the model's only way to tell it from a success. The caller's messages are not changed.
/// </summary>
internal sealed class ToolErrorTextChatClient(IChatClient inner) : DelegatingChatClient(inner)
{
    public override Task<ChatResponse> GetResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        base.GetResponseAsync(Marked(messages), options, cancellationToken);

    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var update in base.GetStreamingResponseAsync(Marked(messages), options, cancellationToken).ConfigureAwait(false))
        {
            yield return update;
        }
    }

    private static IEnumerable<ChatMessage> Marked(IEnumerable<ChatMessage> messages) => messages.Select(message =>
        !message.Contents.Any(c => c is FunctionResultContent { Exception: not null })
            ? message
            : new ChatMessage(message.Role, [.. message.Contents.Select(c => c is FunctionResultContent { Exception: { } failure } result
                ? new FunctionResultContent(result.CallId, $"Error: {result.Result ?? failure.Message}")
                : c)]));
}
