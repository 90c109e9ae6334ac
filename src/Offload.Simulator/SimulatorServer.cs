using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Offload.Simulator;

/// <summary>
/// A scripted model server on loopback HTTP that speaks the Anthropic Messages API, the OpenAI Chat
/// Completions API and the OpenAI Responses API, playing back <see cref="Scenario"/>s with injected faults. It is stateless per
/// conversation (the turn is the number of assistant messages already sent), so retries, resumes and
/// concurrent conversations all work; only fault progress is remembered.
/// </summary>
public sealed class SimulatorServer : IAsyncDisposable
{
    private readonly SimulatorOptions _options;
    private readonly WebApplication _app;
    private readonly List<RecordedRequest> _requests = [];
    private readonly Lock _requestsLock = new();
    private readonly ConcurrentDictionary<string, Scenario> _fileScenarios = new(StringComparer.Ordinal);
    private readonly FaultBook _faults = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<(Func<RecordedRequest, bool> Predicate, TaskCompletionSource<RecordedRequest> Done)> _waiters = [];
    private readonly List<RequestHold> _holds = [];

    /// <summary>In a turn's text and tool inputs, replaced by the turn index: one repeated turn makes calls that differ.</summary>
    public const string TurnPlaceholder = "{{turn}}";

    private readonly PromptCache _promptCache;

    private SimulatorServer(SimulatorOptions options, WebApplication app)
    {
        _options = options;
        _promptCache = new PromptCache(options.TimeProvider);
        _app = app;
        app.Run(HandleAsync);
    }

    public Uri BaseUrl { get; private set; } = null!;

    /// <summary>A snapshot of the requests received so far, in arrival order.</summary>
    public IReadOnlyList<RecordedRequest> Requests
    {
        get
        {
            lock (_requestsLock)
            {
                return _requests.ToArray();
            }
        }
    }

    /// <summary>
    /// Completes with the first recorded request (already received or still to come) that matches
    /// <paramref name="predicate"/>, so a test can wait for "the agent asked for turn 3" without polling.
    /// </summary>
    public Task<RecordedRequest> WaitForRequestAsync(Func<RecordedRequest, bool> predicate, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        var done = new TaskCompletionSource<RecordedRequest>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_requestsLock)
        {
            var seen = _requests.FirstOrDefault(predicate);
            if (seen is not null)
            {
                return Task.FromResult(seen);
            }

            _waiters.Add((predicate, done));
        }

        if (cancellationToken.CanBeCanceled)
        {
            var registration = cancellationToken.Register(() =>
            {
                lock (_requestsLock)
                {
                    _waiters.RemoveAll(w => w.Done == done);
                }

                done.TrySetCanceled(cancellationToken);
            });
            _ = done.Task.ContinueWith(_ => registration.Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        return done.Task;
    }

    /// <summary>
    /// Keeps the next <paramref name="count"/> model requests that match <paramref name="predicate"/> waiting, unanswered,
    /// until <see cref="RequestHold.Release"/> (or the client leaves): a test can act while the agent is inside a model call,
    /// e.g. kill the daemon during a compaction. The request is recorded before it is held.
    /// </summary>
    public RequestHold Hold(Func<RecordedRequest, bool> predicate, int count = 1)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        var hold = new RequestHold(predicate, count);
        lock (_requestsLock)
        {
            _holds.Add(hold);
        }

        return hold;
    }

    private RequestHold? TakeHold(RecordedRequest request)
    {
        lock (_requestsLock)
        {
            return _holds.FirstOrDefault(h => h.TryTake(request));
        }
    }

    public static async Task<SimulatorServer> StartAsync(SimulatorOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ApplicationName = typeof(SimulatorServer).Assembly.GetName().Name,
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<IHostLifetime, EmbeddedLifetime>();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, options.Port);
            kestrel.Limits.MaxRequestBodySize = null;
            kestrel.AddServerHeader = false;
        });

        var server = new SimulatorServer(options, builder.Build());
        await server._app.StartAsync(cancellationToken).ConfigureAwait(false);
        var address = server._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.BaseUrl = new Uri(address.TrimEnd('/') + "/");
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }

    private async Task HandleAsync(HttpContext context)
    {
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token);
        var cancellationToken = cancellation.Token;
        var request = context.Request;
        var path = request.Path.Value ?? "/";
        var isPost = HttpMethods.IsPost(request.Method);
        try
        {
            if (path == "/" && (HttpMethods.IsHead(request.Method) || HttpMethods.IsGet(request.Method)))
            {
                Record(context, "other", null, [], -1, stream: false);
                context.Response.ContentType = "text/plain";
                if (HttpMethods.IsGet(request.Method))
                {
                    await context.Response.WriteAsync("Offload simulator\n", cancellationToken).ConfigureAwait(false);
                }
            }
            else if (path == "/_sim/requests" && HttpMethods.IsGet(request.Method))
            {
                await WriteRequestsAsync(context, request.Query["bodies"] == "1", cancellationToken).ConfigureAwait(false);
            }
            else if (isPost && path == "/v1/messages")
            {
                await ServeModelAsync(context, AnthropicApi.Instance, cancellationToken).ConfigureAwait(false);
            }
            else if (isPost && path == "/v1/messages/count_tokens")
            {
                var body = await ReadBodyAsync(request, cancellationToken).ConfigureAwait(false);
                Record(context, "anthropic", ModelOf(body), body, -1, stream: false);
                await WriteJsonAsync(context, 200, $$"""{"input_tokens":{{EstimateTokens(body.Length)}}}""", cancellationToken).ConfigureAwait(false);
            }
            else if (isPost && path is "/v1/chat/completions" or "/chat/completions")
            {
                await ServeModelAsync(context, OpenAIApi.Instance, cancellationToken).ConfigureAwait(false);
            }
            else if (isPost && path is "/v1/responses" or "/responses")
            {
                await ServeModelAsync(context, ResponsesApi.Instance, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                var body = await ReadBodyAsync(request, cancellationToken).ConfigureAwait(false);
                Record(context, "other", null, body, -1, stream: false);
                await WriteJsonAsync(
                    context,
                    404,
                    AnthropicApi.Instance.ErrorBody(404, $"The simulator has no endpoint {request.Method} {path}."),
                    cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The client went away or the server is stopping: there is nobody left to answer.
        }
    }

    private async Task ServeModelAsync(HttpContext context, ModelApi api, CancellationToken cancellationToken)
    {
        var body = await ReadBodyAsync(context.Request, cancellationToken).ConfigureAwait(false);
        ConversationView conversation;
        try
        {
            using var document = JsonDocument.Parse(body);
            conversation = api.Read(document.RootElement);
        }
        catch (Exception e) when (e is JsonException or FormatException)
        {
            Record(context, api.Name, null, body, -1, stream: false);
            await WriteJsonAsync(context, 400, api.ErrorBody(400, $"Invalid request body: {e.Message}"), cancellationToken).ConfigureAwait(false);
            return;
        }

        // A summary written earlier carries the turns it covers and the conversation it came from (SummaryMark), so
        // the turn index and the fault book go on across a compaction without any state kept here.
        var mark = SummaryMark.Find(conversation.FirstUserText);
        var conversationId = mark?.Conversation ?? Hash(conversation.FirstUserText);
        var turnIndex = conversation.AssistantMessages + (mark?.Turns ?? 0);
        var tokens = EstimateTokens(body.Length);
        var summaryRequest = conversation.LastUserText.Contains(Scenario.SummaryRequestMarker, StringComparison.Ordinal);
        var recorded = Record(context, api.Name, conversation.Model, body, turnIndex, conversation.Stream, tokens, summaryRequest);
        if (TakeHold(recorded) is { } hold)
        {
            await hold.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        Scenario scenario;
        try
        {
            scenario = SelectScenario(conversation.Model).For(conversation.FirstUserText);
        }
        catch (Exception e) when (e is KeyNotFoundException or FormatException or IOException or UnauthorizedAccessException)
        {
            var status = e is KeyNotFoundException ? 404 : 400;
            await WriteJsonAsync(context, status, api.ErrorBody(status, e.Message), cancellationToken).ConfigureAwait(false);
            return;
        }

        if ((conversation.Thinks || conversation.SendsThinking) && api == AnthropicApi.Instance && CheckThinking(body, scenario) is { } refused)
        {
            await WriteJsonAsync(context, 400, api.ErrorBody(400, refused), cancellationToken).ConfigureAwait(false);
            return;
        }

        if (scenario.ContextWindow is { } window && tokens > window)
        {
            await WriteJsonAsync(context, 400, api.ContextOverflowBody(tokens, window), cancellationToken).ConfigureAwait(false);
            return;
        }

        var slot = $"summary@{turnIndex}";
        var turn = summaryRequest
            ? scenario.Summary ?? new ScenarioTurn { Text = $"Summary of the {turnIndex} turns so far (written by the Simulator)." }
            : scenario.Select(turnIndex, conversation.LastUserText, out slot);

        var fault = turn is { Faults.Count: > 0 } ? _faults.Next($"{scenario.Name}\n{conversationId}\n{slot}", turn.Faults) : null;
        if (turn is { DelayMs: > 0 })
        {
            await Task.Delay(TimeSpan.FromMilliseconds(turn.DelayMs), _options.TimeProvider, cancellationToken).ConfigureAwait(false);
        }

        if (fault is not null && (fault.Kind == FaultKind.Status || !conversation.Stream))
        {
            var status = fault.Kind == FaultKind.Status ? fault.Status : 500;
            if (fault.RetryAfter is not null)
            {
                context.Response.Headers.RetryAfter = fault.RetryAfter;
            }

            var message = fault.Message ?? $"Simulated {(fault.Kind == FaultKind.Status ? $"HTTP {status}" : fault.Kind.ToString().ToLowerInvariant())} fault from scenario '{scenario.Name}', turn {turnIndex}.";
            await WriteJsonAsync(context, status, api.ErrorBody(status, message), cancellationToken).ConfigureAwait(false);
            return;
        }

        var number = turnIndex.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var text = (turn?.Text ?? scenario.FinalText).Replace(TurnPlaceholder, number, StringComparison.Ordinal);
        if (summaryRequest)
        {
            text += "\n\n" + new SummaryMark(turnIndex, conversationId);
        }

        var toolCalls = summaryRequest ? [] : (turn?.ToolCalls ?? []).Select(c => Expand(c, number)).ToArray();
        var thinking = conversation.Thinks ? SimulatedThinking.BlocksOf(turn, turnIndex) : [];
        var outputChars = text.Length + thinking.Sum(b => b.Value.Length) + toolCalls.Sum(c => c.Name.Length + ModelApi.InputJson(c.Input).Length);
        var (cacheRead, cacheWrite) = turn is { CacheReadTokens: > 0 } or { CacheWriteTokens: > 0 }
            ? (turn.CacheReadTokens, turn.CacheWriteTokens) // scripted counts override the accounting
            : api == AnthropicApi.Instance ? _promptCache.Account(conversation.Model ?? scenario.Name, body, tokens) : (0, 0);
        var reply = new Reply(
            api.MessageIdPrefix + Guid.NewGuid().ToString("N")[..24],
            conversation.Model ?? scenario.Name,
            turnIndex,
            text,
            toolCalls,
            tokens,
            EstimateTokens(outputChars),
            cacheRead,
            cacheWrite,
            thinking,
            turn?.CutOff ?? false);

        if (!conversation.Stream)
        {
            await WriteJsonAsync(context, 200, api.Message(reply), cancellationToken).ConfigureAwait(false);
            return;
        }

        await WriteStreamAsync(context, api, api.StreamEvents(reply, conversation), fault, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
    }

    private static async Task WriteStreamAsync(
        HttpContext context,
        ModelApi api,
        IReadOnlyList<SseEvent> events,
        ScenarioFault? fault,
        TimeProvider timeProvider,
        CancellationToken cancellationToken)
    {
        var response = context.Response;
        response.StatusCode = 200;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";

        async Task SendAsync(IEnumerable<SseEvent> batch)
        {
            foreach (var e in batch)
            {
                await response.WriteAsync(Frame(e), cancellationToken).ConfigureAwait(false);
            }

            await response.Body.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        switch (fault?.Kind)
        {
            case FaultKind.Drop:
                // A Content-Length longer than what is sent makes Kestrel close the connection once the sent
                // events are on the wire; HttpContext.Abort() alone could discard them before they leave.
                response.ContentLength = events.Sum(e => Encoding.UTF8.GetByteCount(Frame(e))) + 1;
                await SendAsync(events.Take(fault.AfterEvents)).ConfigureAwait(false);
                break;
            case FaultKind.ErrorEvent:
                await SendAsync([events[0], api.ErrorEvent(fault.Message ?? "Overloaded")]).ConfigureAwait(false);
                break;
            case FaultKind.Stall:
                await SendAsync(events.Take(Math.Min(2, events.Count - 1))).ConfigureAwait(false);
                await Task.Delay(TimeSpan.FromMilliseconds(fault.Ms), timeProvider, cancellationToken).ConfigureAwait(false);
                break;
            case FaultKind.Malformed:
                await SendAsync([events[0], api.MalformedEvent()]).ConfigureAwait(false);
                break;
            default:
                await SendAsync(events).ConfigureAwait(false);
                break;
        }
    }

    private static string? CheckThinking(byte[] body, Scenario scenario)
    {
        using var document = JsonDocument.Parse(body);
        return SimulatedThinking.Check(document.RootElement, scenario);
    }

    private static string Frame(SseEvent e) => e.Name is null ? $"data: {e.Data}\n\n" : $"event: {e.Name}\ndata: {e.Data}\n\n";

    private Scenario SelectScenario(string? model)
    {
        if (_options.DefaultScenario is { } fixedScenario)
        {
            return fixedScenario;
        }

        var name = model ?? "";
        if (name.StartsWith("sim:", StringComparison.Ordinal))
        {
            name = name["sim:".Length..];
        }

        if (_options.Scenarios?.TryGetValue(name, out var registered) == true)
        {
            return registered;
        }

        if (Scenario.BuiltinNames.Contains(name, StringComparer.Ordinal))
        {
            return _fileScenarios.GetOrAdd("builtin:" + name, static (_, n) => Scenario.Builtin(n), name);
        }

        if (Scenario.IsFileName(name) && File.Exists(name))
        {
            var fullPath = Path.GetFullPath(name);
            return _fileScenarios.GetOrAdd(fullPath, static p => Scenario.Load(p));
        }

        var known = Scenario.BuiltinNames.Concat(_options.Scenarios?.Keys ?? []).Distinct().Order(StringComparer.Ordinal);
        throw new KeyNotFoundException(
            $"Unknown scenario '{model}': the model name must be a builtin scenario ({string.Join(", ", known)}) " +
            "or the path of an existing scenario .json file.");
    }

    private RecordedRequest Record(HttpContext context, string api, string? model, byte[] body, int turnIndex, bool stream, int inputTokens = 0, bool summary = false)
    {
        var request = context.Request;
        var recorded = new RecordedRequest(
            request.Method,
            request.Path.Value ?? "/",
            api,
            model,
            body.Length,
            Encoding.UTF8.GetString(body),
            turnIndex,
            _options.TimeProvider.GetUtcNow())
        {
            Query = request.QueryString.Value ?? "",
            Stream = stream,
            ApiKey = request.Headers["x-api-key"].FirstOrDefault() ?? BearerOf(request.Headers.Authorization.ToString()),
            InputTokens = inputTokens,
            Summary = summary,
        };
        lock (_requestsLock)
        {
            _requests.Add(recorded);
            var expired = _requests.Count - 1 - Math.Max(0, _options.MaxRecordedBodies);
            if (expired >= 0 && _requests[expired].Body.Length > 0)
            {
                _requests[expired] = _requests[expired] with { Body = "" };
            }

            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Predicate(recorded))
                {
                    _waiters[i].Done.TrySetResult(recorded);
                    _waiters.RemoveAt(i);
                }
            }
        }

        return recorded;
    }

    private async Task WriteRequestsAsync(HttpContext context, bool withBodies, CancellationToken cancellationToken)
    {
        var items = new JsonArray();
        foreach (var r in Requests)
        {
            var item = new JsonObject
            {
                ["method"] = r.Method,
                ["path"] = r.Path,
                ["query"] = r.Query,
                ["api"] = r.Api,
                ["model"] = r.Model,
                ["stream"] = r.Stream,
                ["bodyBytes"] = r.BodyBytes,
                ["turnIndex"] = r.TurnIndex,
                ["inputTokens"] = r.InputTokens,
                ["summary"] = r.Summary,
                ["at"] = r.At,
            };
            if (withBodies)
            {
                item["body"] = r.Body;
            }

            items.Add((JsonNode)item);
        }

        await WriteJsonAsync(context, 200, new JsonObject { ["items"] = items }.ToJsonString(), cancellationToken).ConfigureAwait(false);
    }

    private static async Task WriteJsonAsync(HttpContext context, int status, string json, CancellationToken cancellationToken)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(json, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<byte[]> ReadBodyAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        // Sized from Content-Length when there is one: growing the buffer cost a few percent of the Simulator's CPU.
        using var buffer = new MemoryStream(request.ContentLength is > 0 and < 64 * 1024 * 1024 and var length ? (int)length : 0);
        await request.Body.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
        return buffer.Length == buffer.Capacity ? buffer.GetBuffer() : buffer.ToArray();
    }

    private static string? ModelOf(byte[] body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            return document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("model", out var model)
                && model.ValueKind == JsonValueKind.String
                ? model.GetString()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>The Simulator's token count: characters / 4, at least 1 (the whole request, and each cached prefix).</summary>
    internal static int EstimateTokens(int chars) => Math.Max(1, chars / 4);

    private static ScenarioToolCall Expand(ScenarioToolCall call, string turn)
    {
        var raw = call.Input.GetRawText();
        if (!raw.Contains(TurnPlaceholder, StringComparison.Ordinal))
        {
            return call;
        }

        using var expanded = JsonDocument.Parse(raw.Replace(TurnPlaceholder, turn, StringComparison.Ordinal));
        return call with { Input = expanded.RootElement.Clone() };
    }

    private static string? BearerOf(string authorization) =>
        authorization.StartsWith("Bearer ", StringComparison.Ordinal) ? authorization["Bearer ".Length..] : null;

    private static string Hash(string text) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text)), 0, 12);

    /// <summary>Keeps the host from hooking Ctrl+C and SIGTERM: the simulator lives inside tests and the daemon.</summary>
    private sealed class EmbeddedLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
