using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace Offload.Models;

/// <summary>
/// Anthropic's Messages API as an <see cref="IChatClient"/>, over plain HTTP and SSE, made for an agent's
/// conversation, which grows by a message or two per call. Each message's wire JSON is written once and kept with
/// its <see cref="ChatMessage"/> (written again if the message changes), and the joined messages are kept from one
/// call to the next, so a call writes only what is new; the rest of the request (model, limits, system prompt,
/// tools, options) is written once per options and kept (<c>AnthropicChatClient.Request.cs</c>). The answer's
/// events are read into updates the way the SDK adapter reports them (<c>AnthropicChatClient.Stream.cs</c>).
/// <list type="bullet">
/// <item>Thinking (adaptive with an effort, or a token budget) is asked for as the client was made; thinking and
/// redacted-thinking blocks come back as <see cref="TextReasoningContent"/> (the signature or the redacted data in
/// <see cref="TextReasoningContent.ProtectedData"/>, redacted ones marked as the SDK marks them) and go out again
/// unchanged.</item>
/// <item>Prompt-cache breakpoints go after the last tool, the system prompt and the newest message's last block:
/// three of the four the API allows, so each turn reads the conversation so far from the cache.</item>
/// <item>An HTTP error or an error event becomes a <see cref="ModelProviderException"/> with the status, the
/// provider's words and its <c>Retry-After</c>; <see cref="RetryingChatClient"/> decides what is retried.</item>
/// <item>No SDK: the official one weighs about 20 MiB in the daemon (its assembly, its types, its reflection-based
/// JSON) for one endpoint, and cannot be compiled ahead of time.</item>
/// </list>
/// </summary>
public sealed partial class AnthropicChatClient : IChatClient
{
    public const string ApiVersion = "2023-06-01";

    /// <summary>One connection pool for every task's calls (a client is made per task run).</summary>
    private static readonly HttpClient SharedHttp = new(new SocketsHttpHandler
    {
        ConnectTimeout = TimeSpan.FromSeconds(30),
        PooledConnectionIdleTimeout = TimeSpan.FromSeconds(50),
    })
    {
        Timeout = Timeout.InfiniteTimeSpan, // a silent stream is RetryingChatClient's to cut (idleTimeout)
    };

    private readonly HttpClient _http;
    private readonly Uri _messages;
    private readonly string _apiKey;
    private readonly string _model;
    private readonly int _maxOutputTokens;
    private readonly ThinkingRequest? _thinking;
    private ChatClientMetadata? _metadata;

    /// <param name="baseUrl">The API's root, e.g. https://api.anthropic.com (the request goes to /v1/messages under it).</param>
    /// <param name="apiKey">Sent as <c>x-api-key</c>.</param>
    /// <param name="model">The model, unless <see cref="ChatOptions.ModelId"/> names another.</param>
    /// <param name="maxOutputTokens">The output limit, unless <see cref="ChatOptions.MaxOutputTokens"/> sets another.</param>
    /// <param name="thinking">The thinking every request asks for (<see cref="Thinking.For"/>); none when null.</param>
    /// <param name="http">The HTTP client; one shared by every instance when not given.</param>
    public AnthropicChatClient(string baseUrl, string apiKey, string model, int maxOutputTokens, ThinkingRequest? thinking = null, HttpClient? http = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxOutputTokens);
        _http = http ?? SharedHttp;
        BaseUrl = new Uri(baseUrl.TrimEnd('/') + "/", UriKind.Absolute);
        _messages = new Uri(BaseUrl, "v1/messages");
        _apiKey = apiKey;
        _model = model;
        _maxOutputTokens = maxOutputTokens;
        _thinking = thinking;
    }

    /// <summary>
    /// The <see cref="AIContent.AdditionalProperties"/> key that marks a <see cref="TextReasoningContent"/> as redacted
    /// thinking (its <see cref="TextReasoningContent.ProtectedData"/> is the block's <c>data</c>): the official SDK's
    /// adapter reads and writes the same mark.
    /// </summary>
    public const string RedactedThinkingKey = "anthropic:redacted_thinking";

    public Uri BaseUrl { get; }

    /// <summary>A redacted thinking block as content: no text, the encrypted <paramref name="data"/>, the mark.</summary>
    public static TextReasoningContent RedactedThinking(string data) =>
        new("") { ProtectedData = data, AdditionalProperties = new() { [RedactedThinkingKey] = true } };

    /// <summary>Whether <paramref name="content"/> carries the redacted-thinking mark (also as read back from JSON).</summary>
    public static bool IsRedacted(AIContent content) =>
        content.AdditionalProperties?.TryGetValue(RedactedThinkingKey, out var mark) == true
        && mark is true or System.Text.Json.JsonElement { ValueKind: System.Text.Json.JsonValueKind.True };

    public async Task<ChatResponse> GetResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken).ConfigureAwait(false);

    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var list = messages as IReadOnlyList<ChatMessage> ?? [.. messages];
        var (system, wire, markLast) = WireMessages(list);
        var head = Head(options, system);
        return StreamAsync(new WireContent(head, wire, markLast), cancellationToken);
    }

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null)
        {
            return null;
        }

        if (serviceType == typeof(ChatClientMetadata))
        {
            return _metadata ??= new ChatClientMetadata("anthropic", BaseUrl, _model);
        }

        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    public void Dispose()
    {
        // The HTTP client is shared (or the caller's); nothing else is held.
    }

    private async IAsyncEnumerable<ChatResponseUpdate> StreamAsync(WireContent body, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, _messages) { Content = body };
        request.Headers.Add("x-api-key", _apiKey);
        request.Headers.Add("anthropic-version", ApiVersion);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw await ModelProviderException.FromResponseAsync(response, cancellationToken).ConfigureAwait(false);
        }

        var reader = new EventReader();
        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await foreach (var update in reader.ReadAsync(stream, cancellationToken).ConfigureAwait(false))
        {
            yield return update;
        }
    }
}
