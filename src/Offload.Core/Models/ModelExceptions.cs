using System.Globalization;
using System.Text.Json;

namespace Offload.Models;

/// <summary>
/// The model configuration cannot work: a malformed model name, an unknown provider, a missing API key.
/// Found before any call is made; the message says what to type instead.
/// </summary>
public sealed class ModelConfigException(string code, string message) : Exception(message)
{
    public const string Malformed = "model_malformed";
    public const string UnknownProvider = "model_unknown_provider";
    public const string MissingKey = "model_missing_key";
    public const string BadProvider = "model_bad_provider";

    /// <summary>A stable, machine-readable reason (one of the constants on this type).</summary>
    public string Code { get; } = code;
}

/// <summary>
/// A model call failed for good: the provider rejected it (400/401/403/404) or kept failing until the retries ran out.
/// Carries the provider's own words and a hint for the user.
/// </summary>
public sealed class ModelCallException(
    string provider,
    int? statusCode,
    string providerMessage,
    string hint,
    Exception? inner = null)
    : Exception($"{provider} model call failed{(statusCode is { } s ? $" (HTTP {s})" : "")}: {providerMessage} — {hint}", inner)
{
    public string Provider { get; } = provider;

    public int? StatusCode { get; } = statusCode;

    /// <summary>What the provider (or the transport) said, as it said it.</summary>
    public string ProviderMessage { get; } = providerMessage;

    /// <summary>What the user can do about it.</summary>
    public string Hint { get; } = hint;
}

/// <summary>One retry about to happen: the retry number (1 for the first retry), how long it waits, and why.</summary>
public sealed record ModelRetry(int Try, TimeSpan Delay, string Reason);

/// <summary>
/// A provider refused or failed a model call: an HTTP error (<see cref="StatusCode"/>) or an error event inside the
/// stream (no status, <see cref="ErrorType"/> says which). <see cref="RetryingChatClient"/> decides whether it is retried.
/// </summary>
public sealed class ModelProviderException(int? statusCode, string? errorType, string message, TimeSpan? retryAfter)
    : Exception(message)
{
    public int? StatusCode { get; } = statusCode;

    /// <summary>The provider's error type, e.g. <c>overloaded_error</c> or <c>invalid_request_error</c>.</summary>
    public string? ErrorType { get; } = errorType;

    /// <summary>How long the provider asked to be left alone (<c>Retry-After</c>), if it did.</summary>
    public TimeSpan? RetryAfter { get; } = retryAfter;

    /// <summary>The error of a response that failed: its status, its body's <c>error.type</c> and <c>error.message</c> (or the body as it is), its <c>Retry-After</c>.</summary>
    public static async Task<ModelProviderException> FromResponseAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        string body;
        try
        {
            body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            body = "";
        }

        var (type, message) = ParseError(body);
        var status = (int)response.StatusCode;
        return new ModelProviderException(status, type, message ?? $"HTTP {status} {response.ReasonPhrase}", RetryAfterOf(response));
    }

    /// <summary>The <c>error.type</c> and <c>error.message</c> of an Anthropic or OpenAI error body; the body itself when it is not one.</summary>
    public static (string? Type, string? Message) ParseError(string? body)
    {
        if (string.IsNullOrWhiteSpace(body))
        {
            return (null, null);
        }

        try
        {
            using var json = JsonDocument.Parse(body);
            return json.RootElement.ValueKind == JsonValueKind.Object
                && json.RootElement.TryGetProperty("error", out var error)
                && error.ValueKind == JsonValueKind.Object
                && error.TryGetProperty("message", out var message)
                && message.ValueKind == JsonValueKind.String
                ? (error.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String ? type.GetString() : null, message.GetString())
                : (null, body);
        }
        catch (JsonException)
        {
            return (null, body);
        }
    }

    /// <summary>A response's <c>retry-after-ms</c> or <c>Retry-After</c> (seconds or an HTTP date).</summary>
    public static TimeSpan? RetryAfterOf(HttpResponseMessage response)
    {
        if (response.Headers.TryGetValues("retry-after-ms", out var ms)
            && double.TryParse(ms.FirstOrDefault(), NumberStyles.Float, CultureInfo.InvariantCulture, out var millis)
            && millis >= 0)
        {
            return TimeSpan.FromMilliseconds(millis);
        }

        return response.Headers.TryGetValues("retry-after", out var values) ? ParseRetryAfter(values.FirstOrDefault()) : null;
    }

    /// <summary>A <c>Retry-After</c> value: seconds, or an HTTP date (a wait of zero once it has passed).</summary>
    public static TimeSpan? ParseRetryAfter(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }

        if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds))
        {
            return seconds >= 0 ? TimeSpan.FromSeconds(seconds) : null;
        }

        return DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at)
            ? (at - DateTimeOffset.UtcNow) is var wait && wait > TimeSpan.Zero ? wait : TimeSpan.Zero
            : null;
    }
}
