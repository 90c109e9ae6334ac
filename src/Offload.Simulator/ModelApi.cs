using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Offload.Simulator;

/// <summary>
/// One wire protocol the simulator speaks (Anthropic Messages or OpenAI Chat Completions): how to read a
/// request's conversation and how to write replies, streams and errors in that provider's shapes.
/// </summary>
internal abstract class ModelApi
{
    protected static readonly JsonSerializerOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public abstract string Name { get; }

    public abstract string MessageIdPrefix { get; }

    /// <exception cref="FormatException">The body is not a request of this API.</exception>
    public abstract ConversationView Read(JsonElement root);

    public abstract string ErrorBody(int status, string message);

    /// <summary>The 400 body a provider sends for a request longer than the model's context window.</summary>
    public abstract string ContextOverflowBody(int tokens, int window);

    /// <summary>An error delivered inside a 200 stream.</summary>
    public abstract SseEvent ErrorEvent(string message);

    /// <summary>A stream event whose data line is not valid JSON.</summary>
    public abstract SseEvent MalformedEvent();

    public abstract IReadOnlyList<SseEvent> StreamEvents(Reply reply, ConversationView request);

    public abstract string Message(Reply reply);

    public abstract string ToolCallId(int turnIndex, int callIndex);

    /// <summary>Splits <paramref name="s"/> into at least <paramref name="minParts"/> pieces of at most about
    /// <paramref name="maxChunk"/> chars, never inside a surrogate pair.</summary>
    protected static IEnumerable<string> Chunks(string s, int minParts, int maxChunk)
    {
        if (s.Length == 0)
        {
            yield break;
        }

        var parts = Math.Min(s.Length, Math.Max(minParts, (s.Length + maxChunk - 1) / maxChunk));
        var size = (s.Length + parts - 1) / parts;
        var start = 0;
        while (start < s.Length)
        {
            var end = Math.Min(s.Length, start + size);
            if (end < s.Length && char.IsHighSurrogate(s[end - 1]))
            {
                end++;
            }

            yield return s[start..end];
            start = end;
        }
    }

    protected static string Json(JsonNode node) => node.ToJsonString(JsonOptions);

    protected static JsonNode ToNode(JsonElement element) => JsonNode.Parse(element.GetRawText())!;

    internal static string InputJson(JsonElement element)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JsonOptions.Encoder }))
        {
            element.WriteTo(writer);
        }

        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}

internal readonly record struct SseEvent(string? Name, string Data);

/// <summary>What the simulator needs from a model request, whichever API it came through.</summary>
internal sealed record ConversationView(
    string? Model,
    bool Stream,
    bool IncludeUsage,
    int AssistantMessages,
    string FirstUserText,
    string LastUserText,
    bool Thinks = false,
    bool SendsThinking = false);

internal sealed record Reply(
    string Id,
    string Model,
    int TurnIndex,
    string Text,
    IReadOnlyList<ScenarioToolCall> ToolCalls,
    int InputTokens,
    int OutputTokens,
    int CacheReadTokens = 0,
    int CacheWriteTokens = 0,
    IReadOnlyList<(string Type, string Value, string Proof)>? Thinking = null,
    bool CutOff = false)
{
    public bool UsesTools => ToolCalls.Count > 0;
}
