using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Offload.Agent.Tools;

/// <summary>Shows a text file with line numbers, a window of lines at a time.</summary>
public sealed class ReadTool : ITool
{
    public const int DefaultLimit = 2000;
    public const int MaxLineChars = 2000;

    public string Name => "Read";

    public string Description =>
        "Read a UTF-8 text file from the worktree. Lines come numbered like `cat -n`, starting at 1. " +
        $"By default up to {DefaultLimit} lines from the start; use offset (first line number) and limit to page through long files. " +
        $"Lines longer than {MaxLineChars} characters are cut. Binary files are refused; list a directory with Glob.";

    public JsonElement InputSchema { get; } = ToolInput.Schema("""
        {
          "type": "object",
          "properties": {
            "file_path": { "type": "string", "description": "Path of the file, relative to the worktree or absolute inside it." },
            "offset": { "type": "integer", "description": "Line number to start from (1-based). Only for long files." },
            "limit": { "type": "integer", "description": "How many lines to show. Only for long files." }
          },
          "required": ["file_path"],
          "additionalProperties": false
        }
        """);

    public bool Mutates => false;

    public Task<ToolResult> InvokeAsync(JsonElement input, ToolContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var filePath = ToolInput.RequireString(input, "file_path");
            var offset = ToolInput.OptionalInteger(input, "offset") ?? 1;
            var limit = ToolInput.OptionalInteger(input, "limit") ?? DefaultLimit;
            if (limit <= 0)
            {
                throw new ToolException("`limit` must be a positive number of lines.");
            }
            var root = WorktreePath.Root(context);
            var real = WorktreePath.Resolve(context, filePath, forWrite: false);
            var display = WorktreePath.Display(root, real);
            if (Directory.Exists(real))
            {
                throw new ToolException($"{display} is a directory, not a file. Use Glob to list its files (e.g. pattern \"{display}/**/*\").");
            }
            if (!File.Exists(real))
            {
                throw new ToolException($"File does not exist: {display}");
            }
            var text = ReadLines(real, display, Math.Max(offset, 1), limit, context.MaxOutputChars, cancellationToken);
            return Task.FromResult(new ToolResult(text, File: FileReads.Stamp(real, display)));
        }
        catch (ToolException e)
        {
            return Task.FromResult(ToolResult.Error(e.Message));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Task.FromResult(ToolResult.Error($"Could not read the file: {e.Message}"));
        }
    }

    private static string ReadLines(string real, string display, long offset, long limit, int maxChars, CancellationToken cancellationToken)
    {
        var size = new FileInfo(real).Length;
        if (TextFile.LooksBinary(real))
        {
            throw new ToolException(TextFile.BinaryError(display, size));
        }
        const int footerReserve = 200;
        var output = new StringBuilder();
        using var reader = new StreamReader(real, TextFile.StrictUtf8, detectEncodingFromByteOrderMarks: false);
        long lineNumber = 0;
        string? footer = null;
        try
        {
            while (reader.ReadLine() is { } line)
            {
                cancellationToken.ThrowIfCancellationRequested();
                lineNumber++;
                if (line.Contains('\0'))
                {
                    throw new ToolException(TextFile.BinaryError(display, size));
                }
                if (lineNumber < offset)
                {
                    continue;
                }
                if (lineNumber >= offset + limit)
                {
                    footer = $"[Showing lines {offset}-{lineNumber - 1}; the file continues. Read more with offset={lineNumber}.]";
                    break;
                }
                if (line.Length > MaxLineChars)
                {
                    line = string.Concat(line.AsSpan(0, MaxLineChars), $"… [line cut, {line.Length} characters]");
                }
                var formatted = string.Create(CultureInfo.InvariantCulture, $"{lineNumber,6}\t{line}\n");
                if (output.Length + formatted.Length > maxChars - footerReserve)
                {
                    footer = $"[Output cut at {maxChars} characters after line {lineNumber - 1}; the file continues. Read more with offset={lineNumber}.]";
                    break;
                }
                output.Append(formatted);
            }
        }
        catch (DecoderFallbackException)
        {
            throw new ToolException(TextFile.NotUtf8Error(display, size));
        }
        if (lineNumber == 0)
        {
            return $"({display} is empty.)";
        }
        if (lineNumber < offset)
        {
            return $"({display} has {lineNumber} lines; offset {offset} is past its end.)";
        }
        if (footer is not null)
        {
            output.Append(footer);
        }
        var text = output.ToString();
        return text.Length <= maxChars ? text : text[..maxChars];
    }
}
