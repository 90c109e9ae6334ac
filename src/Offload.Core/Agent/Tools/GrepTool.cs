using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Offload.Agent.Tools;

/// <summary>Searches the text files of the worktree with a .NET regular expression.</summary>
public sealed class GrepTool : ITool
{
    public const int DefaultHeadLimit = 250;
    public const long MaxFileBytes = 16L * 1024 * 1024;
    private const int MaxLineChars = 500;

    public string Name => "Grep";

    public string Description =>
        "Search the contents of the worktree's text files with a regular expression (.NET syntax). " +
        "output_mode: \"files_with_matches\" (default) lists matching files, newest first; \"content\" shows matching lines; \"count\" gives matches per file. " +
        "Narrow with path and glob (e.g. \"*.cs\"); -i ignores case, -n shows line numbers in content mode (default on). " +
        $"head_limit caps the entries shown (default {DefaultHeadLimit}). Binary files, .git and what .gitignore excludes (node_modules, build output) " +
        "are skipped, unless no_ignore is true or path names an ignored file or directory.";

    public JsonElement InputSchema { get; } = ToolInput.Schema("""
        {
          "type": "object",
          "properties": {
            "pattern": { "type": "string", "description": "The regular expression to search for." },
            "path": { "type": "string", "description": "File or directory to search; the worktree root if omitted." },
            "glob": { "type": "string", "description": "Only files matching this glob, e.g. \"*.cs\" or \"src/**/*.{ts,tsx}\"." },
            "output_mode": { "type": "string", "enum": ["files_with_matches", "content", "count"], "description": "What to show; files_with_matches if omitted." },
            "-i": { "type": "boolean", "description": "Ignore case." },
            "-n": { "type": "boolean", "description": "Show line numbers (content mode)." },
            "head_limit": { "type": "integer", "description": "Show only the first N entries." },
            "no_ignore": { "type": "boolean", "description": "Also search files that .gitignore excludes (like rg --no-ignore)." }
          },
          "required": ["pattern"],
          "additionalProperties": false
        }
        """);

    public bool Mutates => false;

    public Task<ToolResult> InvokeAsync(JsonElement input, ToolContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var patternText = ToolInput.RequireString(input, "pattern");
            var path = ToolInput.OptionalString(input, "path");
            var globText = ToolInput.OptionalString(input, "glob");
            var mode = ToolInput.OptionalString(input, "output_mode") ?? "files_with_matches";
            var ignoreCase = ToolInput.OptionalBool(input, "-i") ?? false;
            var lineNumbers = ToolInput.OptionalBool(input, "-n") ?? true;
            var headLimit = ToolInput.OptionalInteger(input, "head_limit") ?? DefaultHeadLimit;
            var noIgnore = ToolInput.OptionalBool(input, "no_ignore") ?? false;
            if (mode is not ("files_with_matches" or "content" or "count"))
            {
                throw new ToolException($"Unknown output_mode \"{mode}\"; use files_with_matches, content or count.");
            }
            if (headLimit <= 0)
            {
                throw new ToolException("`head_limit` must be a positive number.");
            }
            Regex regex;
            try
            {
                regex = new Regex(patternText, RegexOptions.CultureInvariant | (ignoreCase ? RegexOptions.IgnoreCase : 0), TimeSpan.FromSeconds(2));
            }
            catch (ArgumentException e)
            {
                throw new ToolException($"Invalid regular expression: {e.Message}");
            }
            var glob = globText is null ? null : GlobPattern.For(globText);
            var root = WorktreePath.Root(context);
            var target = path is null ? root : WorktreePath.Resolve(context, path, forWrite: false);
            IEnumerable<FileInfo> files = File.Exists(target) ? [new FileInfo(target)]
                : Directory.Exists(target) ? FileWalker.Files(context, target, respectGitIgnore: !noIgnore, cancellationToken)
                : throw new ToolException($"{path} does not exist.");
            var searchBase = Directory.Exists(target) ? target : Path.GetDirectoryName(target)!;

            // Most files do not match: one search of the whole text rules them out before the file is cut into lines.
            // Line by line and whole text agree for what a line can match, except where a pattern names the text's
            // own start or end (\A, \z, \Z, \G) or a line ends in \r; those files go line by line.
            var wholeText = patternText.Contains("\\A", StringComparison.Ordinal) || patternText.Contains("\\z", StringComparison.Ordinal)
                || patternText.Contains("\\Z", StringComparison.Ordinal) || patternText.Contains("\\G", StringComparison.Ordinal)
                ? null
                : new Regex(patternText, regex.Options | RegexOptions.Multiline, TimeSpan.FromSeconds(2));
            var results = new System.Collections.Concurrent.ConcurrentBag<(string Path, DateTime Modified, List<string> Lines, int Count)>();
            var parallel = new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount, CancellationToken = cancellationToken };
            Parallel.ForEach(files, parallel, file =>
            {
                var relative = Path.GetRelativePath(searchBase, file.FullName);
                if (glob is not null && !glob.IsMatch(glob.HasDirectory ? relative : file.Name))
                {
                    return;
                }
                if (Readable(context, file) is not { } text || (wholeText is not null && !text.Contains('\r') && !wholeText.IsMatch(text)))
                {
                    return;
                }
                var display = Path.GetRelativePath(root, file.FullName);
                var lines = new List<string>();
                var count = 0;
                var lineNumber = 0;
                foreach (var rawLine in text.Split('\n'))
                {
                    lineNumber++;
                    var line = rawLine.TrimEnd('\r');
                    if (!regex.IsMatch(line))
                    {
                        continue;
                    }
                    count++;
                    if (mode == "content")
                    {
                        var shown = line.Length > MaxLineChars ? string.Concat(line.AsSpan(0, MaxLineChars), "… [line cut]") : line;
                        lines.Add(lineNumbers ? string.Create(CultureInfo.InvariantCulture, $"{display}:{lineNumber}:{shown}") : $"{display}:{shown}");
                    }
                    else if (mode == "files_with_matches")
                    {
                        break;
                    }
                }
                if (count > 0)
                {
                    results.Add((display, file.LastWriteTimeUtc, lines, count));
                }
            });
            return Task.FromResult(new ToolResult(TextFile.Cap(Format(results, mode, (int)Math.Min(headLimit, int.MaxValue)), context.MaxOutputChars)));
        }
        catch (ToolException e)
        {
            return Task.FromResult(ToolResult.Error(e.Message));
        }
        catch (Exception e) when (e is RegexMatchTimeoutException || (e is AggregateException a && a.InnerExceptions.Any(i => i is RegexMatchTimeoutException)))
        {
            return Task.FromResult(ToolResult.Error("The regular expression took too long on a line (catastrophic backtracking?); simplify it."));
        }
    }

    private static string Format(IReadOnlyCollection<(string Path, DateTime Modified, List<string> Lines, int Count)> results, string mode, int headLimit)
    {
        if (results.Count == 0)
        {
            return "No matches found.";
        }
        var output = new StringBuilder();
        int total;
        switch (mode)
        {
            case "content":
                var lines = results.OrderBy(r => r.Path, StringComparer.Ordinal).SelectMany(r => r.Lines).ToList();
                total = lines.Count;
                foreach (var line in lines.Take(headLimit))
                {
                    output.Append(line).Append('\n');
                }
                break;
            case "count":
                total = results.Count;
                foreach (var result in results.OrderBy(r => r.Path, StringComparer.Ordinal).Take(headLimit))
                {
                    output.Append(CultureInfo.InvariantCulture, $"{result.Path}:{result.Count}\n");
                }
                output.Append(CultureInfo.InvariantCulture, $"{results.Sum(r => r.Count)} matches in {results.Count} files\n");
                break;
            default:
                total = results.Count;
                output.Append(CultureInfo.InvariantCulture, $"Found {results.Count} files\n");
                foreach (var result in results.OrderByDescending(r => r.Modified).ThenBy(r => r.Path, StringComparer.Ordinal).Take(headLimit))
                {
                    output.Append(result.Path).Append('\n');
                }
                break;
        }
        if (total > headLimit)
        {
            output.Append(CultureInfo.InvariantCulture, $"[Showing the first {headLimit} of {total} entries; raise head_limit or narrow the search.]\n");
        }
        return output.ToString().TrimEnd('\n');
    }

    /// <summary>The file's text, or null for what Grep skips: binary, too large, unreadable, or a symlink leading outside.</summary>
    private static string? Readable(ToolContext context, FileInfo file)
    {
        try
        {
            var real = file.LinkTarget is null ? file.FullName : WorktreePath.Resolve(context, file.FullName, forWrite: false);
            if (new FileInfo(real).Length > MaxFileBytes)
            {
                return null;
            }
            var bytes = File.ReadAllBytes(real);
            return TextFile.LooksBinary(bytes.AsSpan(0, Math.Min(bytes.Length, TextFile.SniffBytes))) ? null : Encoding.UTF8.GetString(bytes);
        }
        catch (Exception e) when (e is ToolException or IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
