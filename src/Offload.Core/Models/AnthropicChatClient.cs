using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Anthropic;
using Anthropic.Core;
using Anthropic.Models.Messages;
using Microsoft.Extensions.AI;

namespace Offload.Models;

/// <summary>
/// Anthropic's Messages API as an <see cref="IChatClient"/>, through the official SDK, made for an agent's conversation,
/// which grows by a message or two per call. The SDK's own <c>AsIChatClient</c> rebuilds the SDK objects of every
/// message on every call (7–15 ms of CPU per call after a few hundred turns); here each message's wire JSON is written
/// once and kept with its <see cref="ChatMessage"/>, and the joined messages are kept from one call to the next, so a
/// call writes only what is new.
/// <list type="bullet">
/// <item>The rest of the request (system, tools with the SDK's schema transform, limits, options) is the SDK adapter's
/// work: rendered through <c>AsIChatClient</c> once per options and kept.</item>
/// <item>The SDK's client sends the request (URL, authentication, headers, timeouts), reads the stream into its events
/// and raises its errors; its request carries the rendered fields and no messages, and a handler in the SDK's own
/// handler chain (<see cref="ClientOptions.Handlers"/>) puts the full body in its place: the rendered fields with the
/// messages, written here.</item>
/// <item>Prompt-cache breakpoints go after the last tool, the system prompt and the newest message (three of the
/// four the API allows), where <see cref="PromptCachingChatClient"/> puts them.</item>
/// <item>Anything this client does not write itself (images, reasoning, raw SDK objects, a system message mid-way,
/// options with a raw factory) goes through the SDK adapter, marked by <see cref="PromptCachingChatClient"/>.</item>
/// </list>
/// </summary>
public sealed class AnthropicChatClient : IChatClient
{
    private const string WireHeader = "x-offload-wire-body";
    private static readonly byte[] Breakpoint = ""","cache_control":{"type":"ephemeral"}"""u8.ToArray();
    private static readonly IReadOnlyDictionary<string, JsonElement> None = new Dictionary<string, JsonElement>();
    private static readonly JsonElement NoMessages = JsonElement.Parse("[]");

    private readonly IAnthropicClient _client;
    private readonly string _model;
    private readonly IChatClient _adapter;
    private readonly WireBodyHandler _wireHandler = new();
    private readonly RenderHandler _renderHandler = new();
    private readonly SemaphoreSlim _renderGate = new(1, 1);
    private readonly IChatClient _renderer;
    private readonly ConditionalWeakTable<ChatMessage, WireMessage> _wire = new();
    private readonly Lock _joinLock = new();
    private Joined _joined = Joined.Empty;
    private Rendered? _rendered;
    private LastCall _last = new([], []);
    private ChatClientMetadata? _metadata;
    private long _requests;

    /// <param name="options">The SDK client's options; a handler of this client's is added to its <see cref="ClientOptions.Handlers"/>.</param>
    /// <param name="model">The model, unless <see cref="ChatOptions.ModelId"/> names another.</param>
    /// <param name="maxOutputTokens">The output limit, unless <see cref="ChatOptions.MaxOutputTokens"/> sets another.</param>
    public AnthropicChatClient(ClientOptions options, string model, int? maxOutputTokens)
    {
        _client = new AnthropicClient(options with { Handlers = [.. options.Handlers ?? [], _wireHandler] });
        _model = model;
        _adapter = new PromptCachingChatClient(_client.AsIChatClient(model, maxOutputTokens));
        var renderClient = new AnthropicClient(new ClientOptions
        {
            ApiKey = "render-only",
            BaseUrl = "http://render.invalid",
            MaxRetries = 0,
            HttpClient = new HttpClient(_renderHandler),
        });
        _renderer = renderClient.AsIChatClient(model, maxOutputTokens);
    }

    public async Task<ChatResponse> GetResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken).ConfigureAwait(false);

    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var list = messages as IReadOnlyList<ChatMessage> ?? [.. messages];
        if (!CanWrite(options) || !TryWire(list, out var system, out var wire))
        {
            return _adapter.GetStreamingResponseAsync(list, options, cancellationToken);
        }

        return StreamAsync(options, system, wire, ShouldMarkLast(list, system.Count), cancellationToken);
    }

    public object? GetService(System.Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null)
        {
            return null;
        }

        if (serviceType == typeof(ChatClientMetadata))
        {
            return _metadata ??= new ChatClientMetadata("anthropic", new Uri(_client.BaseUrl), _model);
        }

        return serviceType.IsInstanceOfType(this) ? this
            : serviceType.IsInstanceOfType(_client) ? _client
            : null;
    }

    public void Dispose()
    {
        _adapter.Dispose();
        _renderer.Dispose();
        _renderHandler.Dispose();
        _renderGate.Dispose();
    }

    // ---- the request ----

    /// <summary>Options whose effect on the request the adapter renders once; the rest go to the adapter each time.</summary>
    private static bool CanWrite(ChatOptions? options) =>
        options is null || (options.RawRepresentationFactory is null && options.Reasoning is null);

    /// <summary>
    /// The leading system messages (they become the <c>system</c> prompt) and the wire JSON of the others, made now for
    /// messages not seen before. False when a message holds something only the adapter writes.
    /// </summary>
    private bool TryWire(IReadOnlyList<ChatMessage> messages, out List<ChatMessage> system, out List<byte[]> wire)
    {
        system = [];
        wire = new List<byte[]>(messages.Count);
        var last = _last; // the last call's messages: a conversation is mostly the same objects again
        var seen = new WireMessage?[messages.Count];
        var leading = true;
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i];
            if (message.Role == ChatRole.System)
            {
                if (!leading)
                {
                    return false; // a system message mid-conversation: the adapter knows what to do with it
                }

                system.Add(message);
                continue;
            }

            leading = false;
            var known = i < last.Messages.Length && ReferenceEquals(last.Messages[i], message) ? last.Wire[i]
                : _wire.TryGetValue(message, out var found) ? found
                : null;
            if (known is null || !known.Matches(message))
            {
                known = WireMessage.Make(message);
                if (known is null)
                {
                    return false;
                }

                _wire.AddOrUpdate(message, known);
            }

            seen[i] = known;
            if (known.Json is { } json)
            {
                wire.Add(json);
            }
        }

        _last = new LastCall([.. messages], seen);
        return wire.Count > 0;
    }

    /// <summary>The messages of the last call and their wire forms, by position.</summary>
    private sealed record LastCall(ChatMessage[] Messages, WireMessage?[] Wire);

    /// <summary>Whether the newest message's last block gets a breakpoint (as <see cref="PromptCachingChatClient"/> decides).</summary>
    private static bool ShouldMarkLast(IReadOnlyList<ChatMessage> messages, int systemCount)
    {
        if (messages.Count <= systemCount || messages[^1].Contents is not { Count: > 0 } contents)
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

    private async IAsyncEnumerable<ChatResponseUpdate> StreamAsync(
        ChatOptions? options, List<ChatMessage> system, List<byte[]> wire, bool markLast, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var rendered = await RenderAsync(options, system, cancellationToken).ConfigureAwait(false);
        var body = new WireContent(rendered.Head, Join(wire), wire[^1], markLast);
        var id = Interlocked.Increment(ref _requests).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var headers = new Dictionary<string, JsonElement> { [WireHeader] = JsonSerializer.SerializeToElement(id) };
        var request = MessageCreateParams.FromRawUnchecked(headers, None, rendered.SdkBody);
        _wireHandler.Expect(id, body);
        try
        {
            var reader = new StreamReader();
            await foreach (var e in _client.Messages.CreateStreaming(request, cancellationToken).WithCancellation(cancellationToken).ConfigureAwait(false))
            {
                yield return reader.Read(e);
            }

            if (reader.Usage() is { } usage)
            {
                yield return reader.Update([new UsageContent(usage)]);
            }
        }
        finally
        {
            _wireHandler.Forget(id);
        }
    }

    /// <summary>
    /// All messages but the newest, joined with commas: kept from the last call and extended when this call's
    /// conversation goes on from it, made again when it does not. Calls in flight keep the array they were given
    /// (it is only ever written past their length, or replaced).
    /// </summary>
    private ReadOnlyMemory<byte> Join(List<byte[]> wire)
    {
        var count = wire.Count - 1;
        lock (_joinLock)
        {
            var joined = _joined;
            var same = 0;
            while (same < joined.Parts.Count && same < count && ReferenceEquals(joined.Parts[same], wire[same]))
            {
                same++;
            }

            if (same < joined.Parts.Count)
            {
                joined = Joined.Empty; // another conversation, or an earlier point of this one
                same = 0;
            }

            var length = joined.Length;
            for (var i = same; i < count; i++)
            {
                length += wire[i].Length + 1;
            }

            var buffer = joined.Buffer;
            if (length > buffer.Length)
            {
                var grown = new byte[Math.Max(length, buffer.Length * 2)];
                buffer.AsSpan(0, joined.Length).CopyTo(grown);
                buffer = grown;
            }

            var at = joined.Length;
            var parts = joined.Parts;
            for (var i = same; i < count; i++)
            {
                if (at > 0)
                {
                    buffer[at++] = (byte)',';
                }

                wire[i].CopyTo(buffer, at);
                at += wire[i].Length;
                parts.Add(wire[i]);
            }

            _joined = new Joined(buffer, at, parts);
            return buffer.AsMemory(0, at);
        }
    }

    /// <summary>Messages joined so far: <see cref="Buffer"/>[..<see cref="Length"/>] holds <see cref="Parts"/>, comma-separated.</summary>
    private sealed record Joined(byte[] Buffer, int Length, List<byte[]> Parts)
    {
        public static Joined Empty => new([], 0, []);
    }

    /// <summary>
    /// The request body: the rendered fields, then <c>"messages":[…]</c> (the newest message with a cache breakpoint
    /// on its last block when asked), then <c>"stream":true</c>. Written straight from the kept bytes.
    /// </summary>
    private sealed class WireContent : HttpContent
    {
        private readonly ReadOnlyMemory<byte>[] _segments;

        public WireContent(ReadOnlyMemory<byte> head, ReadOnlyMemory<byte> joined, byte[] last, bool markLast)
        {
            ReadOnlyMemory<byte> separator = joined.IsEmpty ? ReadOnlyMemory<byte>.Empty : ","u8.ToArray();
            _segments = markLast
                // Every message ends "…}]}": its last block, the content array, the message.
                ? [head, "["u8.ToArray(), joined, separator, last.AsMemory(0, last.Length - 3), Breakpoint, "}]}]"u8.ToArray(), Tail]
                : [head, "["u8.ToArray(), joined, separator, last, "]"u8.ToArray(), Tail];
            Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
        }

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

    /// <summary>
    /// In the SDK client's handler chain: gives a request that carries this client's marker header the body written
    /// for it (and drops the header). A marked request with no body waiting is refused rather than sent without its messages.
    /// </summary>
    private sealed class WireBodyHandler : DelegatingHandler
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, HttpContent> _bodies = new(StringComparer.Ordinal);

        public void Expect(string id, HttpContent body) => _bodies[id] = body;

        public void Forget(string id) => _bodies.TryRemove(id, out _);

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.Headers.TryGetValues(WireHeader, out var values))
            {
                request.Headers.Remove(WireHeader);
                var id = values.First();
                request.Content = _bodies.TryGetValue(id, out var body)
                    ? body
                    : throw new InvalidOperationException($"no request body is waiting for model call {id}");
            }

            return base.SendAsync(request, cancellationToken);
        }
    }

    /// <summary>The request's other fields for these options and system messages, rendered by the adapter (kept while they stay the same).</summary>
    private async Task<Rendered> RenderAsync(ChatOptions? options, List<ChatMessage> system, CancellationToken cancellationToken)
    {
        var key = new RenderKey(options, system);
        if (Volatile.Read(ref _rendered) is { } known && known.Key.Equals(key))
        {
            return known;
        }

        byte[]? captured;
        await _renderGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // The adapter's request for a one-message conversation, kept by the render handler (which answers it empty).
            List<ChatMessage> probe = [.. system, new ChatMessage(ChatRole.User, "render")];
            _renderHandler.Body = null;
            await foreach (var _ in _renderer.GetStreamingResponseAsync(probe, options, cancellationToken).ConfigureAwait(false))
            {
            }

            captured = _renderHandler.Body;
        }
        finally
        {
            _renderGate.Release();
        }

        var root = JsonNode.Parse(captured ?? throw new InvalidOperationException("the Anthropic SDK sent no request to render"))!.AsObject();
        root.Remove("messages");
        root.Remove("stream");
        MarkLast(root["tools"]);
        MarkLast(root["system"]);
        var body = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var (name, value) in root)
        {
            body[name] = JsonSerializer.SerializeToElement(value);
        }

        body["messages"] = NoMessages; // the SDK's request goes out without them; the handler sends the full body
        var head = Encoding.UTF8.GetBytes(root.ToJsonString());
        head[^1] = (byte)',';
        var rendered = new Rendered(key, body, [.. head, .. "\"messages\":"u8]);
        Volatile.Write(ref _rendered, rendered);
        return rendered;

        static void MarkLast(JsonNode? list)
        {
            if (list is JsonArray { Count: > 0 } array && array[^1] is JsonObject last && !last.ContainsKey("cache_control"))
            {
                last["cache_control"] = new JsonObject { ["type"] = "ephemeral" };
            }
        }
    }

    /// <summary>A rendering: the SDK request's body fields (with no messages) and the full body's start, <c>{…,"messages":</c>.</summary>
    private sealed record Rendered(RenderKey Key, Dictionary<string, JsonElement> SdkBody, byte[] Head);

    /// <summary>What a rendering depends on: the options' fields (by reference) and the system messages' contents.</summary>
    private sealed class RenderKey
    {
        private readonly object?[] _parts;

        public RenderKey(ChatOptions? options, List<ChatMessage> system)
        {
            List<object?> parts = [options];
            if (options is not null)
            {
                parts.AddRange([
                    options.Instructions, options.ModelId, options.MaxOutputTokens, options.Temperature, options.TopP, options.TopK,
                    options.FrequencyPenalty, options.PresencePenalty, options.Seed, options.ToolMode, options.AllowMultipleToolCalls,
                    options.ResponseFormat, options.AdditionalProperties, options.AdditionalProperties?.Count,
                    options.StopSequences?.Count, options.Tools?.Count,
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

        public bool Equals(RenderKey other)
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

    /// <summary>Keeps the body of the request it is sent and answers with an empty message.</summary>
    private sealed class RenderHandler : HttpMessageHandler
    {
        public byte[]? Body { get; set; }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Body = request.Content is null ? [] : await request.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
            return new HttpResponseMessage(System.Net.HttpStatusCode.OK)
            {
                Content = new StringContent("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", Encoding.UTF8, "text/event-stream"),
            };
        }
    }

    // ---- one message on the wire ----

    /// <summary>
    /// A message's wire JSON (<c>null</c> when it has nothing to send, like the adapter's skipped messages), with what it
    /// was made from, so a message changed since is made again.
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
            TextContent text => (text.Text, text.AdditionalProperties),
            FunctionCallContent call => (call.Arguments, call.AdditionalProperties),
            FunctionResultContent result => (result.Result, result.Exception),
            _ => (content.RawRepresentation, content.AdditionalProperties),
        };

        /// <summary>The message as the SDK adapter would send it, or null when it holds content the adapter writes differently.</summary>
        public static WireMessage? Make(ChatMessage message)
        {
            var parts = new object?[message.Contents.Count * 3];
            var buffer = new ArrayBufferWriter<byte>(256);
            var blocks = 0;
            using (var writer = new Utf8JsonWriter(buffer))
            {
                writer.WriteStartObject();
                writer.WriteString("role"u8, message.Role == ChatRole.Assistant ? "assistant"u8 : "user"u8);
                writer.WritePropertyName("content"u8);
                writer.WriteStartArray();
                var i = 0;
                foreach (var content in message.Contents)
                {
                    var (a, b) = Fields(content);
                    parts[i++] = content;
                    parts[i++] = a;
                    parts[i++] = b;
                    if (content.RawRepresentation is ContentBlockParam || content.AdditionalProperties is { Count: > 0 })
                    {
                        return null; // raw SDK blocks and cache-control marks: the adapter's business
                    }

                    switch (content)
                    {
                        case TextContent text:
                            var value = message.Role == ChatRole.Assistant ? text.Text.TrimEnd() : text.Text;
                            if (!string.IsNullOrWhiteSpace(value))
                            {
                                writer.WriteStartObject();
                                writer.WriteString("type"u8, "text"u8);
                                writer.WriteString("text"u8, value);
                                writer.WriteEndObject();
                                blocks++;
                            }

                            break;

                        case FunctionCallContent call:
                            if (call.RawRepresentation is ToolUseBlock { ToolsetName: not null })
                            {
                                return null;
                            }

                            writer.WriteStartObject();
                            writer.WriteString("type"u8, "tool_use"u8);
                            writer.WriteString("id"u8, call.CallId);
                            writer.WriteString("name"u8, call.Name);
                            writer.WritePropertyName("input"u8);
                            writer.WriteStartObject();
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
                            blocks++;
                            break;

                        case FunctionResultContent result:
                            var output = result.Result switch
                            {
                                string s => s,
                                AIContent or IEnumerable<AIContent> => null,
                                var other => JsonSerializer.Serialize(other, AIJsonUtilities.DefaultOptions.GetTypeInfo(typeof(object))),
                            };
                            if (output is null)
                            {
                                return null;
                            }

                            writer.WriteStartObject();
                            writer.WriteString("type"u8, "tool_result"u8);
                            writer.WriteString("tool_use_id"u8, result.CallId);
                            writer.WriteBoolean("is_error"u8, result.Exception is not null);
                            writer.WriteString("content"u8, output);
                            writer.WriteEndObject();
                            blocks++;
                            break;

                        case UsageContent:
                            break; // not part of a request

                        default:
                            return null; // images, documents, reasoning, …
                    }
                }

                writer.WriteEndArray();
                writer.WriteEndObject();
            }

            return new WireMessage(message.Role, parts, blocks == 0 ? null : buffer.WrittenSpan.ToArray());
        }
    }

    // ---- the answer ----

    /// <summary>Turns the SDK's stream events into updates, as the SDK adapter does.</summary>
    private sealed class StreamReader
    {
        private readonly Dictionary<long, (string Id, string Name, StringBuilder Arguments)> _calls = [];
        private string? _messageId;
        private string? _modelId;
        private ChatFinishReason? _finish;
        private long? _input;
        private long? _output;
        private long? _cacheWrite;
        private long? _cacheRead;
        private bool _hasUsage;

        public ChatResponseUpdate Read(RawMessageStreamEvent e)
        {
            List<AIContent> contents = [];
            if (e.TryPickStart(out var start))
            {
                _messageId ??= start.Message.ID;
                _modelId ??= start.Message.Model.Raw();
                var usage = start.Message.Usage;
                (_input, _output, _cacheWrite, _cacheRead, _hasUsage) =
                    (usage.InputTokens, usage.OutputTokens, usage.CacheCreationInputTokens, usage.CacheReadInputTokens, true);
            }
            else if (e.TryPickDelta(out var delta))
            {
                _finish = FinishReason(delta.Delta.StopReason?.Raw());
                if (delta.Usage is { } usage)
                {
                    // Cumulative; the input and cache counts are usually left out of the last delta.
                    _input = usage.InputTokens ?? _input;
                    _output = usage.OutputTokens;
                    _cacheWrite = usage.CacheCreationInputTokens ?? _cacheWrite;
                    _cacheRead = usage.CacheReadInputTokens ?? _cacheRead;
                    _hasUsage = true;
                }
            }
            else if (e.TryPickContentBlockStart(out var blockStart))
            {
                if (blockStart.ContentBlock.TryPickText(out var text))
                {
                    contents.Add(new TextContent(text.Text));
                }
                else if (blockStart.ContentBlock.TryPickToolUse(out var toolUse))
                {
                    _calls[blockStart.Index] = (toolUse.ID, toolUse.Name, new StringBuilder());
                }
            }
            else if (e.TryPickContentBlockDelta(out var blockDelta))
            {
                if (blockDelta.Delta.TryPickText(out var text))
                {
                    contents.Add(new TextContent(text.Text));
                }
                else if (blockDelta.Delta.TryPickInputJson(out var json) && _calls.TryGetValue(blockDelta.Index, out var call))
                {
                    call.Arguments.Append(json.PartialJson);
                }
            }
            else if (e.TryPickContentBlockStop(out var blockStop) && _calls.Remove(blockStop.Index, out var done))
            {
                var arguments = done.Arguments.Length == 0 ? "{}" : done.Arguments.ToString();
                contents.Add(FunctionCallContent.CreateFromParsedArguments(arguments, done.Id, done.Name,
                    static json => JsonSerializer.Deserialize(json, AIJsonUtilities.DefaultOptions.GetTypeInfo(typeof(Dictionary<string, object?>))) as Dictionary<string, object?>));
            }

            return Update(contents);
        }

        public ChatResponseUpdate Update(IList<AIContent> contents) => new(ChatRole.Assistant, contents)
        {
            CreatedAt = DateTimeOffset.UtcNow,
            FinishReason = _finish,
            MessageId = _messageId,
            ModelId = _modelId,
            ResponseId = _messageId,
        };

        /// <summary>Usage the way the SDK adapter reports it: input counts every input token, cache reads and writes included.</summary>
        public UsageDetails? Usage()
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
