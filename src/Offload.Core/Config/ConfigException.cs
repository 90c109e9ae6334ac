using System.Text.Json;
using System.Text.RegularExpressions;

namespace Offload.Config;

/// <summary>
/// A config file Offload cannot use: it does not parse as JSON, a value has the wrong type, or a limit is out of range.
/// Carries the file, where in it (line and column, 1-based, when the parser knows) and the problem in plain words, so
/// the CLI, the API and a run that reads a repository's config all say the same thing.
/// </summary>
public sealed partial class ConfigException(string path, long? line, long? column, string problem, Exception? inner = null)
    : Exception(Describe(path, line, column, problem), inner)
{
    public string Path { get; } = path;

    public long? Line { get; } = line;

    public long? Column { get; } = column;

    /// <summary>What is wrong, without the file and place (the parser's message, reworded where it names .NET types).</summary>
    public string Problem { get; } = problem;

    /// <summary>What to do next.</summary>
    public string Hint => $"fix {Path} (or move it aside) and run the command again; nothing was changed";

    /// <summary>A parse error of <see cref="System.Text.Json"/>, with its line and position made 1-based.</summary>
    public static ConfigException FromJson(string path, JsonException e) =>
        new(path, e.LineNumber + 1, e.BytePositionInLine + 1, Reword(e), e);

    private static string Describe(string path, long? line, long? column, string problem) =>
        line is { } l ? $"the config file {path} is not valid: line {l}, column {column}: {problem}" : $"the config file {path} is not valid: {problem}";

    /// <summary>The parser's message without its trailer (" Path: $.x | LineNumber: 1 | BytePositionInLine: 4.") and .NET type names.</summary>
    private static string Reword(JsonException e)
    {
        var message = Trailer().Replace(e.Message, "").TrimEnd('.', ' ');
        if (message.StartsWith("Expected depth to be zero", StringComparison.Ordinal))
        {
            message = "the file ends inside an object or a list: a closing } or ] is missing";
        }

        var at = e.Path is { Length: > 1 } p ? p.TrimStart('$', '.') : null;
        if (Conversion().Match(message) is { Success: true } m)
        {
            return $"{at ?? "a value"} should be {Kind(m.Groups[1].Value)}";
        }

        return at is null ? message : $"{message} (at {at})";
    }

    private static string Kind(string type) => type switch
    {
        _ when type.Contains("Int", StringComparison.Ordinal) => "a whole number",
        _ when type.Contains("Decimal", StringComparison.Ordinal) || type.Contains("Double", StringComparison.Ordinal) => "a number",
        _ when type.Contains("Boolean", StringComparison.Ordinal) => "true or false",
        _ when type.Contains("String", StringComparison.Ordinal) && !type.Contains('[', StringComparison.Ordinal) => "a string",
        _ when type.Contains("List", StringComparison.Ordinal) || type.Contains("[]", StringComparison.Ordinal) => "a list ([…])",
        _ => "an object ({…})",
    };

    [GeneratedRegex(@"\s*(Path: .*)?\|?\s*LineNumber: \d+ \| BytePositionInLine: \d+\.?$")]
    private static partial Regex Trailer();

    [GeneratedRegex(@"could not be converted to ([^\s.]+(\.[^\s.]+)*)")]
    private static partial Regex Conversion();
}
