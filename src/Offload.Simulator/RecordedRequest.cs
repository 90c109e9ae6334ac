namespace Offload.Simulator;

/// <summary>
/// One request the simulator received, so tests can check what a client sent.
/// <paramref name="Api"/> is "anthropic", "openai" or "other"; <paramref name="TurnIndex"/> is -1 when the
/// request is not a model call (or its body could not be read). Older bodies are emptied past the cap.
/// </summary>
public sealed record RecordedRequest(
    string Method,
    string Path,
    string Api,
    string? Model,
    int BodyBytes,
    string Body,
    int TurnIndex,
    DateTimeOffset At)
{
    /// <summary>The query string including its leading '?', or empty.</summary>
    public string Query { get; init; } = "";

    /// <summary>Whether the request asked for a streamed answer.</summary>
    public bool Stream { get; init; }

    /// <summary>The key the client sent (<c>x-api-key</c>, or the bearer token of <c>Authorization</c>), if any: to check who adds the credential on the way.</summary>
    public string? ApiKey { get; init; }

    /// <summary>The input tokens the Simulator counted for a model call (a token per 4 bytes of body), as its usage reports them.</summary>
    public int InputTokens { get; init; }

    /// <summary>Whether the request asked for a summary of the conversation (<see cref="Scenario.SummaryRequestMarker"/>).</summary>
    public bool Summary { get; init; }
}
