using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Offload.Simulator;

/// <summary>
/// Thinking as the Anthropic API hands it out and takes it back. Each thinking block the Simulator gives carries a
/// signature (an HMAC of its text) and each redacted block sealed data; both are checked whenever they come back, and
/// a request that asks for thinking must send the last tool-use turn with the thinking blocks it was given, first.
/// A client that alters, reorders or drops them gets the API's 400. The key is fixed, so blocks stay valid across
/// Simulator restarts (a daemon restart restarts the in-process Simulator).
/// </summary>
public static class SimulatedThinking
{
    private static readonly byte[] Key = "offload-simulator-thinking-v1"u8.ToArray();

    /// <summary>The signature of a thinking block with <paramref name="thinking"/> as its text.</summary>
    public static string Sign(string thinking) => Convert.ToBase64String(Mac("thinking\n" + thinking));

    /// <summary>The sealed data of the redacted thinking block of turn <paramref name="turnIndex"/>.</summary>
    public static string RedactedData(int turnIndex)
    {
        var payload = Encoding.UTF8.GetBytes("redacted thinking of turn " + turnIndex.ToString(CultureInfo.InvariantCulture));
        return Convert.ToBase64String([.. payload, .. HMACSHA256.HashData(Key, payload)]);
    }

    private static byte[] Mac(string text) => HMACSHA256.HashData(Key, Encoding.UTF8.GetBytes(text));

    private static bool IsSealed(string data)
    {
        var bytes = new byte[data.Length];
        if (!Convert.TryFromBase64String(data, bytes, out var length) || length <= 32)
        {
            return false;
        }

        var payload = bytes.AsSpan(0, length - 32);
        return CryptographicOperations.FixedTimeEquals(HMACSHA256.HashData(Key, payload), bytes.AsSpan(length - 32, 32));
    }

    /// <summary>The thinking blocks a turn has when the request asks for thinking: its thought, then its redacted block.</summary>
    internal static IReadOnlyList<(string Type, string Value, string Proof)> BlocksOf(ScenarioTurn? turn, int turnIndex)
    {
        List<(string, string, string)> blocks = [];
        if (turn?.Thinking is { } thought)
        {
            blocks.Add(("thinking", thought, Sign(thought)));
        }

        if (turn?.RedactedThinking == true)
        {
            blocks.Add(("redacted_thinking", "", RedactedData(turnIndex)));
        }

        return blocks;
    }

    /// <summary>
    /// What the API would refuse in this request, in its words, or null: a thinking configuration the model does not
    /// take (a scenario that declares no thinking takes any, and gives none: Claude Code asks every model it does not
    /// know for adaptive thinking), a budget out of range, a thinking block whose signature or data is not the Simulator's, or a last
    /// tool-use turn sent without the thinking blocks it was given (when the request asks for thinking).
    /// </summary>
    internal static string? Check(JsonElement root, Scenario scenario)
    {
        var type = root.TryGetProperty("thinking", out var thinking) && thinking.ValueKind == JsonValueKind.Object
            && thinking.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        var thinks = type is "adaptive" or "enabled";
        if (type == "adaptive" && scenario.Thinking == "budget")
        {
            return "thinking.type: adaptive thinking is not supported on this model; use thinking.type.enabled with budget_tokens.";
        }

        if (type == "enabled" && scenario.Thinking == "adaptive")
        {
            return "thinking.type.enabled is not supported for this model. Use thinking.type.adaptive instead.";
        }

        if (type == "enabled")
        {
            var budget = thinking.TryGetProperty("budget_tokens", out var b) && b.TryGetInt32(out var n) ? n : 0;
            var max = root.TryGetProperty("max_tokens", out var m) && m.TryGetInt32(out var mt) ? mt : 0;
            if (budget < 1024)
            {
                return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024";
            }

            if (max <= budget)
            {
                return "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size";
            }
        }

        if (!root.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array)
        {
            return null;
        }

        var list = messages.EnumerateArray().ToList();
        for (var i = 0; i < list.Count; i++)
        {
            if (!IsRole(list[i], "assistant") || !list[i].TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.Array)
            {
                continue;
            }

            var j = 0;
            foreach (var block in content.EnumerateArray())
            {
                var problem = Str(block, "type") switch
                {
                    "thinking" when Str(block, "signature") is not { } signature || signature != Sign(Str(block, "thinking") ?? "") =>
                        "Invalid `signature` in `thinking` block",
                    "redacted_thinking" when Str(block, "data") is not { } data || !IsSealed(data) => "Invalid `data` in `redacted_thinking` block",
                    _ => null,
                };
                if (problem is not null)
                {
                    return $"messages.{i}.content.{j}: {problem}";
                }

                j++;
            }
        }

        return thinks ? LastToolTurnProblem(list, scenario) : null;
    }

    /// <summary>The last assistant turn, when tool results answer it, must start with the thinking blocks it was given.</summary>
    private static string? LastToolTurnProblem(List<JsonElement> messages, Scenario scenario)
    {
        var at = messages.FindLastIndex(m => IsRole(m, "assistant"));
        if (at < 0 || at == messages.Count - 1 || !messages[at].TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.Array
            || !content.EnumerateArray().Any(b => Str(b, "type") == "tool_use"))
        {
            return null;
        }

        var turnIndex = messages.Take(at).Count(m => IsRole(m, "assistant"));
        var userBefore = messages.Take(at).LastOrDefault(m => IsRole(m, "user"));
        var lastUserText = userBefore.ValueKind == JsonValueKind.Object && userBefore.TryGetProperty("content", out var c) ? AnthropicApi.TextOf(c) : "";
        var given = BlocksOf(scenario.Select(turnIndex, lastUserText, out _), turnIndex);
        var sent = content.EnumerateArray().ToList();
        for (var k = 0; k < given.Count; k++)
        {
            var block = k < sent.Count ? sent[k] : default;
            var type = block.ValueKind == JsonValueKind.Object ? Str(block, "type") : null;
            var same = type == given[k].Type
                && (type == "thinking" ? Str(block, "thinking") == given[k].Value && Str(block, "signature") == given[k].Proof : Str(block, "data") == given[k].Proof);
            if (!same)
            {
                return $"messages.{at}.content.{k}: Expected `{given[k].Type}`, but found `{type ?? "nothing"}`"
                    + (type == given[k].Type ? " with other content" : "")
                    + ". When `thinking` is enabled, a final `assistant` message must start with the thinking blocks it was given "
                    + "(preceding the lastmost set of `tool_use` and `tool_result` blocks).";
            }
        }

        return null;
    }

    private static bool IsRole(JsonElement message, string role) => message.ValueKind == JsonValueKind.Object && Str(message, "role") == role;

    private static string? Str(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
