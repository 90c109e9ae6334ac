using System.Text.Json;

namespace Offload.Config;

/// <summary>A config file that does not parse, named with the line and what is wrong there, so the user can fix it.</summary>
public sealed class ConfigFileException(string path, JsonException error) : InvalidOperationException(Describe(path, error), error)
{
    public string FilePath { get; } = path;

    /// <summary>The line (from 1) where the parser stopped, when it says.</summary>
    public long? Line { get; } = error.LineNumber + 1;

    private static string Describe(string path, JsonException error)
    {
        // The parser's own message ends with "Path: $.x | LineNumber: 0 | BytePositionInLine: 12.": the line is said here, counted from 1.
        var what = error.Message;
        var at = what.IndexOf(" LineNumber:", StringComparison.Ordinal);
        what = (at < 0 ? what : what[..at]).TrimEnd(' ', '|', '.');
        var line = error.LineNumber is { } l ? $", line {l + 1}" : "";
        return $"{path}{line}: not valid config JSON: {what}. Fix the file or move it aside.";
    }
}
