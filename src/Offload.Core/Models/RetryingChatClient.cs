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
                failure = Classify(e, idle.IsCancellationRequested);
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
                        var classified = Classify(e, idle.IsCancellationRequested);
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

    private static Failure Classify(Exception e, bool idleFired)
    {
        if (idleFired)
        {
            return new Failure(true, null, "no data arrived from the model for too long", "stream stalled", null);
        }

        switch (e)
        {
            case ModelProviderException { StatusCode: { } status } http:
                return FromStatus(status, http.Message, http.RetryAfter);

            case ModelProviderException stream:
            {
                var type = stream.ErrorType ?? "";
                var refused = type.Contains("invalid_request", StringComparison.OrdinalIgnoreCase)
                    || type.Contains("authentication", StringComparison.OrdinalIgnoreCase)
                    || type.Contains("permission", StringComparison.OrdinalIgnoreCase);
                return new Failure(!refused, null, stream.Message, "error event in the stream", stream.RetryAfter);
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

                return FromStatus(result.Status, ModelProviderException.ParseError(body).Message ?? result.Message, RetryAfter(raw?.Headers));
            }
        }

        for (var cause = e; cause is not null; cause = cause.InnerException)
        {
            switch (cause)
            {
                case HttpRequestException { StatusCode: { } code }:
                    return FromStatus((int)code, cause.Message, null);
                case HttpRequestException or IOException or System.Net.Sockets.SocketException or System.ClientModel.ClientResultException:
                    return new Failure(true, null, cause.Message, "connection failed", null);
                case JsonException or FormatException:
                    return new Failure(true, null, cause.Message, "malformed response", null);
                case OperationCanceledException or TimeoutException:
                    return new Failure(true, null, cause.Message, "request timed out", null);
            }
        }

        return new Failure(false, null, e.Message, "unexpected error", null);
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

        return headers.TryGetValue("retry-after", out var value) ? ModelProviderException.ParseRetryAfter(value) : null;
    }

    private sealed record Failure(bool Transient, int? Status, string Message, string Reason, TimeSpan? RetryAfter);
}
