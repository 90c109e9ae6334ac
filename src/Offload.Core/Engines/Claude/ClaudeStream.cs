using System.Globalization;
using System.Text;
using System.Text.Json;
using Offload.Protocol;

namespace Offload.Engines.Claude;

/// <summary>
/// Turns Claude Code's <c>--output-format stream-json</c> lines into journal events: assistant text,
/// tool calls and results, retries, and the closing <c>result</c> line (usage, cost, summary, errors,
/// permission denials). The raw line itself is kept by the engine; this class only interprets it.
/// One assistant API response is one turn (Claude Code prints one line per content block, with the
/// same message id); a subagent's lines (<c>parent_tool_use_id</c> set) add tool events, not turns.
/// </summary>
public sealed class ClaudeStream(int turn, string taskModel)
{
    private readonly Dictionary<string, string> _toolNames = new(StringComparer.Ordinal);
    private string? _messageId;
    private bool _turnOpened;

    public int Turn { get; private set; } = turn;

    /// <summary>The closing <c>result</c> line, once it came.</summary>
    public ClaudeResult? Result { get; private set; }

    public string? SessionId { get; private set; }

    /// <summary>Tool calls Claude Code's own permission prompt denied through Offload (they are in the journal already).</summary>
    public HashSet<string> DeniedThroughOffload { get; } = new(StringComparer.Ordinal);

    public IReadOnlyList<AgentEvent> Map(string line)
    {
        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(line);
            root = document.RootElement.Clone();
        }
        catch (JsonException)
        {
            return [];
        }

        if (root.ValueKind != JsonValueKind.Object)
        {
            return [];
        }

        SessionId = Str(root, "session_id") ?? SessionId;
        return Str(root, "type") switch
        {
            "assistant" => Assistant(root),
            "user" => ToolResults(root),
            "system" when Str(root, "subtype") == "api_retry" => [Retry(root)],
            "result" => Finish(root),
            _ => [],
        };
    }

    private List<AgentEvent> Assistant(JsonElement root)
    {
        var events = new List<AgentEvent>();
        if (!root.TryGetProperty("message", out var message) || !message.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.Array)
        {
            return events;
        }

        var subagent = root.TryGetProperty("parent_tool_use_id", out var parent) && parent.ValueKind == JsonValueKind.String;
        if (!subagent && Str(message, "id") is var id && (id is null || id != _messageId))
        {
            _messageId = id;
            Turn++;
            _turnOpened = false;
        }

        foreach (var block in content.EnumerateArray())
        {
            switch (Str(block, "type"))
            {
                case "text" when !subagent:
                    events.Add(new AssistantMessage(Turn, Str(block, "text") ?? ""));
                    _turnOpened = true;
                    break;
                case "tool_use":
                    if (!subagent && !_turnOpened)
                    {
                        events.Add(new AssistantMessage(Turn, "")); // the turn is counted even when it is only tool calls
                        _turnOpened = true;
                    }

                    var callId = Str(block, "id") ?? $"claude-{Turn}-{events.Count}";
                    var name = Str(block, "name") ?? "?";
                    _toolNames[callId] = name;
                    events.Add(new ToolCalled(Turn, callId, name,
                        block.TryGetProperty("input", out var input) ? input.Clone() : JsonElement.Parse("{}")));
                    break;
            }
        }

        return events;
    }

    private List<AgentEvent> ToolResults(JsonElement root)
    {
        var events = new List<AgentEvent>();
        if (!root.TryGetProperty("message", out var message) || !message.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.Array)
        {
            return events;
        }

        foreach (var block in content.EnumerateArray())
        {
            if (Str(block, "type") != "tool_result")
            {
                continue;
            }

            var callId = Str(block, "tool_use_id") ?? "";
            var isError = block.TryGetProperty("is_error", out var error) && error.ValueKind == JsonValueKind.True;
            events.Add(new ToolResulted(callId, _toolNames.GetValueOrDefault(callId, "?"), Text(block), isError));
        }

        return events;
    }

    private static ModelRetried Retry(JsonElement root)
    {
        var attempt = Int(root, "attempt") ?? 0;
        var delay = root.TryGetProperty("retry_delay_ms", out var d) && d.ValueKind == JsonValueKind.Number ? d.GetDouble() : 0;
        var status = Int(root, "error_status");
        var error = root.TryGetProperty("error", out var e) ? (e.ValueKind == JsonValueKind.String ? e.GetString() : e.GetRawText()) : null;
        var reason = string.Join(": ", new[] { status?.ToString(CultureInfo.InvariantCulture), error }.Where(s => !string.IsNullOrEmpty(s)));
        return new ModelRetried((int)attempt, (int)delay, reason.Length == 0 ? "Claude Code retried a model call" : reason);
    }

    private List<AgentEvent> Finish(JsonElement root)
    {
        var usage = root.TryGetProperty("usage", out var u) ? u : default;
        var errors = root.TryGetProperty("errors", out var list) && list.ValueKind == JsonValueKind.Array
            ? list.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.String ? x.GetString()! : x.GetRawText()).ToList()
            : [];
        var result = new ClaudeResult(
            Str(root, "subtype") ?? "",
            root.TryGetProperty("is_error", out var isError) && isError.ValueKind == JsonValueKind.True,
            Str(root, "result"),
            errors,
            Int(root, "num_turns") ?? 0,
            root.TryGetProperty("total_cost_usd", out var cost) && cost.ValueKind == JsonValueKind.Number ? cost.GetDecimal() : 0m);
        Result = result;

        var model = taskModel;
        if (!CliModel.IsSimulated(taskModel) && root.TryGetProperty("modelUsage", out var models) && models.ValueKind == JsonValueKind.Object)
        {
            model = models.EnumerateObject().Select(m => "anthropic:" + m.Name).FirstOrDefault() ?? model;
        }

        var events = new List<AgentEvent>
        {
            new UsageRecorded(model,
                usage.ValueKind == JsonValueKind.Object ? Int(usage, "input_tokens") ?? 0 : 0,
                usage.ValueKind == JsonValueKind.Object ? Int(usage, "output_tokens") ?? 0 : 0,
                usage.ValueKind == JsonValueKind.Object ? Int(usage, "cache_read_input_tokens") ?? 0 : 0,
                usage.ValueKind == JsonValueKind.Object ? Int(usage, "cache_creation_input_tokens") ?? 0 : 0,
                CliModel.IsSimulated(taskModel) ? 0m : result.CostUsd),
        };

        if (root.TryGetProperty("permission_denials", out var denials) && denials.ValueKind == JsonValueKind.Array)
        {
            foreach (var denial in denials.EnumerateArray())
            {
                if (Str(denial, "tool_use_id") is { } id && DeniedThroughOffload.Contains(id))
                {
                    continue;
                }

                var input = denial.TryGetProperty("tool_input", out var i) ? i.GetRawText() : "{}";
                events.Add(new ErrorRaised($"Claude Code denied {Str(denial, "tool_name") ?? "a tool"} (a permission rule)", input));
            }
        }

        return events;
    }

    /// <summary>A tool result's content: a string, or blocks of text (images and other blocks are named).</summary>
    private static string Text(JsonElement block)
    {
        if (!block.TryGetProperty("content", out var content))
        {
            return "";
        }

        if (content.ValueKind == JsonValueKind.String)
        {
            return content.GetString()!;
        }

        if (content.ValueKind != JsonValueKind.Array)
        {
            return content.GetRawText();
        }

        var text = new StringBuilder();
        foreach (var part in content.EnumerateArray())
        {
            text.Append(Str(part, "type") == "text" ? Str(part, "text") : $"[{Str(part, "type") ?? "content"}]");
        }

        return text.ToString();
    }

    private static string? Str(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static long? Int(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n) ? n : null;
}

/// <summary>What Claude Code's closing <c>result</c> line said.</summary>
public sealed record ClaudeResult(string Subtype, bool IsError, string? Text, IReadOnlyList<string> Errors, long NumTurns, decimal CostUsd)
{
    public EngineOutcome ToOutcome(long taskId)
    {
        var why = Errors.Count > 0 ? string.Join("; ", Errors) : Text ?? Subtype;
        return Subtype switch
        {
            "success" when !IsError => new EngineOutcome.Succeeded(Text ?? ""),
            "error_max_turns" => new EngineOutcome.Limited(
                $"turn limit reached ({why}); raise it with `offload reply {taskId} --max-turns N \"go on\"`"),
            "error_max_budget_usd" => new EngineOutcome.Limited($"cost limit reached ({why})"),
            _ => new EngineOutcome.Failed($"Claude Code: {why}"),
        };
    }
}
