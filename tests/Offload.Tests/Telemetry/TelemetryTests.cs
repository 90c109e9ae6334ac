using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Offload.Config;
using Offload.Protocol;
using Offload.Tests.Claude;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;
using static Offload.Tests.Resilience.ResilienceKit;
using OffloadTelemetry = Offload.Telemetry.OffloadTelemetry;

namespace Offload.Tests.Telemetry;

/// <summary>
/// OpenTelemetry end to end: the real daemon exports to a real OTLP/HTTP receiver on a loopback port
/// (<see cref="OtlpReceiver"/>, which decodes the protobuf), driven by the Simulator; what arrives is checked against
/// the task's journal.
/// </summary>
public sealed class TelemetryTests : IAsyncLifetime
{
    private const string PromptMarker = "PromptMarker-5521";
    private const string FileMarker = "FileMarker-8830";
    private const string AnswerMarker = "AnswerMarker-1174";
    private static readonly TimeSpan Arrival = TimeSpan.FromSeconds(60);

    private readonly OffloadHarness _h = new();
    private OtlpReceiver _receiver = null!;

    public async Task InitializeAsync()
    {
        _receiver = await OtlpReceiver.StartAsync();
        File.WriteAllText(Path.Combine(_h.Repo, "notes.txt"), $"{FileMarker}\n");
        _h.Git("add", "-A");
        _h.Git("commit", "-q", "-m", "notes");
        _h.Env["OTEL_BSP_SCHEDULE_DELAY"] = "100"; // the SDK's own variables: export soon after a span ends, metrics often
        _h.Env["OTEL_METRIC_EXPORT_INTERVAL"] = "200";
        _h.Env["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = null;
        _h.Env[OffloadTelemetry.EndpointVariable] = null;
        _h.Env["OTEL_EXPORTER_OTLP_PROTOCOL"] = null;
    }

    public async Task DisposeAsync()
    {
        await _h.DisposeAsync();
        await _receiver.DisposeAsync();
    }

    /// <summary>One turn reads a file and a missing one (an error result); the next answers.</summary>
    private string ReadingModel() => _h.Scenario("reads", Scenario(
        new { text = "Reading.", toolCalls = new object[] { new { name = "Read", input = new { file_path = "notes.txt" } }, new { name = "Read", input = new { file_path = "missing.txt" } } } },
        Final($"The notes say {AnswerMarker}.")));

    private async Task<(TaskInfo Task, List<AgentEvent> Events, OtlpSpan Agent, List<OtlpSpan> Trace)> RunReadingTaskAsync()
    {
        var task = await _h.RunTaskAsync(ReadingModel(), $"read the notes {PromptMarker}");
        var done = await _h.WaitAsync(task.Id);
        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        var conversation = task.Id.ToString(CultureInfo.InvariantCulture);
        var (agent, trace) = await _receiver.WaitUntilAsync(r =>
        {
            var agent = r.Spans.FirstOrDefault(s => s.Name == "invoke_agent offload" && Equals(s["gen_ai.conversation.id"], conversation));
            var trace = agent is null ? [] : r.Spans.Where(s => s.TraceId == agent.TraceId && s != agent).ToList();
            return trace.Count(s => s.Name.StartsWith("chat ", StringComparison.Ordinal)) == 2 && trace.Count(s => s.Name.StartsWith("execute_tool ", StringComparison.Ordinal)) == 2
                ? Tuple.Create(agent!, trace) : null;
        }, Arrival, "the task's invoke_agent span with its two chat and two execute_tool spans");
        return (done, await _h.EventsAsync(task.Id), agent, trace);
    }

    [Fact]
    public async Task EndpointVariable_ExportsTheRunsSpansAndMetrics_WithUsageFromTheJournal_AndNoContent()
    {
        _h.Env[OffloadTelemetry.EndpointVariable] = _receiver.BaseUrl.ToString();
        var (task, events, agent, trace) = await RunReadingTaskAsync();
        var model = task.Model["sim:".Length..];

        // invoke_agent: the root of its own trace, as the GenAI conventions name it, usage as the journal recorded it.
        var usage = events.OfType<UsageRecorded>().ToList();
        Assert.Equal(2, usage.Count);
        Assert.Null(agent.ParentSpanId);
        Assert.Equal(OtlpSpan.KindInternal, agent.Kind);
        Assert.Equal("Offload", agent.Scope);
        Assert.Equal("offload", agent.Resource["service.name"]);
        Assert.Equal("invoke_agent", agent["gen_ai.operation.name"]);
        Assert.Equal("offload", agent["gen_ai.agent.name"]);
        Assert.Equal("sim", agent["gen_ai.provider.name"]);
        Assert.Equal(model, agent["gen_ai.request.model"]);
        Assert.Equal(task.Id, agent["offload.task.id"]);
        Assert.Equal("succeeded", agent["offload.task.status"]);
        Assert.Equal(usage.Sum(u => u.InputTokens + u.CacheReadTokens + u.CacheWriteTokens), agent["gen_ai.usage.input_tokens"]);
        Assert.Equal(usage.Sum(u => u.OutputTokens), agent["gen_ai.usage.output_tokens"]);
        Assert.Equal(usage.Sum(u => u.CacheReadTokens), agent["gen_ai.usage.cache_read.input_tokens"]);
        Assert.Equal(usage.Sum(u => u.CacheWriteTokens), agent["gen_ai.usage.cache_creation.input_tokens"]);
        Assert.True((long)agent["gen_ai.usage.input_tokens"]! > 0);
        Assert.Equal(0, agent.StatusCode);

        // chat: one per model call, children of the run's span (Microsoft.Extensions.AI's), with their own usage.
        var chats = trace.Where(s => s.Name == $"chat {model}").ToList();
        Assert.Equal(2, chats.Count);
        Assert.All(chats, c =>
        {
            Assert.Equal(agent.SpanId, c.ParentSpanId);
            Assert.Equal(OtlpSpan.KindClient, c.Kind);
            Assert.Equal("chat", c["gen_ai.operation.name"]);
            Assert.Equal("sim", c["gen_ai.provider.name"]);
            Assert.Equal(model, c["gen_ai.request.model"]);
        });
        Assert.Equal(agent["gen_ai.usage.input_tokens"], chats.Sum(c => (long)c["gen_ai.usage.input_tokens"]!));
        Assert.Equal(agent["gen_ai.usage.output_tokens"], chats.Sum(c => (long)c["gen_ai.usage.output_tokens"]!));

        // execute_tool: one per call, the journal's call ids; the failed Read is an error span.
        var calls = events.OfType<ToolCalled>().ToList();
        var results = events.OfType<ToolResulted>().ToDictionary(r => r.CallId);
        var tools = trace.Where(s => s.Name == "execute_tool Read").ToList();
        Assert.Equal(calls.Select(c => c.CallId).Order(), tools.Select(t => (string)t["gen_ai.tool.call.id"]!).Order());
        Assert.All(tools, t =>
        {
            Assert.Equal(agent.SpanId, t.ParentSpanId);
            Assert.Equal("execute_tool", t["gen_ai.operation.name"]);
            Assert.Equal("Read", t["gen_ai.tool.name"]);
            Assert.Equal(results[(string)t["gen_ai.tool.call.id"]!].IsError ? OtlpSpan.StatusError : 0, t.StatusCode);
        });
        Assert.Single(tools, t => t.StatusCode == OtlpSpan.StatusError);

        // No prompt, message, file content or tool input unless opted in.
        Assert.All(_receiver.Spans, s => Assert.DoesNotContain(s.Attributes.Keys, k => k is "gen_ai.input.messages" or "gen_ai.output.messages"
            or "gen_ai.system_instructions" or "gen_ai.tool.call.arguments" or "gen_ai.tool.call.result"));
        Assert.All(_receiver.Spans.SelectMany(s => s.Attributes.Values.OfType<string>().Append(s.StatusMessage ?? "")),
            v => Assert.DoesNotContain(new[] { PromptMarker, FileMarker, AnswerMarker, "notes.txt" }, marker => v.Contains(marker, StringComparison.Ordinal)));

        // Metrics: tokens by type, cost and duration, by model and status.
        var duration = await _receiver.WaitUntilAsync(r => r.Points.LastOrDefault(p => p.Metric == "offload.task.duration"), Arrival, "offload.task.duration");
        var points = _receiver.Points;
        OtlpPoint Last(string metric, string? tokenType = null) => points.Last(p => p.Metric == metric && (tokenType is null || Equals(p["gen_ai.token.type"], tokenType)));
        Assert.Equal("s", duration.Unit);
        Assert.Equal(1ul, duration.Count);
        Assert.True(duration.Sum > 0);
        var input = Last("gen_ai.client.token.usage", "input");
        var output = Last("gen_ai.client.token.usage", "output");
        var cost = Last("offload.task.cost");
        Assert.Equal("{token}", input.Unit);
        Assert.Equal("USD", cost.Unit);
        Assert.Equal((double)(long)agent["gen_ai.usage.input_tokens"]!, input.Sum);
        Assert.Equal((double)(long)agent["gen_ai.usage.output_tokens"]!, output.Sum);
        Assert.Equal((double)task.Usage.CostUsd, cost.Sum);
        Assert.All(new[] { input, output, cost, duration }, p =>
        {
            Assert.Equal("Offload", p.Scope);
            Assert.Equal(model, p["gen_ai.request.model"]);
            Assert.Equal("sim", p["gen_ai.provider.name"]);
            Assert.Equal("succeeded", p["offload.task.status"]);
            Assert.Equal("builtin", p["offload.engine"]);
        });
    }

    [Fact]
    public async Task ContentOptInInConfig_ExportsPromptMessagesAndToolInputAndOutput_WithSecretsRedacted()
    {
        const string secret = "sk-telemetry-secret-93518";
        _h.Env["OFFLOAD_TEST_API_KEY"] = secret; // a secret of the daemon's environment: redacted from the journal and from telemetry
        _h.WriteConfig(new { telemetry = new { otlp = _receiver.BaseUrl.ToString().TrimEnd('/'), content = true } });
        var model = _h.Scenario("secret", Scenario(
            Tool("Read", new { file_path = "notes.txt" }, "Reading."),
            Final($"Done. {AnswerMarker} and the key {secret}.")));

        var task = await _h.RunTaskAsync(model, $"read the notes {PromptMarker}");
        var done = await _h.WaitAsync(task.Id);
        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        var conversation = task.Id.ToString(CultureInfo.InvariantCulture);
        var spans = await _receiver.WaitUntilAsync(r =>
            r.Spans.Any(s => s.Name == "invoke_agent offload" && Equals(s["gen_ai.conversation.id"], conversation)) && r.Spans.Count(s => s.Name.StartsWith("chat ", StringComparison.Ordinal)) == 2
                ? r.Spans : null, Arrival, "the task's spans");

        var agent = spans.Single(s => s.Name == "invoke_agent offload");
        Assert.Contains(PromptMarker, (string)agent["gen_ai.input.messages"]!);
        Assert.Contains(AnswerMarker, (string)agent["gen_ai.output.messages"]!);
        var tool = spans.Single(s => s.Name == "execute_tool Read");
        Assert.Contains("notes.txt", (string)tool["gen_ai.tool.call.arguments"]!);
        Assert.Contains(FileMarker, (string)tool["gen_ai.tool.call.result"]!);
        var chats = spans.Where(s => s.Name.StartsWith("chat ", StringComparison.Ordinal)).ToList();
        Assert.All(chats, c => Assert.Contains(PromptMarker, (string)c["gen_ai.input.messages"]!));
        Assert.Contains(chats, c => ((string?)c["gen_ai.output.messages"] ?? "").Contains(AnswerMarker, StringComparison.Ordinal));
        Assert.All(spans.SelectMany(s => s.Attributes.Values.OfType<string>()), v => Assert.DoesNotContain(secret, v, StringComparison.Ordinal));
    }

    [Fact]
    public async Task GrpcProtocol_SendsTheSameSpansAndMetricsOverGrpc()
    {
        await using var grpc = await OtlpReceiver.StartAsync(grpc: true);
        _h.Env[OffloadTelemetry.EndpointVariable] = grpc.BaseUrl.ToString();
        _h.Env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc";
        var task = await _h.RunTaskAsync(ReadingModel(), "read the notes");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);

        var agent = await grpc.WaitUntilAsync(r => r.Spans.FirstOrDefault(s => s.Name == "invoke_agent offload"), Arrival, "the run's span over gRPC");
        Assert.Equal(task.Id, agent["offload.task.id"]);
        await grpc.WaitUntilAsync(r => r.Spans.Count(s => s.TraceId == agent.TraceId) == 5 ? r.Spans : null, Arrival, "two chat and two execute_tool spans");
        var duration = await grpc.WaitUntilAsync(r => r.Points.LastOrDefault(p => p.Metric == "offload.task.duration"), Arrival, "offload.task.duration");
        Assert.Equal(1ul, duration.Count);
        Assert.Equal(0, _receiver.Requests);
    }

    [Fact]
    public async Task SubagentCalls_AreChildrenOfTheirAgentCallsSpan_AndTheirUsageCountsInTheRuns()
    {
        _h.Env[OffloadTelemetry.EndpointVariable] = _receiver.BaseUrl.ToString();
        var model = _h.Scenario("sub", new
        {
            name = "sub",
            turns = new[] { Tool("Agent", new { description = "read", prompt = "SUB-T: read the notes" }), Final("The subagent read them.") },
            subagents = new[] { new { whenPromptContains = "SUB-T", turns = new[] { Tool("Read", new { file_path = "notes.txt" }), Final("Read notes.txt.") } } },
        });
        var task = await _h.RunTaskAsync(model, "have a subagent read the notes");
        var done = await _h.WaitAsync(task.Id);
        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");

        var conversation = task.Id.ToString(CultureInfo.InvariantCulture);
        var agent = await _receiver.WaitUntilAsync(r => r.Spans.FirstOrDefault(s => s.Name == "invoke_agent offload" && Equals(s["gen_ai.conversation.id"], conversation)), Arrival, "the run's span");
        var trace = await _receiver.WaitUntilAsync(r => r.Spans.Count(s => s.TraceId == agent.TraceId) == 7 ? r.Spans.Where(s => s.TraceId == agent.TraceId).ToList() : null,
            Arrival, "the run's 2 chat spans, its Agent call, the subagent's 2 chat spans and its Read");
        var events = await _h.EventsAsync(task.Id);
        var call = Assert.Single(events.OfType<ToolCalled>(), c => c.Name == "Agent");

        var agentCall = Assert.Single(trace, s => s.Name == "execute_tool Agent");
        Assert.Equal(agent.SpanId, agentCall.ParentSpanId);
        Assert.Equal(2, trace.Count(s => s.Name.StartsWith("chat ", StringComparison.Ordinal) && s.ParentSpanId == agent.SpanId));
        Assert.Equal(2, trace.Count(s => s.Name.StartsWith("chat ", StringComparison.Ordinal) && s.ParentSpanId == agentCall.SpanId));
        var read = Assert.Single(trace, s => s.Name == "execute_tool Read");
        Assert.Equal(agentCall.SpanId, read.ParentSpanId);
        Assert.Equal(call.CallId, read["offload.subagent"]);
        var usage = events.OfType<UsageRecorded>().ToList();
        Assert.Equal(4, usage.Count);
        Assert.Equal(usage.Sum(u => u.OutputTokens), agent["gen_ai.usage.output_tokens"]);
    }

    [Fact]
    public async Task ClaudeEngineTask_ExportsItsRunWithUsageFromTheResult_AndAToolSpanPerToolCall()
    {
        _h.Env[OffloadTelemetry.EndpointVariable] = _receiver.BaseUrl.ToString();
        ClaudeCode.Configure(_h, permissions: new { allow = new[] { "Bash(cat:*)" } });
        var model = _h.Scenario("claude", Scenario(
            Tool("Bash", new { command = "cat notes.txt" }, "Reading."),
            Final("Read the notes.")));

        var task = await _h.RunClaudeAsync(model, "read the notes");
        var done = await _h.WaitAsync(task.Id);
        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        var conversation = task.Id.ToString(CultureInfo.InvariantCulture);
        var agent = await _receiver.WaitUntilAsync(r => r.Spans.FirstOrDefault(s => s.Name == "invoke_agent offload" && Equals(s["gen_ai.conversation.id"], conversation)), Arrival, "the claude run's span");
        var events = await _h.EventsAsync(task.Id);

        var usage = Assert.Single(events.OfType<UsageRecorded>());
        Assert.Equal("claude", agent["offload.engine"]);
        Assert.Equal("succeeded", agent["offload.task.status"]);
        Assert.Equal(usage.InputTokens + usage.CacheReadTokens + usage.CacheWriteTokens, agent["gen_ai.usage.input_tokens"]);
        Assert.Equal(usage.OutputTokens, agent["gen_ai.usage.output_tokens"]);
        var call = Assert.Single(events.OfType<ToolCalled>());
        var tool = Assert.Single(_receiver.Spans, s => s.TraceId == agent.TraceId && s.Name == "execute_tool Bash");
        Assert.Equal(agent.SpanId, tool.ParentSpanId);
        Assert.Equal(call.CallId, tool["gen_ai.tool.call.id"]);
        Assert.Equal(0, tool.StatusCode);
    }

    [Fact]
    public async Task EndpointThatNeverAnswers_NeitherFailsNorHoldsUpTasks_AndTheDaemonStillStops()
    {
        // A receiver that takes connections and never answers: the exporter's requests hang until its timeout.
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var accepted = silent.AcceptTcpClientAsync();
        _h.Env[OffloadTelemetry.EndpointVariable] = $"http://127.0.0.1:{((IPEndPoint)silent.LocalEndpoint).Port}";

        var first = await _h.RunTaskAsync(ReadingModel(), "read the notes");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(first.Id)).Status);
        using var exporter = await accepted.WaitAsync(Arrival); // the exporter is now stuck on its first request
        var second = await _h.RunTaskAsync(ReadingModel(), "read the notes again");
        var done = await _h.WaitAsync(second.Id);
        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        Assert.Equal(2, (await _h.EventsAsync(second.Id)).OfType<ToolResulted>().Count());

        var stop = await _h.OffloadAsync("daemon", "stop"); // the last flush waits a bounded time, not for the receiver
        Assert.True(stop.ExitCode == 0, stop.ToString());
    }

    [Fact]
    public void Config_RefusesAnOtlpEndpointThatIsNotAUrl_AndWithoutAnEndpointNothingIsMade()
    {
        var path = Path.Combine(_h.Root, "config.json");
        File.WriteAllText(path, """{"telemetry": {"otlp": "localhost:4318"}}""");
        var e = Assert.Throws<ConfigException>(() => OffloadConfig.Load(path));
        Assert.Contains("telemetry.otlp is \"localhost:4318\"", e.Message, StringComparison.Ordinal);
        Assert.Contains("http://localhost:4318", e.Message, StringComparison.Ordinal);

        var redactor = new Redaction.SecretRedactor([]);
        Assert.Null(OffloadTelemetry.Start(new(), _ => null, redactor, out var none));
        Assert.Null(none);
        Assert.Null(OffloadTelemetry.Start(new(), name => name == OffloadTelemetry.EndpointVariable ? "not a url" : null, redactor, out var problem));
        Assert.Contains("OTEL_EXPORTER_OTLP_ENDPOINT is \"not a url\"", problem, StringComparison.Ordinal);
    }
}
