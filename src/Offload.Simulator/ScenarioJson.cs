using System.Globalization;
using System.Text.Json;

namespace Offload.Simulator;

/// <summary>Reads the scenario file format strictly, so a typo fails loudly with the JSON path of the mistake.</summary>
internal static class ScenarioJson
{
    private static readonly string[] s_rootKeys = ["$schema", "name", "description", "turns", "rules", "finalText", "thinking", "contextWindow", "summary", "subagents"];
    private static readonly string[] s_subagentKeys = ["whenPromptContains", "turns", "finalText"];
    private static readonly string[] s_turnKeys = ["text", "toolCalls", "delayMs", "repeat", "faults", "cacheReadTokens", "cacheWriteTokens", "thinking", "redactedThinking", "cutOff"];
    private static readonly string[] s_toolCallKeys = ["name", "input"];
    private static readonly string[] s_ruleKeys = ["whenContains", "afterTurn", "turn"];
    private static readonly string[] s_faultKeys = ["kind", "status", "retryAfter", "message", "afterEvents", "ms", "times"];

    public static Scenario Parse(string json, string? defaultName)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new FormatException($"Scenario is not valid JSON: {e.Message}", e);
        }

        using (document)
        {
            var root = document.RootElement;
            RequireObject(root, "(root)", s_rootKeys);
            var name = OptionalString(root, "name", "(root)") ?? defaultName
                ?? throw new FormatException("Scenario: 'name' is required (a string).");
            var turns = root.TryGetProperty("turns", out var turnsElement)
                ? Array(turnsElement, "turns").Select((t, i) => ParseTurn(t, $"turns[{i}]")).ToArray()
                : throw new FormatException($"Scenario '{name}': 'turns' is required (an array of turns).");
            var thinking = OptionalString(root, "thinking", "(root)");
            if (thinking is not (null or "adaptive" or "budget"))
            {
                throw new FormatException(
                    $"Scenario '{name}': thinking is \"{thinking}\"; it must be \"adaptive\" (like claude-opus-4-8) or \"budget\" (like claude-sonnet-4-5), or be left out.");
            }

            var rules = root.TryGetProperty("rules", out var rulesElement)
                ? Array(rulesElement, "rules").Select((r, i) => ParseRule(r, $"rules[{i}]")).ToArray()
                : [];
            ScenarioTurn? summary = null;
            if (root.TryGetProperty("summary", out var summaryElement))
            {
                summary = ParseTurn(summaryElement, "summary");
                if (summary.ToolCalls.Count > 0 || summary.Repeat != 1)
                {
                    throw new FormatException("Scenario: summary answers a summary request with text only; it takes no toolCalls or repeat.");
                }
            }

            try
            {
                return new Scenario(
                    name,
                    turns,
                    rules,
                    OptionalString(root, "finalText", "(root)"),
                    OptionalString(root, "description", "(root)"),
                    OptionalInt(root, "contextWindow", "(root)", min: 1),
                    summary)
                {
                    Thinking = thinking,
                    Subagents = root.TryGetProperty("subagents", out var subagents)
                        ? [.. Array(subagents, "subagents").Select((c, i) => ParseSubagent(c, $"subagents[{i}]", name, thinking))]
                        : [],
                };
            }
            catch (ArgumentException e)
            {
                throw new FormatException($"Scenario '{name}': {e.Message}", e);
            }
        }
    }

    private static ScenarioSubagent ParseSubagent(JsonElement e, string at, string name, string? thinking)
    {
        RequireObject(e, at, s_subagentKeys);
        var marker = OptionalString(e, "whenPromptContains", at) is { Length: > 0 } text
            ? text
            : throw new FormatException($"Scenario '{name}': {at}.whenPromptContains is required (a text the subagent's prompt contains).");
        var turns = e.TryGetProperty("turns", out var turnsElement)
            ? Array(turnsElement, at + ".turns").Select((t, i) => ParseTurn(t, $"{at}.turns[{i}]")).ToArray()
            : throw new FormatException($"Scenario '{name}': {at}.turns is required (an array of turns).");
        return new ScenarioSubagent(marker, new Scenario($"{name}/{at}", turns, finalText: OptionalString(e, "finalText", at)) { Thinking = thinking });
    }

    private static ScenarioTurn ParseTurn(JsonElement e, string at)
    {
        RequireObject(e, at, s_turnKeys);
        return new ScenarioTurn
        {
            Text = OptionalString(e, "text", at) ?? "",
            ToolCalls = e.TryGetProperty("toolCalls", out var calls)
                ? Array(calls, $"{at}.toolCalls").Select((c, i) => ParseToolCall(c, $"{at}.toolCalls[{i}]")).ToArray()
                : [],
            DelayMs = OptionalInt(e, "delayMs", at, min: 0) ?? 0,
            Repeat = OptionalInt(e, "repeat", at, min: 1) ?? 1,
            CacheReadTokens = OptionalInt(e, "cacheReadTokens", at, min: 0) ?? 0,
            CacheWriteTokens = OptionalInt(e, "cacheWriteTokens", at, min: 0) ?? 0,
            Thinking = OptionalString(e, "thinking", at),
            RedactedThinking = OptionalBool(e, "redactedThinking", at) ?? false,
            CutOff = OptionalBool(e, "cutOff", at) ?? false,
            Faults = e.TryGetProperty("faults", out var faults)
                ? Array(faults, $"{at}.faults").Select((f, i) => ParseFault(f, $"{at}.faults[{i}]")).ToArray()
                : [],
        };
    }

    private static ScenarioToolCall ParseToolCall(JsonElement e, string at)
    {
        RequireObject(e, at, s_toolCallKeys);
        var name = OptionalString(e, "name", at);
        if (string.IsNullOrEmpty(name))
        {
            throw new FormatException($"Scenario: {at}.name is required (the tool's name, e.g. \"Bash\").");
        }

        if (!e.TryGetProperty("input", out var input))
        {
            return new ScenarioToolCall(name, JsonDocument.Parse("{}").RootElement.Clone());
        }

        if (input.ValueKind != JsonValueKind.Object)
        {
            throw new FormatException($"Scenario: {at}.input must be an object, not {Describe(input)}.");
        }

        return new ScenarioToolCall(name, input.Clone());
    }

    private static ScenarioRule ParseRule(JsonElement e, string at)
    {
        RequireObject(e, at, s_ruleKeys);
        var when = OptionalString(e, "whenContains", at);
        if (string.IsNullOrEmpty(when))
        {
            throw new FormatException($"Scenario: {at}.whenContains is required (a non-empty string).");
        }

        if (!e.TryGetProperty("turn", out var turn))
        {
            throw new FormatException($"Scenario: {at}.turn is required (the turn to serve when the rule matches).");
        }

        return new ScenarioRule(when, ParseTurn(turn, $"{at}.turn"), OptionalInt(e, "afterTurn", at, min: 0));
    }

    private static ScenarioFault ParseFault(JsonElement e, string at)
    {
        RequireObject(e, at, s_faultKeys);
        var kindText = OptionalString(e, "kind", at)
            ?? throw new FormatException($"Scenario: {at}.kind is required: status, drop, errorEvent, stall or malformed.");
        if (!Enum.TryParse<FaultKind>(kindText, ignoreCase: true, out var kind) || int.TryParse(kindText, out _))
        {
            throw new FormatException(
                $"Scenario: {at}.kind '{kindText}' is unknown; use status, drop, errorEvent, stall or malformed.");
        }

        var status = OptionalInt(e, "status", at, min: 100);
        if (kind == FaultKind.Status && status is null)
        {
            throw new FormatException($"Scenario: {at}.status is required for a status fault (e.g. 429).");
        }

        if (status is > 599)
        {
            throw new FormatException($"Scenario: {at}.status {status} is not an HTTP status code.");
        }

        string? retryAfter = null;
        if (e.TryGetProperty("retryAfter", out var retry))
        {
            retryAfter = retry.ValueKind switch
            {
                JsonValueKind.String => retry.GetString(),
                JsonValueKind.Number => retry.GetRawText(),
                _ => throw new FormatException($"Scenario: {at}.retryAfter must be a string or a number, not {Describe(retry)}."),
            };
        }

        var fault = new ScenarioFault
        {
            Kind = kind,
            Status = status ?? 500,
            RetryAfter = retryAfter,
            Message = OptionalString(e, "message", at),
            Times = OptionalInt(e, "times", at, min: 1) ?? 1,
        };
        var afterEvents = OptionalInt(e, "afterEvents", at, min: 0);
        var ms = OptionalInt(e, "ms", at, min: 0);
        return fault with { AfterEvents = afterEvents ?? fault.AfterEvents, Ms = ms ?? fault.Ms };
    }

    private static void RequireObject(JsonElement e, string at, string[] allowed)
    {
        if (e.ValueKind != JsonValueKind.Object)
        {
            throw new FormatException($"Scenario: {at} must be an object, not {Describe(e)}.");
        }

        foreach (var property in e.EnumerateObject())
        {
            if (!allowed.Contains(property.Name, StringComparer.Ordinal))
            {
                throw new FormatException(
                    $"Scenario: {at} has an unknown property '{property.Name}'; allowed: {string.Join(", ", allowed)}.");
            }
        }
    }

    private static JsonElement.ArrayEnumerator Array(JsonElement e, string at) =>
        e.ValueKind == JsonValueKind.Array
            ? e.EnumerateArray()
            : throw new FormatException($"Scenario: {at} must be an array, not {Describe(e)}.");

    private static string? OptionalString(JsonElement e, string name, string at)
    {
        if (!e.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : throw new FormatException($"Scenario: {at}.{name} must be a string, not {Describe(value)}.");
    }

    private static bool? OptionalBool(JsonElement e, string name, string at)
    {
        if (!e.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return value.ValueKind is JsonValueKind.True or JsonValueKind.False
            ? value.GetBoolean()
            : throw new FormatException($"Scenario: {at}.{name} must be true or false, not {Describe(value)}.");
    }

    private static int? OptionalInt(JsonElement e, string name, string at, int min)
    {
        if (!e.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out var number))
        {
            throw new FormatException($"Scenario: {at}.{name} must be a whole number, not {Describe(value)}.");
        }

        return number >= min
            ? number
            : throw new FormatException(
                $"Scenario: {at}.{name} is {number}; it must be at least {min.ToString(CultureInfo.InvariantCulture)}.");
    }

    private static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => $"the string \"{Truncate(e.GetString() ?? "")}\"",
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.True or JsonValueKind.False => $"the boolean {e.GetRawText()}",
        JsonValueKind.Null => "null",
        _ => $"the number {e.GetRawText()}",
    };

    private static string Truncate(string s) => s.Length <= 40 ? s : s[..40] + "…";
}
