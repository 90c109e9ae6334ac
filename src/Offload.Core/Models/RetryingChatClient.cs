using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.Extensions.AI;

namespace Offload.Models;

/// <summary>
/// Retries model calls that failed for a passing reason: 429/529/5xx, a dropped or stalled connection, an error
/// event inside the stream, a stream that broke off or could not be parsed. <see cref="GetResponseAsync"/> always
/// streams underneath and aggregates, so a stream that fails half way is thrown away and the whole call is made
/// again; a stream that sends nothing for <see cref="RetrySettings.IdleTimeout"/> counts as stalled. A request the
/// provider refuses (400/401/403/404) or one that keeps failing ends in a <see cref="ModelCallException"/>.
/// The caller's cancellation is never retried.
/// </summary>
public sealed class RetryingChatClient(
    IChatClient inner,
    string provider,
    RetrySettings settings,
    Func<ModelRetry, Task>? onRetry = null,
    TimeProvider? timeProvider = null) : DelegatingChatClient(inner)
{
    private readonly TimeProvider _time = timeProvider ?? TimeProvider.System;

    public override async Task<ChatResponse> GetResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var history = messages as IList<ChatMessage> ?? [.. messages];
        for (var attempt = 1; ; attempt++)
        {
            using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            using var probe = FailedResponseProbe.Begin();
            Failure failure;
            try
            {
                idle.CancelAfter(settings.IdleTimeout);
                List<ChatResponseUpdate> updates = [];
                await foreach (var update in base.GetStreamingResponseAsync(history, options, idle.Token).WithCancellation(idle.Token))
                {
                    idle.CancelAfter(settings.IdleTimeout);
                    updates.Add(update);
                }

                var response = updates.ToChatResponse();
                if (response.FinishReason is not null)
                {
                    return response;
                }

                failure = new Failure(true, null, "the stream ended before the answer was complete", "stream cut short", null);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                failure = Classify(e, idle.IsCancellationRequested, probe);
                if (!failure.Transient)
                {
                    throw Persistent(failure, e);
                }

                if (attempt >= settings.MaxTries)
                {
                    throw Exhausted(failure, attempt, e);
                }
            }

            if (attempt >= settings.MaxTries)
            {
                throw Exhausted(failure, attempt, null);
            }

            await WaitBeforeRetryAsync(attempt, failure, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Streams with the same retries, as long as nothing has been handed to the caller yet; once updates have
    /// gone out, a failure is final (the caller cannot take them back).
    /// </summary>
    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages,
        ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var history = messages as IList<ChatMessage> ?? [.. messages];
        for (var attempt = 1; ; attempt++)
        {
            using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            using var probe = FailedResponseProbe.Begin();
            var yielded = false;
            Failure failure;
            var stream = base.GetStreamingResponseAsync(history, options, idle.Token).GetAsyncEnumerator(idle.Token);
            try
            {
                while (true)
                {
                    idle.CancelAfter(settings.IdleTimeout);
                    bool more;
                    try
                    {
                        more = await stream.MoveNextAsync().ConfigureAwait(false);
                    }
                    catch (Exception e) when (!cancellationToken.IsCancellationRequested)
                    {
                        var classified = Classify(e, idle.IsCancellationRequested, probe);
                        if (!classified.Transient)
                        {
                            throw Persistent(classified, e);
                        }

                        if (yielded || attempt >= settings.MaxTries)
                        {
                            throw Exhausted(classified, attempt, e);
                        }

                        failure = classified;
                        break;
                    }

                    if (!more)
                    {
                        yield break;
                    }

                    // The caller's time with an update is not the model's silence.
                    idle.CancelAfter(Timeout.InfiniteTimeSpan);

                    yielded = true;
                    yield return stream.Current;
                }
            }
            finally
            {
                await stream.DisposeAsync().ConfigureAwait(false);
            }

            await WaitBeforeRetryAsync(attempt, failure, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task WaitBeforeRetryAsync(int attempt, Failure failure, CancellationToken cancellationToken)
    {
        var exponential = settings.BaseDelay * Math.Pow(2, attempt - 1);
        var capped = exponential < settings.MaxDelay ? exponential : settings.MaxDelay;
        var delay = capped * (0.5 + Random.Shared.NextDouble() / 2);
        if (failure.RetryAfter is { } retryAfter && retryAfter > delay)
        {
            delay = retryAfter;
        }

        if (onRetry is not null)
        {
            await onRetry(new ModelRetry(attempt, delay, failure.Reason)).ConfigureAwait(false);
        }

        await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
    }

    private ModelCallException Persistent(Failure failure, Exception e)
    {
        var hint = failure.Status switch
        {
            401 => provider switch
            {
                "anthropic" or "sim" => "check ANTHROPIC_API_KEY",
                "openai" => "check OPENAI_API_KEY",
                _ => $"check the API key of provider '{provider}' (the variable its apiKeyEnv names in the config, OPENAI_API_KEY by default)",
            },
            403 => "the API key lacks permission for this model or request; check the key's permissions and the model name",
            404 => "the provider does not know this model or endpoint; check the model name and the provider's baseUrl",
            400 or 413 or 422 => "the provider rejected the request; the message above says what it objected to",
            _ => "the request cannot succeed as it is",
        };
        return new ModelCallException(provider, failure.Status, failure.Message, hint, e);
    }

    private ModelCallException Exhausted(Failure failure, int attempts, Exception? e) =>
        new(provider,
            failure.Status,
            failure.Message,
            $"the provider kept failing ({failure.Reason}, {attempts} tries); try again later or `offload retry`",
            e);

    private static Failure Classify(Exception e, bool idleFired, FailedResponseProbe probe)
    {
        if (idleFired)
        {
            return new Failure(true, null, "no data arrived from the model for too long", "stream stalled", null);
        }

        var retryAfter = probe.RetryAfter;
        switch (e)
        {
            case Anthropic.Exceptions.AnthropicApiException api:
            {
                var status = (int)api.StatusCode;
                return FromStatus(status, ErrorMessage(api.ResponseBody) ?? api.Message, retryAfter);
            }

            case System.ClientModel.ClientResultException result when result.Status != 0:
            {
                var raw = result.GetRawResponse();
                string? body = null;
                try
                {
                    body = raw?.Content?.ToString();
                }
                catch (InvalidOperationException)
                {
                    // A streamed response's body has not been buffered and cannot be read here.
                }

                return FromStatus(result.Status, ErrorMessage(body) ?? result.Message, RetryAfter(raw?.Headers) ?? retryAfter);
            }

            case Anthropic.Exceptions.AnthropicSseException sse:
            {
                var message = ErrorMessage(sse.Message) ?? sse.Message;
                var type = sse.ErrorType?.ToString() ?? sse.Message;
                var refused = type.Contains("invalid_request", StringComparison.OrdinalIgnoreCase)
                    || type.Contains("authentication", StringComparison.OrdinalIgnoreCase)
                    || type.Contains("permission", StringComparison.OrdinalIgnoreCase);
                return new Failure(!refused, null, message, "error event in the stream", retryAfter);
            }
        }

        for (var cause = e; cause is not null; cause = cause.InnerException)
        {
            switch (cause)
            {
                case HttpRequestException { StatusCode: { } code }:
                    return FromStatus((int)code, cause.Message, retryAfter);
                case HttpRequestException or IOException or System.Net.Sockets.SocketException
                    or System.ClientModel.ClientResultException or Anthropic.Exceptions.AnthropicIOException:
                    return new Failure(true, null, cause.Message, "connection failed", retryAfter);
                case JsonException or Anthropic.Exceptions.AnthropicInvalidDataException or FormatException:
                    return new Failure(true, null, cause.Message, "malformed response", retryAfter);
                case OperationCanceledException or TimeoutException:
                    return new Failure(true, null, cause.Message, "request timed out", retryAfter);
            }
        }

        return new Failure(false, null, e.Message, "unexpected error", retryAfter);
    }

    private static Failure FromStatus(int status, string message, TimeSpan? retryAfter)
    {
        var transient = status is 408 or 409 or 429 or 529 || status >= 500;
        var reason = status switch
        {
            429 => "HTTP 429 rate limited",
            529 => "HTTP 529 overloaded",
            _ => $"HTTP {status}",
        };
        return new Failure(transient, status, message, reason, retryAfter);
    }

    /// <summary>The <c>error.message</c> of an Anthropic or OpenAI error body, if it is one.</summary>
    private static string? ErrorMessage(string? body)
    {
        if (string.IsNullOrWhiteSpace(body))
        {
            return null;
        }

        try
        {
            using var json = JsonDocument.Parse(body);
            return json.RootElement.ValueKind == JsonValueKind.Object
                && json.RootElement.TryGetProperty("error", out var error)
                && error.ValueKind == JsonValueKind.Object
                && error.TryGetProperty("message", out var message)
                && message.ValueKind == JsonValueKind.String
                ? message.GetString()
                : body;
        }
        catch (JsonException)
        {
            return body;
        }
    }

    private static TimeSpan? RetryAfter(System.ClientModel.Primitives.PipelineResponseHeaders? headers)
    {
        if (headers is null)
        {
            return null;
        }

        if (headers.TryGetValue("retry-after-ms", out var ms) && double.TryParse(ms, System.Globalization.CultureInfo.InvariantCulture, out var millis))
        {
            return TimeSpan.FromMilliseconds(millis);
        }

        return headers.TryGetValue("retry-after", out var value) ? FailedResponseProbe.ParseRetryAfter(value) : null;
    }

    private sealed record Failure(bool Transient, int? Status, string Message, string Reason, TimeSpan? RetryAfter);
}

/// <summary>
/// Remembers the <c>Retry-After</c> of the last failed HTTP response of the current model call. The Anthropic
/// SDK's exceptions carry the status and body but not the headers, so its client gets this handler; the
/// retrying client opens a probe per attempt and the handler, running in the same async flow, fills it.
/// </summary>
internal sealed class FailedResponseProbe : IDisposable
{
    private static readonly AsyncLocal<FailedResponseProbe?> s_current = new();
    private readonly FailedResponseProbe? _previous;

    private FailedResponseProbe(FailedResponseProbe? previous) => _previous = previous;

    public TimeSpan? RetryAfter { get; private set; }

    public static FailedResponseProbe Begin()
    {
        var probe = new FailedResponseProbe(s_current.Value);
        s_current.Value = probe;
        return probe;
    }

    public void Dispose() => s_current.Value = _previous;

    public static TimeSpan? ParseRetryAfter(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }

        if (double.TryParse(value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var seconds))
        {
            return seconds >= 0 ? TimeSpan.FromSeconds(seconds) : null;
        }

        return DateTimeOffset.TryParse(value, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var at)
            ? (at - DateTimeOffset.UtcNow) is var wait && wait > TimeSpan.Zero ? wait : TimeSpan.Zero
            : null;
    }

    /// <summary>The handler placed in the Anthropic SDK's HTTP pipeline.</summary>
    public sealed class Handler : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode && s_current.Value is { } probe)
            {
                probe.RetryAfter = response.Headers.RetryAfter is RetryConditionHeaderValue header
                    ? header.Delta ?? (header.Date is { } date ? Max(date - DateTimeOffset.UtcNow) : null)
                    : response.Headers.TryGetValues("retry-after", out var raw) ? ParseRetryAfter(raw.FirstOrDefault()) : null;
            }

            return response;
        }

        private static TimeSpan Max(TimeSpan wait) => wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
    }
}
