using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.AI;

namespace Offload.Models;

/// <summary>The answer: the Messages API's SSE events read into <see cref="ChatResponseUpdate"/>s.</summary>
public sealed partial class AnthropicChatClient
{
    /// <summary>
    /// Reads one answer's events: text as it comes, each tool call once its input is complete, the stop reason, and
    /// the usage at the end (as the SDK adapter reports it: input counts every input token, cache reads and writes
    /// included). An <c>error</c> event ends the answer with a <see cref="ModelProviderException"/>; an event whose data
    /// is not the JSON it should be, with a <see cref="JsonException"/>.
    /// </summary>
    private sealed class EventReader
    {
        private readonly Dictionary<int, (string Id, string Name, StringBuilder Arguments)> _calls = [];
        private readonly Dictionary<int, (StringBuilder Text, StringBuilder Signature)> _thinking = [];
        private string? _messageId;
        private string? _modelId;
        private ChatFinishReason? _finish;
        private long? _input;
        private long? _output;
        private long? _cacheWrite;
        private long? _cacheRead;
        private bool _hasUsage;

        public async IAsyncEnumerable<ChatResponseUpdate> ReadAsync(Stream stream, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            var parser = SseParser.Create(stream, static (_, data) => JsonSerializer.Deserialize(data, AnthropicWireJson.Default.StreamEvent));
            await foreach (var item in parser.EnumerateAsync(cancellationToken).ConfigureAwait(false))
            {
                if (item.Data is not { } e)
                {
                    continue;
                }

                if (e.Type == "error")
                {
                    throw new ModelProviderException(null, e.Error?.Type, e.Error?.Message ?? "the stream reported an error", null);
                }

                yield return Read(e); // every event, pings too, shows the stream is alive (RetryingChatClient's idle timeout)

                if (e.Type == "message_stop")
                {
                    break;
                }
            }

            if (Usage() is { } usage)
            {
                yield return Update([new UsageContent(usage)]);
            }
        }

        private ChatResponseUpdate Read(StreamEvent e)
        {
            List<AIContent> contents = [];
            switch (e.Type)
            {
                case "message_start" when e.Message is { } message:
                    _messageId ??= message.Id;
                    _modelId ??= message.Model;
                    if (message.Usage is { } start)
                    {
                        (_input, _output, _cacheWrite, _cacheRead, _hasUsage) =
                            (start.InputTokens, start.OutputTokens, start.CacheCreationInputTokens, start.CacheReadInputTokens, true);
                    }

                    break;

                case "message_delta":
                    _finish = FinishReason(e.Delta?.StopReason);
                    if (e.Usage is { } usage)
                    {
                        // Cumulative; the input and cache counts are usually left out of the last delta.
                        _input = usage.InputTokens ?? _input;
                        _output = usage.OutputTokens ?? _output;
                        _cacheWrite = usage.CacheCreationInputTokens ?? _cacheWrite;
                        _cacheRead = usage.CacheReadInputTokens ?? _cacheRead;
                        _hasUsage = true;
                    }

                    break;

                case "content_block_start" when e.ContentBlock is { } block:
                    if (block.Type == "text" && !string.IsNullOrEmpty(block.Text))
                    {
                        contents.Add(new TextContent(block.Text));
                    }
                    else if (block.Type == "tool_use")
                    {
                        _calls[e.Index] = (block.Id ?? "", block.Name ?? "", new StringBuilder());
                    }
                    else if (block.Type == "thinking")
                    {
                        _thinking[e.Index] = (new StringBuilder(block.Thinking), new StringBuilder(block.Signature));
                    }
                    else if (block.Type == "redacted_thinking" && block.Data is { } data)
                    {
                        contents.Add(RedactedThinking(data));
                    }

                    break;

                case "content_block_delta" when e.Delta is { } delta:
                    if (delta.Type == "text_delta" && delta.Text is { } text)
                    {
                        contents.Add(new TextContent(text));
                    }
                    else if (delta.Type == "input_json_delta" && _calls.TryGetValue(e.Index, out var call))
                    {
                        call.Arguments.Append(delta.PartialJson);
                    }
                    else if (delta.Type == "thinking_delta" && _thinking.TryGetValue(e.Index, out var thought))
                    {
                        thought.Text.Append(delta.Thinking);
                    }
                    else if (delta.Type == "signature_delta" && _thinking.TryGetValue(e.Index, out var signed))
                    {
                        signed.Signature.Append(delta.Signature);
                    }

                    break;

                case "content_block_stop" when _thinking.Remove(e.Index, out var thinking):
                    // One whole block: its signature covers the whole text, and two blocks must not be joined.
                    contents.Add(new TextReasoningContent(thinking.Text.ToString())
                    {
                        ProtectedData = thinking.Signature.Length == 0 ? null : thinking.Signature.ToString(),
                    });
                    break;

                case "content_block_stop" when _calls.Remove(e.Index, out var done):
                    var arguments = done.Arguments.Length == 0 ? "{}" : done.Arguments.ToString();
                    contents.Add(FunctionCallContent.CreateFromParsedArguments(arguments, done.Id, done.Name,
                        static json => JsonSerializer.Deserialize(json, AIJsonUtilities.DefaultOptions.GetTypeInfo(typeof(Dictionary<string, object?>))) as Dictionary<string, object?>));
                    break;

                default:
                    break; // pings, the end, and what this client does not read (server tools)
            }

            return Update(contents);
        }

        private ChatResponseUpdate Update(IList<AIContent> contents) => new(ChatRole.Assistant, contents)
        {
            CreatedAt = DateTimeOffset.UtcNow,
            FinishReason = _finish,
            MessageId = _messageId,
            ModelId = _modelId,
            ResponseId = _messageId,
        };

        private UsageDetails? Usage()
        {
            if (!_hasUsage)
            {
                return null;
            }

            var input = _input.GetValueOrDefault() + _cacheRead.GetValueOrDefault() + _cacheWrite.GetValueOrDefault();
            var details = new UsageDetails
            {
                InputTokenCount = input,
                OutputTokenCount = _output,
                TotalTokenCount = input + _output.GetValueOrDefault(),
                CachedInputTokenCount = _cacheRead,
            };
            if (_cacheWrite is { } written)
            {
                details.AdditionalCounts = new() { [ModelUsage.CacheWriteCountKey] = written };
            }

            return details;
        }

        private static ChatFinishReason? FinishReason(string? reason) => reason switch
        {
            null => null,
            "end_turn" or "stop_sequence" => ChatFinishReason.Stop,
            "max_tokens" or "model_context_window_exceeded" => ChatFinishReason.Length,
            "tool_use" => ChatFinishReason.ToolCalls,
            "refusal" => ChatFinishReason.ContentFilter,
            _ => new ChatFinishReason(reason),
        };
    }
}

/// <summary>One event of a Messages stream: the fields of every event type this client reads, in one shape.</summary>
internal sealed class StreamEvent
{
    public string Type { get; set; } = "";

    public int Index { get; set; }

    public StreamMessage? Message { get; set; }

    public StreamBlock? ContentBlock { get; set; }

    public StreamDelta? Delta { get; set; }

    public StreamUsage? Usage { get; set; }

    public StreamError? Error { get; set; }
}

internal sealed class StreamMessage
{
    public string? Id { get; set; }

    public string? Model { get; set; }

    public StreamUsage? Usage { get; set; }
}

internal sealed class StreamBlock
{
    public string? Type { get; set; }

    public string? Text { get; set; }

    public string? Id { get; set; }

    public string? Name { get; set; }

    public string? Thinking { get; set; }

    public string? Signature { get; set; }

    /// <summary>A redacted thinking block's encrypted thinking.</summary>
    public string? Data { get; set; }
}

/// <summary>A block's delta (text, tool input) or the message's (stop reason).</summary>
internal sealed class StreamDelta
{
    public string? Type { get; set; }

    public string? Text { get; set; }

    public string? PartialJson { get; set; }

    public string? Thinking { get; set; }

    public string? Signature { get; set; }

    public string? StopReason { get; set; }
}

internal sealed class StreamUsage
{
    public long? InputTokens { get; set; }

    public long? OutputTokens { get; set; }

    public long? CacheCreationInputTokens { get; set; }

    public long? CacheReadInputTokens { get; set; }
}

internal sealed class StreamError
{
    public string? Type { get; set; }

    public string? Message { get; set; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(StreamEvent))]
internal sealed partial class AnthropicWireJson : JsonSerializerContext;
