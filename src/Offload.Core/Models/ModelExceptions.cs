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
