using System.Runtime.CompilerServices;
using Anthropic.Models.Messages;
using Microsoft.Extensions.AI;

namespace Offload.Tests.Models;

/// <summary>
/// For the official SDK's <c>AsIChatClient</c>, the reference <see cref="Offload.Models.AnthropicChatClient"/> is compared with:
/// puts Anthropic prompt-cache breakpoints where an agent loop repeats itself: after the last tool definition,
/// after the system prompt, and after the newest message, so each turn reads the conversation so far from the
/// cache. Three of the four breakpoints the API allows. The caller's messages, contents and tools are never
/// changed (a breakpoint left on an old message would pile up past the limit); marked copies are sent instead.
/// </summary>
public sealed class SdkPromptCachingChatClient(IChatClient inner) : DelegatingChatClient(inner)
{
    public override Task<ChatResponse> GetResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        base.GetResponseAsync(Mark(messages), Mark(options), cancellationToken);

    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        base.GetStreamingResponseAsync(Mark(messages), Mark(options), cancellationToken);

    private static List<ChatMessage> Mark(IEnumerable<ChatMessage> messages)
    {
        List<ChatMessage> marked = [.. messages];
        var system = marked.FindLastIndex(m => m.Role == ChatRole.System);
        if (system >= 0)
        {
            marked[system] = WithBreakpoint(marked[system]);
        }

        var last = marked.Count - 1;
        if (last >= 0 && last != system)
        {
            marked[last] = WithBreakpoint(marked[last]);
        }

        return marked;
    }

    private static ChatMessage WithBreakpoint(ChatMessage message)
    {
        var index = message.Contents.Count - 1;
        AIContent? copy = index < 0 ? null : message.Contents[index] switch
        {
            TextContent text when !string.IsNullOrEmpty(text.Text) => new TextContent(text.Text),
            FunctionResultContent result => new FunctionResultContent(result.CallId, result.Result) { Exception = result.Exception },
            _ => null,
        };
        if (copy is null)
        {
            return message;
        }

        var clone = message.Clone();
        clone.Contents = [.. message.Contents.Take(index), copy.WithCacheControl((Ttl?)null)];
        return clone;
    }

    private static ChatOptions? Mark(ChatOptions? options)
    {
        if (options?.Tools is not { Count: > 0 } tools || tools[^1] is not AIFunction lastTool)
        {
            return options;
        }

        var marked = options.Clone();
        marked.Tools = [.. tools.Take(tools.Count - 1), new CachedFunction(lastTool)];
        return marked;
    }

    /// <summary>A tool definition that ends with a cache breakpoint (read by the Anthropic IChatClient).</summary>
    private sealed class CachedFunction(AIFunction function) : DelegatingAIFunction(function)
    {
        public override IReadOnlyDictionary<string, object?> AdditionalProperties { get; } =
            new Dictionary<string, object?>(function.AdditionalProperties)
            {
                [nameof(Tool.CacheControl)] = new CacheControlEphemeral(),
            };
    }
}
