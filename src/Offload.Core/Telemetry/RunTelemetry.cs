using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Offload.Protocol;
using Offload.Store;

namespace Offload.Telemetry;

/// <summary>
/// One run attempt of a task as OpenTelemetry sees it: the <c>invoke_agent offload</c> span (the root of the attempt's
/// trace; <c>gen_ai.conversation.id</c> is the task id, so a task's attempts are found together), the
/// <c>execute_tool</c> spans of its tool calls, and at its end the usage the journal recorded and the metrics.
/// The engines reach it through <see cref="Engines.EngineRun.Telemetry"/>; it is null when nothing is exported.
/// </summary>
public sealed class RunTelemetry : IDisposable
{
    private readonly OffloadTelemetry _owner;
    private readonly TaskInfo _task;
    private readonly string _engine;
    private readonly int _attempt;
    private readonly long _startSeq;
    private readonly string _provider;
    private readonly string _model;
    private readonly long _started = Stopwatch.GetTimestamp();
    private readonly Activity? _span;
    private readonly ConcurrentDictionary<string, Activity> _open = new(StringComparer.Ordinal); // tool spans reported after the fact (claude)
    private int _ended;

    internal RunTelemetry(OffloadTelemetry owner, TaskInfo task, string engine, int attempt, long startSeq)
    {
        (_owner, _task, _engine, _attempt, _startSeq) = (owner, task, engine, attempt, startSeq);
        var colon = task.Model.IndexOf(':', StringComparison.Ordinal);
        (_provider, _model) = colon > 0 ? (task.Model[..colon], task.Model[(colon + 1)..]) : ("anthropic", task.Model); // claude's "default"
        Activity.Current = null; // each attempt is a trace of its own, whatever started the runner
        _span = OffloadTelemetry.Source.StartActivity($"{GenAi.InvokeAgent} offload", ActivityKind.Internal);
        if (_span is null)
        {
            return;
        }

        _span.SetTag(GenAi.OperationName, GenAi.InvokeAgent);
        _span.SetTag(GenAi.AgentName, "offload");
        _span.SetTag(GenAi.ProviderName, _provider);
        _span.SetTag(GenAi.RequestModel, _model);
        _span.SetTag(GenAi.ConversationId, ConversationId);
        _span.SetTag(GenAi.TaskId, task.Id);
        _span.SetTag(GenAi.Attempt, attempt);
        _span.SetTag(GenAi.Engine, engine);
        if (owner.Content)
        {
            _span.SetTag(GenAi.InputMessages, Messages("user", task.Prompt, finishReason: null));
        }
    }

    private string ConversationId => _task.Id.ToString(CultureInfo.InvariantCulture);

    /// <summary>Starts the span of a tool call that runs now, under the span current here (the attempt's, or a subagent's Agent call).</summary>
    public Activity? StartTool(ToolCalled call, string? subagent = null)
    {
        var span = OffloadTelemetry.Source.StartActivity($"{GenAi.ExecuteTool} {call.Name}", ActivityKind.Internal);
        if (span is not null)
        {
            Describe(span, call, subagent);
        }

        return span;
    }

    /// <summary>Ends a tool call's span with its stored result (secrets already redacted): an error result is an error span.</summary>
    public void EndTool(Activity? span, ToolResulted result)
    {
        if (span is null)
        {
            return;
        }

        if (result.IsError)
        {
            span.SetStatus(ActivityStatusCode.Error, result.ExitCode is { } code ? $"the tool failed (exit code {code})" : "the tool failed");
            span.SetTag(GenAi.ErrorType, "tool_error");
        }

        if (_owner.Content)
        {
            span.SetTag(GenAi.ToolResult, result.Output);
        }

        span.Dispose();
    }

    /// <summary>
    /// For engines whose tools run elsewhere (Claude Code): a stored <see cref="ToolCalled"/> opens its call's span under
    /// the attempt's, the stored <see cref="ToolResulted"/> with the same call id closes it.
    /// </summary>
    public void Observe(AgentEvent stored)
    {
        switch (stored)
        {
            case ToolCalled call when _span is not null:
                var current = Activity.Current;
                var span = OffloadTelemetry.Source.StartActivity($"{GenAi.ExecuteTool} {call.Name}", ActivityKind.Internal, _span.Context);
                Activity.Current = current; // the engine's own flow stays under the attempt
                if (span is not null)
                {
                    Describe(span, call, stored.Subagent);
                    _open[call.CallId] = span;
                }

                break;
            case ToolResulted result when _open.TryRemove(result.CallId, out var open):
                var before = Activity.Current;
                EndTool(open, result);
                Activity.Current = before;
                break;
        }
    }

    private void Describe(Activity span, ToolCalled call, string? subagent)
    {
        span.SetTag(GenAi.OperationName, GenAi.ExecuteTool);
        span.SetTag(GenAi.ToolName, call.Name);
        span.SetTag(GenAi.ToolCallId, call.CallId);
        span.SetTag(GenAi.ToolType, "function");
        span.SetTag(GenAi.ConversationId, ConversationId);
        if (subagent is not null)
        {
            span.SetTag(GenAi.Subagent, subagent);
        }

        if (_owner.Content)
        {
            span.SetTag(GenAi.ToolArguments, call.Input.GetRawText());
        }
    }

    /// <summary>
    /// Ends the attempt: its usage (every <see cref="UsageRecorded"/> of the attempt, subagents' included) and how it
    /// ended (<see cref="TaskFinished"/>; none: <c>suspended</c>, to be resumed) go on the span and into the metrics.
    /// </summary>
    public async Task EndAsync(ITaskStore store, CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _ended, 1) == 1)
        {
            return;
        }

        List<AgentEvent> events;
        try
        {
            events = (await store.ReadEventsAsync(_task.Id, _startSeq - 1, int.MaxValue, cancellationToken)).Where(e => e.Attempt == _attempt).ToList();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            events = []; // the task's end is already stored: a journal that cannot be read now costs the span its usage, never the task its status
        }

        var usage = events.OfType<UsageRecorded>().ToList();
        var finished = events.OfType<TaskFinished>().LastOrDefault();
        var status = finished?.Status.ToWire() ?? "suspended";
        long input = usage.Sum(u => u.InputTokens + u.CacheReadTokens + u.CacheWriteTokens), output = usage.Sum(u => u.OutputTokens);
        var cost = usage.Sum(u => u.CostUsd);
        CloseOpenTools();
        if (_span is not null)
        {
            _span.SetTag(GenAi.InputTokens, input);
            _span.SetTag(GenAi.OutputTokens, output);
            _span.SetTag(GenAi.CacheReadTokens, usage.Sum(u => u.CacheReadTokens));
            _span.SetTag(GenAi.CacheCreationTokens, usage.Sum(u => u.CacheWriteTokens));
            _span.SetTag(GenAi.TaskCost, (double)cost);
            _span.SetTag(GenAi.TaskStatus, status);
            if (finished?.Status is OffloadTaskStatus.Failed or OffloadTaskStatus.Limited)
            {
                _span.SetStatus(ActivityStatusCode.Error, finished.Reason);
                _span.SetTag(GenAi.ErrorType, status);
            }

            if (_owner.Content && finished?.Summary is { } summary)
            {
                _span.SetTag(GenAi.OutputMessages, Messages("assistant", summary, finishReason: "stop"));
            }

            _span.Dispose();
        }

        var tags = new TagList
        {
            { GenAi.OperationName, GenAi.InvokeAgent },
            { GenAi.ProviderName, _provider },
            { GenAi.RequestModel, _model },
            { GenAi.Engine, _engine },
            { GenAi.TaskStatus, status },
        };
        if (usage.Count > 0)
        {
            var inputTags = tags;
            inputTags.Add(GenAi.TokenType, "input");
            OffloadTelemetry.TokenUsage.Record(input, inputTags);
            var outputTags = tags;
            outputTags.Add(GenAi.TokenType, "output");
            OffloadTelemetry.TokenUsage.Record(output, outputTags);
        }

        OffloadTelemetry.TaskCost.Record((double)cost, tags);
        OffloadTelemetry.TaskDuration.Record(Stopwatch.GetElapsedTime(_started).TotalSeconds, tags);
    }

    private void CloseOpenTools()
    {
        foreach (var callId in _open.Keys)
        {
            if (_open.TryRemove(callId, out var span))
            {
                span.SetStatus(ActivityStatusCode.Error, "the run ended before the tool's result");
                span.Dispose();
            }
        }
    }

    /// <summary>Ends the spans without usage when the attempt ended another way (<see cref="EndAsync"/> was not reached).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _ended, 1) == 0)
        {
            CloseOpenTools();
            _span?.Dispose();
        }
    }

    /// <summary>One message in the semantic conventions' JSON shape: <c>[{"role":…,"parts":[{"type":"text","content":…}]}]</c>.</summary>
    private static string Messages(string role, string text, string? finishReason)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartArray();
            json.WriteStartObject();
            json.WriteString("role", role);
            json.WriteStartArray("parts");
            json.WriteStartObject();
            json.WriteString("type", "text");
            json.WriteString("content", text);
            json.WriteEndObject();
            json.WriteEndArray();
            if (finishReason is not null)
            {
                json.WriteString("finish_reason", finishReason);
            }

            json.WriteEndObject();
            json.WriteEndArray();
        }

        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }
}
