using System.Buffers.Binary;
using System.IO.Compression;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace Offload.Tests.Telemetry;

/// <summary>
/// A real OTLP receiver on a loopback port: Kestrel takes <c>POST /v1/traces</c> and <c>/v1/metrics</c>
/// (protobuf, gzip or not), or with <c>grpc</c> the two services' <c>Export</c> calls over HTTP/2 (gRPC's
/// length-prefixed frames, answered with <c>grpc-status: 0</c>), decodes them with <see cref="Protobuf"/>, and keeps
/// what arrived. Tests wait on
/// <see cref="WaitUntilAsync{T}"/>: each request that arrives wakes them.
/// </summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Lock _gate = new();
    private readonly List<OtlpSpan> _spans = [];
    private readonly List<OtlpPoint> _points = [];
    private TaskCompletionSource _arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private OtlpReceiver(WebApplication app) => _app = app;

    public Uri BaseUrl { get; private set; } = null!;

    public int Requests { get; private set; }

    public static async Task<OtlpReceiver> StartAsync(bool grpc = false)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o => o.Protocols = grpc ? HttpProtocols.Http2 : HttpProtocols.Http1AndHttp2));
        var app = builder.Build();
        var receiver = new OtlpReceiver(app);
        if (grpc)
        {
            app.MapPost("/opentelemetry.proto.collector.trace.v1.TraceService/Export", context => receiver.ReceiveGrpcAsync(context, receiver.AddTraces));
            app.MapPost("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export", context => receiver.ReceiveGrpcAsync(context, receiver.AddMetrics));
        }
        else
        {
            app.MapPost("/v1/traces", context => receiver.ReceiveAsync(context, receiver.AddTraces));
            app.MapPost("/v1/metrics", context => receiver.ReceiveAsync(context, receiver.AddMetrics));
        }

        await app.StartAsync();
        receiver.BaseUrl = new Uri(app.Urls.First());
        return receiver;
    }

    public IReadOnlyList<OtlpSpan> Spans
    {
        get
        {
            lock (_gate)
            {
                return [.. _spans];
            }
        }
    }

    public IReadOnlyList<OtlpPoint> Points
    {
        get
        {
            lock (_gate)
            {
                return [.. _points];
            }
        }
    }

    /// <summary>Waits until <paramref name="found"/> gives a value for what has arrived (checked at each arrival).</summary>
    public async Task<T> WaitUntilAsync<T>(Func<OtlpReceiver, T?> found, TimeSpan timeout, string what)
        where T : class
    {
        using var cts = new CancellationTokenSource(timeout);
        while (true)
        {
            Task next;
            lock (_gate)
            {
                next = _arrived.Task;
            }

            if (found(this) is { } value)
            {
                return value;
            }

            try
            {
                await next.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"the receiver did not get {what} within {timeout}; spans: {string.Join(", ", Spans.Select(s => s.Name))}; "
                    + $"metrics: {string.Join(", ", Points.Select(p => p.Metric).Distinct())}");
            }
        }
    }

    private async Task ReceiveAsync(HttpContext context, Action<ReadOnlyMemory<byte>> add)
    {
        Stream body = context.Request.Body;
        if (context.Request.Headers.ContentEncoding == "gzip")
        {
            body = new GZipStream(body, CompressionMode.Decompress);
        }

        using var buffer = new MemoryStream();
        await body.CopyToAsync(buffer);
        if (context.Request.ContentType != "application/x-protobuf")
        {
            context.Response.StatusCode = StatusCodes.Status415UnsupportedMediaType;
            return;
        }

        Arrived(buffer.ToArray(), add);
        context.Response.ContentType = "application/x-protobuf";
        context.Response.StatusCode = StatusCodes.Status200OK; // an empty Export*ServiceResponse: everything accepted
    }

    /// <summary>One gRPC message: a flag byte (1: compressed with the <c>grpc-encoding</c>), a 4-byte big-endian length, the protobuf.</summary>
    private async Task ReceiveGrpcAsync(HttpContext context, Action<ReadOnlyMemory<byte>> add)
    {
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer);
        var frame = buffer.ToArray();
        var message = frame.AsMemory(5, (int)BinaryPrimitives.ReadUInt32BigEndian(frame.AsSpan(1)));
        if (frame[0] == 1)
        {
            using var inflated = new MemoryStream();
            await new GZipStream(new MemoryStream(message.ToArray()), CompressionMode.Decompress).CopyToAsync(inflated);
            message = inflated.ToArray();
        }

        Arrived(message, add);
        context.Response.ContentType = "application/grpc";
        await context.Response.Body.WriteAsync(new byte[5]); // an empty response message
        context.Response.AppendTrailer("grpc-status", "0");
    }

    private void Arrived(ReadOnlyMemory<byte> request, Action<ReadOnlyMemory<byte>> add)
    {
        add(request);
        lock (_gate)
        {
            Requests++;
            var arrived = _arrived;
            _arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);
            arrived.SetResult();
        }
    }

    // ExportTraceServiceRequest: 1 ResourceSpans { 1 Resource { 1 KeyValue }, 2 ScopeSpans { 1 InstrumentationScope { 1 name }, 2 Span } }
    private void AddTraces(ReadOnlyMemory<byte> request)
    {
        var spans = new List<OtlpSpan>();
        foreach (var resourceSpans in Protobuf.Messages(request, 1))
        {
            var resource = Protobuf.Messages(resourceSpans, 1).Select(r => Protobuf.Attributes(r, 1)).FirstOrDefault() ?? [];
            foreach (var scopeSpans in Protobuf.Messages(resourceSpans, 2))
            {
                var scope = Protobuf.Messages(scopeSpans, 1).Select(s => Protobuf.String(s, 1)).FirstOrDefault() ?? "";
                spans.AddRange(Protobuf.Messages(scopeSpans, 2).Select(span => OtlpSpan.Decode(span, scope, resource)));
            }
        }

        lock (_gate)
        {
            _spans.AddRange(spans);
        }
    }

    // ExportMetricsServiceRequest: 1 ResourceMetrics { 1 Resource, 2 ScopeMetrics { 1 scope, 2 Metric { 1 name, 3 unit, 9 Histogram { 1 HistogramDataPoint } } } }
    private void AddMetrics(ReadOnlyMemory<byte> request)
    {
        var points = new List<OtlpPoint>();
        foreach (var resourceMetrics in Protobuf.Messages(request, 1))
        {
            foreach (var scopeMetrics in Protobuf.Messages(resourceMetrics, 2))
            {
                var scope = Protobuf.Messages(scopeMetrics, 1).Select(s => Protobuf.String(s, 1)).FirstOrDefault() ?? "";
                foreach (var metric in Protobuf.Messages(scopeMetrics, 2))
                {
                    var name = Protobuf.String(metric, 1) ?? "";
                    var unit = Protobuf.String(metric, 3) ?? "";
                    foreach (var histogram in Protobuf.Messages(metric, 9))
                    {
                        // HistogramDataPoint: 9 attributes, 4 count (fixed64), 5 sum (double)
                        points.AddRange(Protobuf.Messages(histogram, 1).Select(point => new OtlpPoint(
                            scope, name, unit, Protobuf.Attributes(point, 9), Protobuf.Fixed64(point, 4) ?? 0, BitConverter.UInt64BitsToDouble(Protobuf.Fixed64(point, 5) ?? 0))));
                    }
                }
            }
        }

        lock (_gate)
        {
            _points.AddRange(points);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>A span as it arrived. Ids are hex; <see cref="ParentSpanId"/> is null for a root span.</summary>
public sealed record OtlpSpan(
    string Scope, string TraceId, string SpanId, string? ParentSpanId, string Name, int Kind,
    Dictionary<string, object?> Attributes, int StatusCode, string? StatusMessage, Dictionary<string, object?> Resource)
{
    public const int KindInternal = 1, KindClient = 3, StatusError = 2;

    public object? this[string key] => Attributes.GetValueOrDefault(key);

    // Span: 1 trace_id, 2 span_id, 4 parent_span_id, 5 name, 6 kind, 9 attributes, 15 Status { 2 message, 3 code }
    internal static OtlpSpan Decode(ReadOnlyMemory<byte> span, string scope, Dictionary<string, object?> resource)
    {
        var status = Protobuf.Messages(span, 15).FirstOrDefault();
        var parent = Protobuf.Bytes(span, 4);
        return new OtlpSpan(
            scope, Convert.ToHexString(Protobuf.Bytes(span, 1) ?? []), Convert.ToHexString(Protobuf.Bytes(span, 2) ?? []),
            parent is { Length: > 0 } ? Convert.ToHexString(parent) : null, Protobuf.String(span, 5) ?? "", (int)(Protobuf.Varint(span, 6) ?? 0),
            Protobuf.Attributes(span, 9), status.IsEmpty ? 0 : (int)(Protobuf.Varint(status, 3) ?? 0), status.IsEmpty ? null : Protobuf.String(status, 2), resource);
    }
}

/// <summary>One histogram data point as it arrived (cumulative: a later export repeats it with what came since).</summary>
public sealed record OtlpPoint(string Scope, string Metric, string Unit, Dictionary<string, object?> Attributes, ulong Count, double Sum)
{
    public object? this[string key] => Attributes.GetValueOrDefault(key);
}

/// <summary>
/// Just enough of the protobuf wire format to read OTLP: a message is a run of (field number, wire type) tags, each
/// followed by a varint (0), 8 bytes (1), a length and that many bytes (2), or 4 bytes (5).
/// </summary>
internal static class Protobuf
{
    private static IEnumerable<(int Field, int Wire, ulong Number, ReadOnlyMemory<byte> Bytes)> Fields(ReadOnlyMemory<byte> message)
    {
        var at = 0;
        while (at < message.Length)
        {
            var tag = ReadVarint(message.Span, ref at);
            var (field, wire) = ((int)(tag >> 3), (int)(tag & 7));
            switch (wire)
            {
                case 0:
                    yield return (field, wire, ReadVarint(message.Span, ref at), default);
                    break;
                case 1:
                    yield return (field, wire, BinaryPrimitives.ReadUInt64LittleEndian(message.Span[at..]), default);
                    at += 8;
                    break;
                case 2:
                    var length = (int)ReadVarint(message.Span, ref at);
                    yield return (field, wire, 0, message.Slice(at, length));
                    at += length;
                    break;
                case 5:
                    yield return (field, wire, BinaryPrimitives.ReadUInt32LittleEndian(message.Span[at..]), default);
                    at += 4;
                    break;
                default:
                    throw new FormatException($"wire type {wire} (field {field}) is not one OTLP uses");
            }
        }
    }

    private static ulong ReadVarint(ReadOnlySpan<byte> bytes, ref int at)
    {
        ulong value = 0;
        for (var shift = 0; ; shift += 7)
        {
            var b = bytes[at++];
            value |= (ulong)(b & 0x7f) << shift;
            if (b < 0x80)
            {
                return value;
            }
        }
    }

    public static IEnumerable<ReadOnlyMemory<byte>> Messages(ReadOnlyMemory<byte> message, int field) =>
        Fields(message).Where(f => f.Field == field && f.Wire == 2).Select(f => f.Bytes).ToList();

    public static byte[]? Bytes(ReadOnlyMemory<byte> message, int field) =>
        Fields(message).Where(f => f.Field == field && f.Wire == 2).Select(f => f.Bytes.ToArray()).LastOrDefault();

    public static string? String(ReadOnlyMemory<byte> message, int field) =>
        Bytes(message, field) is { } bytes ? System.Text.Encoding.UTF8.GetString(bytes) : null;

    public static ulong? Varint(ReadOnlyMemory<byte> message, int field) =>
        Fields(message).Where(f => f.Field == field && f.Wire == 0).Select(f => (ulong?)f.Number).LastOrDefault();

    public static ulong? Fixed64(ReadOnlyMemory<byte> message, int field) =>
        Fields(message).Where(f => f.Field == field && f.Wire == 1).Select(f => (ulong?)f.Number).LastOrDefault();

    /// <summary>KeyValue { 1 key, 2 AnyValue { 1 string, 2 bool, 3 int, 4 double, 7 bytes } }.</summary>
    public static Dictionary<string, object?> Attributes(ReadOnlyMemory<byte> message, int field)
    {
        var attributes = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var keyValue in Messages(message, field))
        {
            var value = Messages(keyValue, 2).FirstOrDefault();
            attributes[String(keyValue, 1) ?? ""] = Fields(value).Select(f => f switch
            {
                (1, 2, _, var text) => System.Text.Encoding.UTF8.GetString(text.Span),
                (2, 0, var flag, _) => flag != 0,
                (3, 0, var number, _) => (long)number,
                (4, 1, var bits, _) => BitConverter.UInt64BitsToDouble(bits),
                (_, _, _, var other) => (object)other.ToArray(),
            }).FirstOrDefault();
        }

        return attributes;
    }
}
