using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.Extensions.AI;

namespace Offload.Models;

/// <summary>The request: <c>{model, max_tokens, system, tools, …, "messages":[…], "stream":true}</c>, written from kept bytes.</summary>
public sealed partial class AnthropicChatClient
{
    private static readonly byte[] Breakpoint = ""","cache_control":{"type":"ephemeral"}"""u8.ToArray();

    private readonly ConditionalWeakTable<ChatMessage, WireMessage> _wire = new();
    private RenderedHead? _head;
    private LastCall _last = new([], []);

    // ---- the messages ----

    /// <summary>
    /// The system messages (they become the <c>system</c> prompt), the wire JSON of the others (made now for messages
    /// not seen before), and whether the newest one's last block gets a cache breakpoint.
    /// </summary>
    private (List<ChatMessage> System, List<byte[]> Wire, bool MarkLast) WireMessages(IReadOnlyList<ChatMessage> messages)
    {
        List<ChatMessage> system = [];
        var wire = new List<byte[]>(messages.Count);
        var last = _last; // the last call's messages: a conversation is mostly the same objects again
        var seen = new WireMessage?[messages.Count];
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i];
            if (message.Role == ChatRole.System)
            {
                system.Add(message);
                continue;
            }

            var known = i < last.Messages.Length && ReferenceEquals(last.Messages[i], message) ? last.Wire[i]
                : _wire.TryGetValue(message, out var found) ? found
                : null;
            if (known is null || !known.Matches(message))
            {
                known = WireMessage.Make(message);
                _wire.AddOrUpdate(message, known);
            }

            seen[i] = known;
            if (known.Json is { } json)
            {
                wire.Add(json);
            }
        }

        if (wire.Count == 0)
        {
            throw new ArgumentException("An Anthropic model call needs at least one user or assistant message with content.", nameof(messages));
        }

        _last = new LastCall([.. messages], seen);
        return (system, wire, MarksLast(messages[^1]));
    }

    /// <summary>Whether the newest message's last block gets a breakpoint: text that says something, or a tool result.</summary>
    private static bool MarksLast(ChatMessage newest)
    {
        if (newest.Role == ChatRole.System || newest.Contents is not { Count: > 0 } contents)
        {
            return false;
        }

        return contents[^1] switch
        {
            TextContent text => !string.IsNullOrWhiteSpace(text.Text),
            FunctionResultContent => true,
            _ => false,
        };
    }

    /// <summary>The messages of the last call and their wire forms, by position.</summary>
    private sealed record LastCall(ChatMessage[] Messages, WireMessage?[] Wire);

    /// <summary>
    /// The request body: the head, then <c>"messages":[…]</c> (the newest message with a cache breakpoint on its last
    /// block when asked), then <c>"stream":true</c>. Written straight from the kept bytes.
    /// </summary>
    private sealed class WireContent : HttpContent
    {
        private readonly ReadOnlyMemory<byte>[] _segments;

        public WireContent(byte[] head, List<byte[]> wire, bool markLast)
        {
            // Each message's kept bytes are written as they are, not copied into one joined buffer: a long
            // conversation is held once (per message), not twice.
            var segments = new List<ReadOnlyMemory<byte>>(2 * wire.Count + 4) { head, "["u8.ToArray() };
            for (var i = 0; i < wire.Count - 1; i++)
            {
                segments.Add(wire[i]);
                segments.Add(Comma);
            }

            var last = wire[^1];
            segments.AddRange(markLast
                // Every message ends "…}]}": its last block, the content array, the message.
                ? [last.AsMemory(0, last.Length - 3), Breakpoint, "}]}]"u8.ToArray(), Tail]
                : [last, "]"u8.ToArray(), Tail]);
            _segments = [.. segments];
            Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
        }

        private static ReadOnlyMemory<byte> Comma { get; } = ","u8.ToArray();

        private static ReadOnlyMemory<byte> Tail { get; } = ""","stream":true}"""u8.ToArray();

        protected override Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context) =>
            SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context, CancellationToken cancellationToken)
        {
            foreach (var segment in _segments)
            {
                await stream.WriteAsync(segment, cancellationToken).ConfigureAwait(false);
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            foreach (var segment in _segments)
            {
                length += segment.Length;
            }

            return true;
        }
    }

    // ---- the rest of the request ----

    /// <summary>
    /// <c>{"model":…,"max_tokens":…,"system":[…],"tools":[…],…,"messages":</c> for these options and system messages,
    /// written once and kept while they stay the same (the agent loop passes the same options every turn).
    /// </summary>
    private byte[] Head(ChatOptions? options, List<ChatMessage> system)
    {
        var key = new HeadKey(options, system);
        if (Volatile.Read(ref _head) is { } known && known.Key.Equals(key))
        {
            return known.Bytes;
        }

        var buffer = new ArrayBufferWriter<byte>(4096);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("model"u8, options?.ModelId ?? _model);
            writer.WriteNumber("max_tokens"u8, options?.MaxOutputTokens ?? _maxOutputTokens);
            WriteSystem(writer, system, options?.Instructions);
            WriteTools(writer, options);
            WriteThinking(writer, _thinking);
            if (options?.Temperature is { } temperature)
            {
                writer.WriteNumber("temperature"u8, temperature);
            }

            if (options?.TopP is { } topP)
            {
                writer.WriteNumber("top_p"u8, topP);
            }

            if (options?.TopK is { } topK)
            {
                writer.WriteNumber("top_k"u8, topK);
            }

            if (options?.StopSequences is { Count: > 0 } stops)
            {
                writer.WriteStartArray("stop_sequences"u8);
                foreach (var stop in stops)
                {
                    writer.WriteStringValue(stop);
                }

                writer.WriteEndArray();
            }

            writer.WriteEndObject();
        }

        // "{…}" becomes "{…,"messages":" (model and max_tokens are always there, so the object is never empty).
        byte[] bytes = [.. buffer.WrittenSpan[..^1], .. ""","messages":"""u8];
        Volatile.Write(ref _head, new RenderedHead(key, bytes));
        return bytes;
    }

    /// <summary>
    /// <c>"thinking":{"type":"adaptive"}</c> with <c>"output_config":{"effort":…}</c>, or
    /// <c>"thinking":{"type":"enabled","budget_tokens":N}</c>, as Claude Code 2.1.197 sends them.
    /// </summary>
    private static void WriteThinking(Utf8JsonWriter writer, ThinkingRequest? thinking)
    {
        if (thinking is null)
        {
            return;
        }

        writer.WriteStartObject("thinking"u8);
        if (thinking.BudgetTokens is { } budget)
        {
            writer.WriteString("type"u8, "enabled"u8);
            writer.WriteNumber("budget_tokens"u8, budget);
        }
        else
        {
            writer.WriteString("type"u8, "adaptive"u8);
        }

        writer.WriteEndObject();
        if (thinking.IsAdaptive && thinking.Effort is { } effort)
        {
            writer.WriteStartObject("output_config"u8);
            writer.WriteString("effort"u8, effort);
            writer.WriteEndObject();
        }
    }

    /// <summary>The system messages' texts, then the instructions, as text blocks; the last one is a cache breakpoint.</summary>
    private static void WriteSystem(Utf8JsonWriter writer, List<ChatMessage> system, string? instructions)
    {
        List<string> texts = [.. system.SelectMany(m => m.Contents).OfType<TextContent>().Select(t => t.Text).Where(t => !string.IsNullOrWhiteSpace(t))];
        if (!string.IsNullOrWhiteSpace(instructions))
        {
            texts.Add(instructions);
        }

        if (texts.Count == 0)
        {
            return;
        }

        writer.WriteStartArray("system"u8);
        for (var i = 0; i < texts.Count; i++)
        {
            writer.WriteStartObject();
            writer.WriteString("type"u8, "text"u8);
            writer.WriteString("text"u8, texts[i]);
            WriteBreakpointIf(writer, i == texts.Count - 1);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
    }

    /// <summary>The function tools, the last one a cache breakpoint, and how the model may choose among them.</summary>
    private static void WriteTools(Utf8JsonWriter writer, ChatOptions? options)
    {
        if (options?.Tools is not { Count: > 0 } tools || options.ToolMode is NoneChatToolMode)
        {
            return;
        }

        writer.WriteStartArray("tools"u8);
        for (var i = 0; i < tools.Count; i++)
        {
            if (tools[i] is not AIFunctionDeclaration function)
            {
                throw new NotSupportedException(
                    $"The tool '{tools[i].Name}' is a {tools[i].GetType().Name}; the Anthropic client sends function tools only.");
            }

            writer.WriteStartObject();
            writer.WriteString("name"u8, function.Name);
            if (!string.IsNullOrEmpty(function.Description))
            {
                writer.WriteString("description"u8, function.Description);
            }

            writer.WritePropertyName("input_schema"u8);
            WriteInputSchema(writer, function.JsonSchema);
            WriteBreakpointIf(writer, i == tools.Count - 1);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        var parallel = options.AllowMultipleToolCalls is false;
        switch (options.ToolMode)
        {
            case RequiredChatToolMode { RequiredFunctionName: { } name }:
                writer.WriteStartObject("tool_choice"u8);
                writer.WriteString("type"u8, "tool"u8);
                writer.WriteString("name"u8, name);
                break;
            case RequiredChatToolMode:
                writer.WriteStartObject("tool_choice"u8);
                writer.WriteString("type"u8, "any"u8);
                break;
            case AutoChatToolMode or null when parallel:
                writer.WriteStartObject("tool_choice"u8);
                writer.WriteString("type"u8, "auto"u8);
                break;
            default:
                return;
        }

        if (parallel)
        {
            writer.WriteBoolean("disable_parallel_tool_use"u8, true);
        }

        writer.WriteEndObject();
    }

    /// <summary>
    /// A tool's input schema as the API takes it: an object schema (<c>$schema</c> left out) whose objects, nested
    /// ones too, take no properties they do not name (<c>additionalProperties: false</c> unless they say otherwise),
    /// as the SDK's adapter sends it. A schema that is not a JSON object is refused.
    /// </summary>
    private static void WriteInputSchema(Utf8JsonWriter writer, JsonElement schema)
    {
        if (schema.ValueKind != JsonValueKind.Object)
        {
            throw new NotSupportedException($"A tool's input schema must be a JSON object, not {schema.ValueKind}.");
        }

        writer.WriteStartObject();
        if (!schema.TryGetProperty("type"u8, out _))
        {
            writer.WriteString("type"u8, "object"u8);
        }

        WriteSchemaBody(writer, schema, root: true);
        writer.WriteEndObject();

        static void WriteSchema(Utf8JsonWriter writer, JsonElement schema)
        {
            if (schema.ValueKind != JsonValueKind.Object)
            {
                schema.WriteTo(writer);
                return;
            }

            writer.WriteStartObject();
            WriteSchemaBody(writer, schema, root: false);
            writer.WriteEndObject();
        }

        static void WriteSchemaBody(Utf8JsonWriter writer, JsonElement schema, bool root)
        {
            foreach (var property in schema.EnumerateObject())
            {
                if (root && property.NameEquals("$schema"u8))
                {
                    continue;
                }

                var value = property.Value;
                if ((property.NameEquals("properties"u8) || property.NameEquals("$defs"u8)) && value.ValueKind == JsonValueKind.Object)
                {
                    writer.WriteStartObject(property.Name);
                    foreach (var member in value.EnumerateObject())
                    {
                        writer.WritePropertyName(member.Name);
                        WriteSchema(writer, member.Value);
                    }

                    writer.WriteEndObject();
                }
                else if (property.NameEquals("items"u8))
                {
                    writer.WritePropertyName(property.Name);
                    WriteSchema(writer, value);
                }
                else if ((property.NameEquals("anyOf"u8) || property.NameEquals("allOf"u8) || property.NameEquals("oneOf"u8)) && value.ValueKind == JsonValueKind.Array)
                {
                    writer.WriteStartArray(property.Name);
                    foreach (var item in value.EnumerateArray())
                    {
                        WriteSchema(writer, item);
                    }

                    writer.WriteEndArray();
                }
                else
                {
                    property.WriteTo(writer);
                }
            }

            var isObject = root || (schema.TryGetProperty("type"u8, out var type) && type.ValueKind == JsonValueKind.String && type.ValueEquals("object"u8));
            if (isObject && !schema.TryGetProperty("additionalProperties"u8, out _))
            {
                writer.WriteBoolean("additionalProperties"u8, false);
            }
        }
    }

    private static void WriteBreakpointIf(Utf8JsonWriter writer, bool mark)
    {
        if (mark)
        {
            writer.WriteStartObject("cache_control"u8);
            writer.WriteString("type"u8, "ephemeral"u8);
            writer.WriteEndObject();
        }
    }

    private sealed record RenderedHead(HeadKey Key, byte[] Bytes);

    /// <summary>What a head depends on: the options' fields (by reference) and the system messages' contents.</summary>
    private sealed class HeadKey
    {
        private readonly object?[] _parts;

        public HeadKey(ChatOptions? options, List<ChatMessage> system)
        {
            List<object?> parts = [options];
            if (options is not null)
            {
                parts.AddRange([
                    options.Instructions, options.ModelId, options.MaxOutputTokens, options.Temperature, options.TopP, options.TopK,
                    options.ToolMode, options.AllowMultipleToolCalls, options.StopSequences?.Count, options.Tools?.Count,
                ]);
                parts.AddRange(options.StopSequences ?? []);
                parts.AddRange(options.Tools ?? []);
            }

            foreach (var message in system)
            {
                parts.Add(message);
                foreach (var content in message.Contents)
                {
                    parts.Add(content);
                    parts.Add((content as TextContent)?.Text);
                }
            }

            _parts = [.. parts];
        }

        public bool Equals(HeadKey other)
        {
            if (_parts.Length != other._parts.Length)
            {
                return false;
            }

            for (var i = 0; i < _parts.Length; i++)
            {
                if (!(ReferenceEquals(_parts[i], other._parts[i]) || Equals(_parts[i], other._parts[i])))
                {
                    return false;
                }
            }

            return true;
        }
    }

    // ---- one message on the wire ----

    /// <summary>
    /// A message's wire JSON (<c>null</c> when it has no block to send), with what it was made from, so a message
    /// changed since is made again.
    /// </summary>
    private sealed class WireMessage(ChatRole role, object?[] parts, byte[]? json)
    {
        public byte[]? Json { get; } = json;

        public bool Matches(ChatMessage message)
        {
            var contents = message.Contents;
            if (message.Role != role || contents.Count * 3 != parts.Length)
            {
                return false;
            }

            for (var i = 0; i < contents.Count; i++)
            {
                var content = contents[i];
                var (a, b) = Fields(content);
                if (!ReferenceEquals(parts[i * 3], content) || !ReferenceEquals(parts[(i * 3) + 1], a) || !ReferenceEquals(parts[(i * 3) + 2], b))
                {
                    return false;
                }
            }

            return true;
        }

        /// <summary>The mutable fields a content's JSON is made from.</summary>
        private static (object? A, object? B) Fields(AIContent content) => content switch
        {
            TextContent text => (text.Text, null),
            TextReasoningContent reasoning => (reasoning.Text, reasoning.ProtectedData),
            FunctionCallContent call => (call.Arguments, null),
            FunctionResultContent result => (result.Result, result.Exception),
            DataContent data => (data.Data, data.MediaType),
            UriContent uri => (uri.Uri, uri.MediaType),
            _ => (null, null),
        };

        /// <summary>
        /// The message with its text, tool calls, tool results, images and PDF documents as blocks (tool results go
        /// in a user message, as the API wants them). Other content cannot be sent and is refused.
        /// </summary>
        public static WireMessage Make(ChatMessage message)
        {
            var parts = new object?[message.Contents.Count * 3];
            var buffer = new ArrayBufferWriter<byte>(256);
            var blocks = 0;
            var assistant = message.Role == ChatRole.Assistant;
            using (var writer = new Utf8JsonWriter(buffer))
            {
                writer.WriteStartObject();
                writer.WriteString("role"u8, assistant ? "assistant"u8 : "user"u8);
                writer.WriteStartArray("content"u8);
                var i = 0;
                foreach (var content in message.Contents)
                {
                    var (a, b) = Fields(content);
                    parts[i++] = content;
                    parts[i++] = a;
                    parts[i++] = b;
                    blocks += WriteBlock(writer, content, assistant) ? 1 : 0;
                }

                writer.WriteEndArray();
                writer.WriteEndObject();
            }

            return new WireMessage(message.Role, parts, blocks == 0 ? null : buffer.WrittenSpan.ToArray());
        }

        private static bool IsMedia(string mediaType) => mediaType.StartsWith("image/", StringComparison.OrdinalIgnoreCase) || mediaType == "application/pdf";

        /// <summary>An image or document block: <c>{"type":"image"|"document","source":{…}}</c>.</summary>
        private static void WriteMedia(Utf8JsonWriter writer, string mediaType, Action<Utf8JsonWriter> writeSource)
        {
            writer.WriteStartObject();
            writer.WriteString("type"u8, mediaType == "application/pdf" ? "document"u8 : "image"u8);
            writer.WriteStartObject("source"u8);
            writeSource(writer);
            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        /// <summary>Writes one content as a block; false when it makes none (blank text, usage).</summary>
        private static bool WriteBlock(Utf8JsonWriter writer, AIContent content, bool assistant)
        {
            switch (content)
            {
                case TextContent text:
                    var value = assistant ? text.Text.TrimEnd() : text.Text; // the API refuses a final assistant block ending in white space
                    if (string.IsNullOrWhiteSpace(value))
                    {
                        return false;
                    }

                    writer.WriteStartObject();
                    writer.WriteString("type"u8, "text"u8);
                    writer.WriteString("text"u8, value);
                    writer.WriteEndObject();
                    return true;

                case FunctionCallContent call:
                    writer.WriteStartObject();
                    writer.WriteString("type"u8, "tool_use"u8);
                    writer.WriteString("id"u8, call.CallId);
                    writer.WriteString("name"u8, call.Name);
                    writer.WriteStartObject("input"u8);
                    foreach (var (name, argument) in call.Arguments ?? new Dictionary<string, object?>())
                    {
                        writer.WritePropertyName(name);
                        if (argument is JsonElement element)
                        {
                            element.WriteTo(writer);
                        }
                        else
                        {
                            JsonSerializer.Serialize(writer, argument, AIJsonUtilities.DefaultOptions.GetTypeInfo(typeof(object)));
                        }
                    }

                    writer.WriteEndObject();
                    writer.WriteEndObject();
                    return true;

                case FunctionResultContent result:
                    writer.WriteStartObject();
                    writer.WriteString("type"u8, "tool_result"u8);
                    writer.WriteString("tool_use_id"u8, result.CallId);
                    writer.WriteBoolean("is_error"u8, result.Exception is not null);
                    switch (result.Result)
                    {
                        case string s:
                            writer.WriteString("content"u8, s);
                            break;
                        case AIContent or IEnumerable<AIContent>:
                            writer.WriteStartArray("content"u8);
                            foreach (var part in result.Result as IEnumerable<AIContent> ?? [(AIContent)result.Result])
                            {
                                WriteBlock(writer, part, assistant: false);
                            }

                            writer.WriteEndArray();
                            break;
                        case null:
                            writer.WriteString("content"u8, "");
                            break;
                        case var other:
                            writer.WriteString("content"u8, JsonSerializer.Serialize(other, AIJsonUtilities.DefaultOptions.GetTypeInfo(typeof(object))));
                            break;
                    }

                    writer.WriteEndObject();
                    return true;

                case DataContent data when IsMedia(data.MediaType):
                    WriteMedia(writer, data.MediaType, source =>
                    {
                        source.WriteString("type"u8, "base64"u8);
                        source.WriteString("media_type"u8, data.MediaType);
                        source.WriteBase64String("data"u8, data.Data.Span);
                    });
                    return true;

                case UriContent uri when IsMedia(uri.MediaType):
                    WriteMedia(writer, uri.MediaType, source =>
                    {
                        source.WriteString("type"u8, "url"u8);
                        source.WriteString("url"u8, uri.Uri.ToString());
                    });
                    return true;

                case TextReasoningContent { ProtectedData: { } data } redacted when IsRedacted(redacted):
                    writer.WriteStartObject();
                    writer.WriteString("type"u8, "redacted_thinking"u8);
                    writer.WriteString("data"u8, data);
                    writer.WriteEndObject();
                    return true;

                case TextReasoningContent { ProtectedData: { } signature } reasoning:
                    writer.WriteStartObject();
                    writer.WriteString("type"u8, "thinking"u8);
                    writer.WriteString("thinking"u8, reasoning.Text);
                    writer.WriteString("signature"u8, signature);
                    writer.WriteEndObject();
                    return true;

                case TextReasoningContent:
                    return false; // thinking without a signature (another provider's) cannot be sent back: the API would refuse it

                case UsageContent:
                    return false; // not part of a request

                default:
                    throw new NotSupportedException(
                        $"A message holds {content.GetType().Name} content, which the Anthropic client does not send (it sends text, tool calls and results, images and PDF documents).");
            }
        }
    }
}
