namespace Offload.Telemetry;

/// <summary>
/// Where the daemon sends its traces and metrics (docs/telemetry.md). Read from the user's config only: a repository's
/// <c>.offload/config.json</c> cannot send a task's prompts elsewhere.
/// </summary>
public sealed record TelemetrySettings
{
    /// <summary>
    /// The OTLP endpoint's base URL, as <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> takes it (e.g. <c>http://localhost:4318</c>;
    /// <c>/v1/traces</c> and <c>/v1/metrics</c> are added). Null: nothing is exported unless that variable is set.
    /// </summary>
    public string? Otlp { get; init; }

    /// <summary>
    /// Export prompts, model messages and tool input and output too (as <c>OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true</c>
    /// does). Off by default: spans then carry names, models, ids, timings and token counts only.
    /// </summary>
    public bool Content { get; init; }

    /// <summary>The first setting that cannot work, or null.</summary>
    internal string? Problem() =>
        Otlp is not null && !OffloadTelemetry.IsEndpoint(Otlp)
            ? $"telemetry.otlp is \"{Otlp}\"; it should be the URL of an OTLP receiver, e.g. \"http://localhost:4318\""
            : null;
}
