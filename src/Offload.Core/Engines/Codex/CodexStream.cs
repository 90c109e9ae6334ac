using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Offload.Protocol;

namespace Offload.Engines.Codex;

/// <summary>
/// Turns <c>codex exec --json</c> lines into journal events: <c>agent_message</c> items are assistant text,
/// <c>command_execution</c>, <c>file_change</c>, <c>mcp_tool_call</c> and <c>web_search</c> items are tool calls (at
/// <c>item.started</c>) and results (at <c>item.completed</c>), <c>Reconnecting…</c> errors are retries,
/// <c>turn.completed</c> carries the usage and ends the run, <c>turn.failed</c> fails it. Codex prints no event per
/// model answer, so a turn here is counted the way the answers come: a new one begins at the first item after a
/// tool finished (or at the start). The raw line itself is kept by the engine. docs/codex-engine.md.
/// </summary>
/// <param name="price">What the usage of a run cost (0 for the Simulator, else the model's price).</param>
public sealed partial class CodexStream(int turn, string taskModel, Func<Models.ModelUsage, decimal> price)
{
    private readonly HashSet<string> _started = new(StringComparer.Ordinal);
    private bool _nextItemOpensTurn = true;
    private bool _turnOpened;

    public int Turn { get; private set; } = turn;

    public string? SessionId { get; private set; }

    /// <summary>The end of the run, once <c>turn.completed</c> or <c>turn.failed</c> came.</summary>
    public CodexResult? Result { get; private set; }

    /// <summary>The last assistant text: the summary of a run that completes.</summary>
    public string? LastMessage { get; private set; }

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

        switch (Str(root, "type"))
        {
            case "thread.started":
                SessionId = Str(root, "thread_id") ?? SessionId;
                return [];
            case "item.started" when root.TryGetProperty("item", out var item):
                return Started(item);
            case "item.completed" when root.TryGetProperty("item", out var item):
                return Completed(item);
            case "error":
                var message = Str(root, "message") ?? "";
                return Reconnecting().Match(message) is { Success: true } retry
                    ? [new ModelRetried(int.Parse(retry.Groups[1].Value, CultureInfo.InvariantCulture), 0, retry.Groups[3].Value)]
                    : [new EngineNote(CodexEngine.ErrorNote, message)];
            case "turn.completed":
                // OpenAI counts cached tokens inside input_tokens; the journal, as Anthropic does, apart
                var usage = root.TryGetProperty("usage", out var u) ? u : default;
                var cached = Int(usage, "cached_input_tokens");
                var tokens = new Models.ModelUsage(Int(usage, "input_tokens") - cached, Int(usage, "output_tokens"), cached, Int(usage, "cache_write_input_tokens"));
                Result = new CodexResult(true, LastMessage ?? "", null);
                return [new UsageRecorded(taskModel, tokens.Input, tokens.Output, tokens.CacheRead, tokens.CacheWrite, price(tokens))];
            case "turn.failed":
                var error = root.TryGetProperty("error", out var e) ? Str(e, "message") : null;
                Result = new CodexResult(false, LastMessage, error ?? "the turn failed");
                return [];
            default:
                return [];
        }
    }

    private List<AgentEvent> Started(JsonElement item)
    {
        var id = Str(item, "id") ?? "";
        if (Call(item) is not { } call)
        {
            return [];
        }

        _started.Add(id);
        var events = OpenTurn(toolsOnly: true);
        events.Add(new ToolCalled(Turn, id, call.Name, call.Input));
        return events;
    }

    private List<AgentEvent> Completed(JsonElement item)
    {
        var id = Str(item, "id") ?? "";
        switch (Str(item, "type"))
        {
            case "agent_message":
                var text = Str(item, "text") ?? "";
                LastMessage = text;
                var events = OpenTurn(toolsOnly: false);
                events.Add(new AssistantMessage(Turn, text));
                return events;
            case "error":
                return [new EngineNote(CodexEngine.ErrorNote, Str(item, "message") ?? "")];
        }

        if (Call(item) is not { } call)
        {
            return [];
        }

        var result = new List<AgentEvent>();
        if (!_started.Remove(id))
        {
            result.AddRange(OpenTurn(toolsOnly: true)); // an item Codex reports only once it is done
            result.Add(new ToolCalled(Turn, id, call.Name, call.Input));
        }

        _nextItemOpensTurn = true;
        var failed = Str(item, "status") is "failed" or "declined";
        var exit = item.TryGetProperty("exit_code", out var code) && code.ValueKind == JsonValueKind.Number ? code.GetInt32() : (int?)null;
        result.Add(new ToolResulted(id, call.Name, Output(item), failed || exit is not (null or 0), exit));
        return result;
    }

    /// <summary>A new turn when the last one ended with tools that finished; a turn of tools only gets an empty message, so it counts.</summary>
    private List<AgentEvent> OpenTurn(bool toolsOnly)
    {
        var events = new List<AgentEvent>();
        if (_nextItemOpensTurn)
        {
            Turn++;
            _nextItemOpensTurn = false;
            _turnOpened = false;
        }

        if (toolsOnly && !_turnOpened)
        {
            events.Add(new AssistantMessage(Turn, ""));
        }

        _turnOpened = true;
        return events;
    }

    /// <summary>The journal's name and input for a Codex item that is a tool call; null for other items.</summary>
    private static (string Name, JsonElement Input)? Call(JsonElement item) => Str(item, "type") switch
    {
        "command_execution" => (CodexEngine.CommandTool, Object(("command", Str(item, "command") ?? ""))),
        "file_change" => (CodexEngine.PatchTool, Object(("changes", item.TryGetProperty("changes", out var changes) ? changes.Clone() : Empty))),
        "mcp_tool_call" => ($"mcp:{Str(item, "server")}/{Str(item, "tool")}", item.TryGetProperty("arguments", out var args) ? args.Clone() : Empty),
        "web_search" => ("web_search", Object(("query", Str(item, "query") ?? ""))),
        _ => null,
    };

    private static string Output(JsonElement item) => Str(item, "type") switch
    {
        "command_execution" => Str(item, "aggregated_output") ?? "",
        "file_change" => string.Join("\n", (item.TryGetProperty("changes", out var changes) && changes.ValueKind == JsonValueKind.Array ? changes.EnumerateArray() : default)
            .Select(c => $"{Str(c, "kind")} {Str(c, "path")}")),
        "mcp_tool_call" => item.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.Object ? Str(error, "message") ?? error.GetRawText()
            : item.TryGetProperty("result", out var result) ? result.GetRawText() : "",
        _ => "",
    };

    private static readonly JsonElement Empty = JsonElement.Parse("{}");

    private static JsonElement Object(params (string Name, object Value)[] fields)
    {
        var node = new System.Text.Json.Nodes.JsonObject();
        foreach (var (name, value) in fields)
        {
            node[name] = value is JsonElement element ? System.Text.Json.Nodes.JsonNode.Parse(element.GetRawText()) : System.Text.Json.Nodes.JsonValue.Create((string)value);
        }

        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            node.WriteTo(writer); // the command as it reads, not with its quotes and < escaped
        }

        return JsonElement.Parse(buffer.WrittenSpan);
    }

    private static string? Str(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static long Int(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n) ? n : 0;

    /// <summary>Codex's retry notice: <c>Reconnecting... 2/5 (reason)</c>.</summary>
    [GeneratedRegex(@"^Reconnecting\.\.\. (\d+)/(\d+) \((.*)\)$", RegexOptions.Singleline)]
    private static partial Regex Reconnecting();
}

/// <summary>How a Codex run ended: <c>turn.completed</c> (its last message) or <c>turn.failed</c> (its error).</summary>
public sealed record CodexResult(bool Completed, string? Summary, string? Error)
{
    public EngineOutcome ToOutcome() => Completed
        ? new EngineOutcome.Succeeded(Summary ?? "")
        : new EngineOutcome.Failed($"Codex: {Error}", Summary);
}
