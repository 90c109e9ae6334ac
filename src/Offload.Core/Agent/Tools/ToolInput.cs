using System.Globalization;
using System.Text.Json;

namespace Offload.Agent.Tools;

/// <summary>
/// A failure the model should read (bad input, a path outside the worktree, a missing file),
/// thrown inside a tool and turned into an error <see cref="ToolResult"/> before it leaves the tool.
/// </summary>
internal sealed class ToolException(string message) : Exception(message);

/// <summary>Reads tool arguments leniently: models sometimes send numbers and booleans as strings.</summary>
internal static class ToolInput
{
    public static JsonElement Schema(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    public static string RequireString(JsonElement input, string name) =>
        OptionalString(input, name) ?? throw new ToolException($"Missing required parameter `{name}`.");

    public static string? OptionalString(JsonElement input, string name) => Get(input, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.String } value => value.GetString(),
        _ => throw new ToolException($"Parameter `{name}` must be a string."),
    };

    public static long? OptionalInteger(JsonElement input, string name)
    {
        switch (Get(input, name))
        {
            case null:
                return null;
            case { ValueKind: JsonValueKind.Number } value when value.TryGetDouble(out var number) && number == Math.Floor(number):
                return (long)Math.Clamp(number, long.MinValue, long.MaxValue);
            case { ValueKind: JsonValueKind.String } value when long.TryParse(value.GetString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed):
                return parsed;
            default:
                throw new ToolException($"Parameter `{name}` must be an integer.");
        }
    }

    public static bool? OptionalBool(JsonElement input, string name) => Get(input, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        { ValueKind: JsonValueKind.String } value when bool.TryParse(value.GetString(), out var parsed) => parsed,
        _ => throw new ToolException($"Parameter `{name}` must be true or false."),
    };

    private static JsonElement? Get(JsonElement input, string name)
    {
        if (input.ValueKind != JsonValueKind.Object)
        {
            throw new ToolException("The tool input must be a JSON object.");
        }
        return input.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;
    }
}
