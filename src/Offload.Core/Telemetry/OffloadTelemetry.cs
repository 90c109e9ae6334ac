using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.AI;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Offload.Models;
using Offload.Protocol;
using Offload.Redaction;

namespace Offload.Telemetry;

/// <summary>
/// The daemon's traces and metrics over OTLP, following the OpenTelemetry GenAI semantic conventions (docs/telemetry.md):
/// an <c>invoke_agent offload</c> span per run attempt (<see cref="RunTelemetry"/>), a <c>chat {model}</c> span per model
/// call (Microsoft.Extensions.AI's <see cref="OpenTelemetryChatClient"/>), an <c>execute_tool {name}</c> span per tool
/// call; token, cost and duration histograms per attempt. Made only when an endpoint is configured
/// (<see cref="Start"/> returns null otherwise): without one there is no exporter, no background thread, and the
/// sources and instruments below have no listener, so starting a span or recording a value does nothing.
/// </summary>
public sealed class OffloadTelemetry : IDisposable
{
    /// <summary>Offload's own spans and instruments.</summary>
    public const string SourceName = "Offload";

    /// <summary>The model calls' <c>chat</c> spans (their metrics are not exported: the per-attempt ones count the same tokens).</summary>
    public const string ModelSourceName = "Offload.Models";

    public const string EndpointVariable = "OTEL_EXPORTER_OTLP_ENDPOINT";
    public const string ProtocolVariable = "OTEL_EXPORTER_OTLP_PROTOCOL";
    public const string ContentVariable = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT";

    private static readonly string Version = typeof(OffloadTelemetry).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    internal static readonly ActivitySource Source = new(SourceName, Version);

    private static readonly Meter Meter = new(SourceName, Version);

    /// <summary>Semantic conventions' <c>gen_ai.client.token.usage</c>, recorded once per attempt and token type, with its advised buckets.</summary>
    internal static readonly Histogram<long> TokenUsage = Meter.CreateHistogram(
        "gen_ai.client.token.usage", "{token}", "Tokens used by a run attempt of a task, input (cache reads and writes included) and output",
        tags: null, new InstrumentAdvice<long> { HistogramBucketBoundaries = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864] });

    internal static readonly Histogram<double> TaskCost = Meter.CreateHistogram(
        "offload.task.cost", "USD", "What a run attempt of a task cost, as Offload prices its tokens",
        tags: null, new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100] });

    internal static readonly Histogram<double> TaskDuration = Meter.CreateHistogram(
        "offload.task.duration", "s", "Wall time of a run attempt of a task, from its start to its recorded end",
        tags: null, new InstrumentAdvice<double> { HistogramBucketBoundaries = [1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400] });

    private readonly TracerProvider _traces;
    private readonly MeterProvider _metrics;

    private OffloadTelemetry(TracerProvider traces, MeterProvider metrics, bool content, Uri endpoint, OtlpExportProtocol protocol)
    {
        _traces = traces;
        _metrics = metrics;
        Content = content;
        Endpoint = endpoint;
        Protocol = protocol;
    }

    /// <summary>Prompts, messages and tool input and output are exported too (<see cref="TelemetrySettings.Content"/>).</summary>
    public bool Content { get; }

    public Uri Endpoint { get; }

    public OtlpExportProtocol Protocol { get; }

    /// <summary>
    /// Starts exporting when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set (it wins) or <c>telemetry.otlp</c> is; null when
    /// neither is, or the variable is not a URL (<paramref name="problem"/> says so, for the daemon's log: an ambient
    /// variable does not stop the daemon). <c>OTEL_EXPORTER_OTLP_PROTOCOL</c> chooses <c>http/protobuf</c> (the default)
    /// or <c>grpc</c>; the exporter itself reads <c>OTEL_EXPORTER_OTLP_HEADERS</c> and <c>_TIMEOUT</c>, and the SDK
    /// <c>OTEL_BSP_*</c>, <c>OTEL_METRIC_EXPORT_INTERVAL</c>, <c>OTEL_SERVICE_NAME</c> and <c>OTEL_RESOURCE_ATTRIBUTES</c>.
    /// </summary>
    /// <param name="redactor">Applied to exported content, as to the journal (a model's answer is not in the journal before it is traced).</param>
    public static OffloadTelemetry? Start(TelemetrySettings settings, Func<string, string?> getEnv, SecretRedactor redactor, out string? problem)
    {
        problem = null;
        var variable = getEnv(EndpointVariable) is { Length: > 0 } set ? set.Trim() : null;
        var endpoint = variable ?? settings.Otlp;
        if (endpoint is null)
        {
            return null;
        }

        if (!IsEndpoint(endpoint))
        {
            problem = $"{EndpointVariable} is \"{endpoint}\", which is not an http(s) URL, so no telemetry is exported; "
                + "set it to your OTLP receiver (e.g. http://localhost:4318) or unset it, then `offload daemon stop`";
            return null;
        }

        var protocol = OtlpExportProtocol.HttpProtobuf;
        switch (getEnv(ProtocolVariable)?.Trim().ToLowerInvariant())
        {
            case null or "" or "http/protobuf":
                break;
            case "grpc":
                protocol = OtlpExportProtocol.Grpc;
                break;
            case var other:
                problem = $"{ProtocolVariable} is \"{other}\", which Offload does not send; it sends http/protobuf instead (grpc is the other choice)";
                break;
        }

        var content = settings.Content || string.Equals(getEnv(ContentVariable), "true", StringComparison.OrdinalIgnoreCase);
        var baseUrl = new Uri(endpoint);
        Uri Signal(string path) => protocol == OtlpExportProtocol.Grpc ? baseUrl : new Uri(endpoint.TrimEnd('/') + "/" + path);
        var resource = ResourceBuilder.CreateDefault();
        if (getEnv("OTEL_SERVICE_NAME") is not { Length: > 0 })
        {
            resource.AddService("offload", serviceVersion: Version);
        }

        var traces = Sdk.CreateTracerProviderBuilder().SetResourceBuilder(resource).AddSource(SourceName, ModelSourceName);
        if (content)
        {
            traces.AddProcessor(new ContentRedaction(redactor));
        }

        return new OffloadTelemetry(
            traces.AddOtlpExporter(o => (o.Protocol, o.Endpoint) = (protocol, Signal("v1/traces"))).Build(),
            Sdk.CreateMeterProviderBuilder().SetResourceBuilder(resource).AddMeter(SourceName)
                .AddOtlpExporter(o => (o.Protocol, o.Endpoint) = (protocol, Signal("v1/metrics"))).Build(),
            content, baseUrl, protocol);
    }

    internal static bool IsEndpoint(string text) =>
        Uri.TryCreate(text.Trim(), UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" && uri.Host.Length > 0;

    /// <summary>The model client with a <c>chat {model}</c> span around each call (retries included), under the run's span.</summary>
    public IChatClient Instrument(IChatClient client, ModelRef model) =>
        new ChatClientBuilder(new Described(client, new ChatClientMetadata(model.Provider, defaultModelId: model.Name)))
            .UseOpenTelemetry(sourceName: ModelSourceName, configure: c => c.EnableSensitiveData = Content)
            .Build();

    /// <summary>The <c>invoke_agent</c> span of one run attempt; the engine's spans go under it.</summary>
    /// <param name="startSeq">The seq of the attempt's first event: its usage and finish are read from there on.</param>
    public RunTelemetry StartRun(TaskInfo task, string engine, int attempt, long startSeq) => new(this, task, engine, attempt, startSeq);

    /// <summary>Sends what is still buffered, waiting at most two seconds each for traces and metrics: a dead receiver does not hold up a stop.</summary>
    public void Dispose()
    {
        _traces.Shutdown(2000);
        _metrics.Shutdown(2000);
        _traces.Dispose();
        _metrics.Dispose();
    }

    /// <summary>
    /// Names the provider for the <c>chat</c> spans the way Offload does (<c>anthropic</c>, <c>openai</c>, <c>sim</c>, a
    /// configured provider's name): the Simulator's client is only made on its first call.
    /// </summary>
    private sealed class Described(IChatClient inner, ChatClientMetadata metadata) : DelegatingChatClient(inner)
    {
        public override object? GetService(Type serviceType, object? serviceKey = null) =>
            serviceKey is null && serviceType == typeof(ChatClientMetadata) ? metadata : base.GetService(serviceType, serviceKey);
    }
}
