using System.Globalization;
using System.Text.Json;
using Offload.Cli.Commands;

namespace Offload.Cli.Mcp;

/// <summary>
/// A tool call's arguments, read strictly: a value of the wrong type or out of range is a <see cref="CliException"/>
/// (exit code <see cref="ExitCodes.BadInput"/>) naming the argument and what it takes, which the client gets as a tool
/// error, never a crash. MCP clients send what the input schema says, but a model may not.
/// </summary>
internal sealed class ToolArguments(string tool, IDictionary<string, JsonElement>? arguments)
{
    private readonly IDictionary<string, JsonElement> _arguments = arguments ?? new Dictionary<string, JsonElement>();

    public long TaskId(string name = "id") => Long(name) ?? throw Missing(name, "a task number like 12 (offload_list lists them)");

    /// <param name="min">The smallest value taken: 1 for ids and limits, 0 for a sequence number.</param>
    public long? Long(string name, long min = 1)
    {
        if (!_arguments.TryGetValue(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        // A model may quote a number ("12").
        if ((value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var n)
             || value.ValueKind == JsonValueKind.String && long.TryParse(value.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out n)) && n >= min)
        {
            return n;
        }

        throw Bad(name, value, min == 0 ? "a whole number, 0 or above" : "a whole number above 0, like 12");
    }

    public int? Int(string name) => Long(name) is { } n
        ? n <= int.MaxValue ? (int)n : throw Bad(name, _arguments[name], "a whole number above 0")
        : null;

    public decimal? Decimal(string name)
    {
        if (!_arguments.TryGetValue(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if ((value.ValueKind == JsonValueKind.Number && value.TryGetDecimal(out var d)
             || value.ValueKind == JsonValueKind.String && decimal.TryParse(value.GetString()?.TrimStart('$'), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out d)) && d > 0)
        {
            return d;
        }

        throw Bad(name, value, "an amount of US dollars above 0, like 2.50");
    }

    /// <summary>A duration: a number of seconds, or text like 90s, 20m, 2h (as <c>--timeout</c> takes it).</summary>
    public int? Seconds(string name)
    {
        if (!_arguments.TryGetValue(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        var seconds = value.ValueKind switch
        {
            JsonValueKind.Number when value.TryGetDouble(out var s) && s > 0 && s <= int.MaxValue => (int)Math.Ceiling(s),
            JsonValueKind.String => Common.Seconds(value.GetString()!),
            _ => null,
        };
        return seconds ?? throw Bad(name, value, "a duration above 0: seconds, or text like 90s, 20m or 2h");
    }

    public string? String(string name)
    {
        if (!_arguments.TryGetValue(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.String ? value.GetString() : throw Bad(name, value, "text");
    }

    public string RequiredString(string name, string what) => String(name) ?? throw Missing(name, what);

    public bool Bool(string name) => BoolOrNull(name) ?? false;

    public bool? BoolOrNull(string name)
    {
        if (!_arguments.TryGetValue(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Bad(name, value, "true or false"),
        };
    }

    public IReadOnlyList<string>? Strings(string name)
    {
        if (!_arguments.TryGetValue(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind == JsonValueKind.String)
        {
            return [value.GetString()!];
        }

        if (value.ValueKind == JsonValueKind.Array && value.EnumerateArray().All(v => v.ValueKind == JsonValueKind.String))
        {
            return [.. value.EnumerateArray().Select(v => v.GetString()!)];
        }

        throw Bad(name, value, "a list of texts");
    }

    public IReadOnlyList<long>? Longs(string name)
    {
        if (!_arguments.TryGetValue(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Array)
        {
            throw Bad(name, value, "a list of task numbers, like [3, 4]");
        }

        var ids = new List<long>();
        foreach (var item in value.EnumerateArray())
        {
            if (!(item.ValueKind == JsonValueKind.Number && item.TryGetInt64(out var id)
                  || item.ValueKind == JsonValueKind.String && long.TryParse(item.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out id)) || id <= 0)
            {
                throw Bad(name, value, "a list of task numbers, like [3, 4]");
            }

            ids.Add(id);
        }

        return ids;
    }

    private CliException Missing(string name, string what) =>
        new(ExitCodes.BadInput, $"{tool} needs `{name}`: {what}");

    private CliException Bad(string name, JsonElement value, string expected) =>
        new(ExitCodes.BadInput, $"{tool}: `{name}` takes {expected}, not {Shown(value)}");

    private static string Shown(JsonElement value)
    {
        var raw = value.GetRawText();
        return raw.Length <= 60 ? raw : raw[..57] + "…";
    }
}
