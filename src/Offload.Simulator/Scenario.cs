using System.Reflection;
using System.Text.Json;

namespace Offload.Simulator;

/// <summary>
/// A scripted conversation the simulator plays back: numbered assistant turns, rules that react to
/// what the user last said, and faults to inject. Loaded from JSON (see docs/simulator.md) or built in code.
/// </summary>
public sealed class Scenario
{
    private const string ResourcePrefix = "scenarios/";

    private static readonly Lazy<IReadOnlyList<string>> s_builtinNames = new(() =>
        typeof(Scenario).Assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal) && n.EndsWith(".json", StringComparison.Ordinal))
            .Select(n => n[ResourcePrefix.Length..^".json".Length])
            .Order(StringComparer.Ordinal)
            .ToArray());

    private readonly int[] _turnStarts;

    public Scenario(
        string name,
        IEnumerable<ScenarioTurn> turns,
        IEnumerable<ScenarioRule>? rules = null,
        string? finalText = null,
        string? description = null,
        int? contextWindow = null,
        ScenarioTurn? summary = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
        Description = description;
        Turns = turns.ToArray();
        Rules = rules?.ToArray() ?? [];
        FinalText = finalText ?? "(scenario finished)";
        ContextWindow = contextWindow;
        Summary = summary;
        _turnStarts = new int[Turns.Count];
        var next = 0;
        for (var i = 0; i < Turns.Count; i++)
        {
            if (Turns[i].Repeat < 1)
            {
                throw new ArgumentException($"Turn {i} has repeat {Turns[i].Repeat}; it must be at least 1.", nameof(turns));
            }

            _turnStarts[i] = next;
            next = checked(next + Turns[i].Repeat);
        }

        TurnCount = next;
    }

    /// <summary>
    /// The opening words of a request for a summary of the conversation so far (Claude Code's compaction prompt, which
    /// Offload's agent opens with too): a request whose last user message holds them is answered with <see cref="Summary"/>.
    /// </summary>
    public const string SummaryRequestMarker = "Your task is to create a detailed summary of the conversation so far";

    public string Name { get; }

    /// <summary>
    /// The most input tokens a request may carry (the Simulator counts a token per 4 bytes of request body); a longer
    /// request is refused as the provider would (Anthropic: 400 <c>prompt is too long: N tokens &gt; M maximum</c>). Null: no limit.
    /// </summary>
    public int? ContextWindow { get; }

    /// <summary>The answer to a summary request (<see cref="SummaryRequestMarker"/>); null: a generated one.</summary>
    public ScenarioTurn? Summary { get; }

    public string? Description { get; }

    /// <summary>
    /// The thinking the simulated model takes, as the API checks it: <c>"adaptive"</c> (like claude-opus-4-8),
    /// <c>"budget"</c> (like claude-sonnet-4-5), or null (none asked for by Offload; a request that asks anyway, as
    /// Claude Code does for any model it does not know, is answered without thinking).
    /// Offload reads it to decide what to send to a <c>sim:</c> model.
    /// </summary>
    public string? Thinking { get; init; }

    public IReadOnlyList<ScenarioTurn> Turns { get; }

    /// <summary>
    /// Scripts of subagents' conversations (Offload's and Claude Code's <c>Agent</c> tool): a request whose first user
    /// message (the subagent's prompt) contains a script's marker is played from that script, counting its own turns.
    /// </summary>
    public IReadOnlyList<ScenarioSubagent> Subagents { get; init; } = [];

    /// <summary>The script for a conversation that starts with <paramref name="firstUserText"/>: a subagent's, else this one.</summary>
    internal Scenario For(string firstUserText) =>
        Subagents.FirstOrDefault(s => firstUserText.Contains(s.WhenPromptContains, StringComparison.Ordinal))?.Script ?? this;

    public IReadOnlyList<ScenarioRule> Rules { get; }

    /// <summary>The reply once every scripted turn has been played.</summary>
    public string FinalText { get; }

    /// <summary>The number of turn indices the script occupies, counting repeats.</summary>
    public int TurnCount { get; }

    public static IReadOnlyList<string> BuiltinNames => s_builtinNames.Value;

    /// <exception cref="FormatException">The JSON is not a valid scenario; the message says where and why.</exception>
    public static Scenario Parse(string json) => ScenarioJson.Parse(json, defaultName: null);

    public static Scenario Load(string path)
    {
        var json = File.ReadAllText(path);
        try
        {
            return ScenarioJson.Parse(json, Path.GetFileNameWithoutExtension(path));
        }
        catch (FormatException e)
        {
            throw new FormatException($"{path}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Whether <paramref name="name"/> (a model name after <c>sim:</c>) names a scenario: a builtin one, or a scenario
    /// <c>.json</c> file; a file is read and parsed. The daemon asks this when a task is created, so that a typo is
    /// refused then, not found by the first model call.
    /// </summary>
    /// <exception cref="KeyNotFoundException">No builtin scenario or scenario file has that name.</exception>
    /// <exception cref="FormatException">The file is not a valid scenario.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static Scenario Find(string name)
    {
        if (BuiltinNames.Contains(name, StringComparer.Ordinal))
        {
            return Builtin(name);
        }

        if (IsFileName(name) && File.Exists(name))
        {
            return Load(name);
        }

        throw new KeyNotFoundException(IsFileName(name)
            ? $"There is no scenario file {name}{(Directory.Exists(name) ? " (it is a folder)" : "")}."
            : $"There is no builtin scenario '{name}' (builtin: {string.Join(", ", BuiltinNames)}); a scenario file is named by its path, ending in .json.");
    }

    /// <summary>A model name the Simulator reads as the path of a scenario file.</summary>
    public static bool IsFileName(string name) => name.EndsWith(".json", StringComparison.OrdinalIgnoreCase);

    /// <exception cref="KeyNotFoundException">No builtin scenario has that name; the message lists the names.</exception>
    public static Scenario Builtin(string name)
    {
        using var stream = typeof(Scenario).Assembly.GetManifestResourceStream(ResourcePrefix + name + ".json")
            ?? throw new KeyNotFoundException(
                $"There is no builtin scenario '{name}'. Builtin scenarios: {string.Join(", ", BuiltinNames)}.");
        using var reader = new StreamReader(stream);
        return ScenarioJson.Parse(reader.ReadToEnd(), name);
    }

    /// <summary>
    /// The turn to play for a request whose conversation already holds <paramref name="turnIndex"/> assistant
    /// messages and whose last user message reads <paramref name="lastUserText"/>. Rules win over the script.
    /// Returns null past the end of the script. <paramref name="slot"/> identifies the turn for fault bookkeeping.
    /// </summary>
    internal ScenarioTurn? Select(int turnIndex, string lastUserText, out string slot)
    {
        for (var i = 0; i < Rules.Count; i++)
        {
            var rule = Rules[i];
            if ((rule.AfterTurn is null || turnIndex >= rule.AfterTurn)
                && lastUserText.Contains(rule.WhenContains, StringComparison.OrdinalIgnoreCase))
            {
                slot = $"rule{i}@{turnIndex}";
                return rule.Turn;
            }
        }

        slot = turnIndex.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (turnIndex < 0 || turnIndex >= TurnCount)
        {
            return null;
        }

        var index = Array.BinarySearch(_turnStarts, turnIndex);
        return Turns[index >= 0 ? index : ~index - 1];
    }
}

/// <summary>One scripted assistant reply.</summary>
public sealed record ScenarioTurn
{
    public string Text { get; init; } = "";

    public IReadOnlyList<ScenarioToolCall> ToolCalls { get; init; } = [];

    /// <summary>How long to wait before answering, in milliseconds.</summary>
    public int DelayMs { get; init; }

    /// <summary>How many consecutive turn indices this turn occupies.</summary>
    public int Repeat { get; init; } = 1;

    /// <summary>Input tokens the Anthropic answer reports as read from the prompt cache (taken from the input estimate).</summary>
    public int CacheReadTokens { get; init; }

    /// <summary>Input tokens the Anthropic answer reports as written to the prompt cache (taken from the input estimate).</summary>
    public int CacheWriteTokens { get; init; }

    /// <summary>A thinking block (signed by the Simulator) before the turn's text, when the request asks for thinking.</summary>
    public string? Thinking { get; init; }

    /// <summary>A redacted thinking block (its data sealed by the Simulator) after the thinking, when the request asks for thinking.</summary>
    public bool RedactedThinking { get; init; }

    /// <summary>
    /// The reply ends as one cut off by the output-token limit does: Anthropic <c>stop_reason: "max_tokens"</c>,
    /// OpenAI <c>finish_reason: "length"</c>, whatever it carries.
    /// </summary>
    public bool CutOff { get; init; }

    /// <summary>Consumed in order by successive requests for this turn of one conversation.</summary>
    public IReadOnlyList<ScenarioFault> Faults { get; init; } = [];
}

public sealed record ScenarioToolCall(string Name, JsonElement Input);

/// <summary>A subagent's script: played for conversations whose first user message contains <see cref="WhenPromptContains"/>.</summary>
public sealed record ScenarioSubagent(string WhenPromptContains, Scenario Script);

/// <summary>Serves <see cref="Turn"/> when the last user message contains <see cref="WhenContains"/> (case-insensitive).</summary>
public sealed record ScenarioRule(string WhenContains, ScenarioTurn Turn, int? AfterTurn = null);

public enum FaultKind
{
    /// <summary>An HTTP error status with a provider-shaped error body.</summary>
    Status,

    /// <summary>A 200 stream cut after <see cref="ScenarioFault.AfterEvents"/> events.</summary>
    Drop,

    /// <summary>A 200 stream carrying an overloaded error event.</summary>
    ErrorEvent,

    /// <summary>A 200 stream that goes silent for <see cref="ScenarioFault.Ms"/> and ends unfinished.</summary>
    Stall,

    /// <summary>A 200 stream with a data line that is not JSON.</summary>
    Malformed,
}

public sealed record ScenarioFault
{
    public required FaultKind Kind { get; init; }

    public int Status { get; init; } = 500;

    public string? RetryAfter { get; init; }

    public string? Message { get; init; }

    public int AfterEvents { get; init; } = 2;

    public int Ms { get; init; } = 30_000;

    /// <summary>How many successive requests this fault answers before the next one applies.</summary>
    public int Times { get; init; } = 1;
}
