using System.Text;
using System.Text.Json;

namespace Offload.Agent.Tools;

/// <summary>Finds files by name pattern, newest first.</summary>
public sealed class GlobTool : ITool
{
    public const int MaxResults = 100;

    public string Name => "Glob";

    public string Description =>
        "Find files in the worktree whose path matches a glob pattern such as \"**/*.cs\" or \"src/**/*.{ts,tsx}\". " +
        "The pattern is relative to path (default: the worktree root). " +
        $"Returns paths relative to the worktree, most recently modified first, at most {MaxResults}. " +
        "Skips .git and what .gitignore excludes (node_modules, build output) unless no_ignore is true or path names an ignored directory.";

    public JsonElement InputSchema { get; } = ToolInput.Schema("""
        {
          "type": "object",
          "properties": {
            "pattern": { "type": "string", "description": "The glob to match, e.g. \"**/*.cs\"." },
            "path": { "type": "string", "description": "Directory to search in; the worktree root if omitted." },
            "no_ignore": { "type": "boolean", "description": "Also list files that .gitignore excludes (like rg --no-ignore)." }
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
            var noIgnore = ToolInput.OptionalBool(input, "no_ignore") ?? false;
            var root = WorktreePath.Root(context);
            var directory = path is null ? root : WorktreePath.Resolve(context, path, forWrite: false);
            if (!Directory.Exists(directory))
            {
                throw new ToolException($"{path} is not a directory of the worktree.");
            }
            if (Path.IsPathRooted(patternText))
            {
                var absolutePattern = patternText;
                if (!absolutePattern.StartsWith(directory.TrimEnd('/') + "/", StringComparison.Ordinal))
                {
                    throw new ToolException($"The pattern {patternText} is outside the searched directory {WorktreePath.Display(root, directory)}; give a pattern relative to it.");
                }
                patternText = absolutePattern[(directory.TrimEnd('/').Length + 1)..];
            }
            var pattern = GlobPattern.For(patternText);
            var matches = FileWalker.Files(context, directory, respectGitIgnore: !noIgnore, cancellationToken)
                .Where(file => pattern.IsMatch(Path.GetRelativePath(directory, file.FullName)))
                .Select(file => (Path: Path.GetRelativePath(root, file.FullName), Modified: ModifiedAt(file)))
                .OrderByDescending(match => match.Modified)
                .ThenBy(match => match.Path, StringComparer.Ordinal)
                .ToList();
            if (matches.Count == 0)
            {
                return Task.FromResult(new ToolResult("No files found."));
            }
            var output = new StringBuilder();
            foreach (var match in matches.Take(MaxResults))
            {
                output.Append(match.Path).Append('\n');
            }
            if (matches.Count > MaxResults)
            {
                output.Append($"[Showing {MaxResults} of {matches.Count} files, newest first. Use a narrower pattern or path.]\n");
            }
            return Task.FromResult(new ToolResult(TextFile.Cap(output.ToString().TrimEnd('\n'), context.MaxOutputChars)));
        }
        catch (ToolException e)
        {
            return Task.FromResult(ToolResult.Error(e.Message));
        }
        catch (ArgumentException e)
        {
            return Task.FromResult(ToolResult.Error($"Invalid glob pattern: {e.Message}"));
        }
    }

    private static DateTime ModifiedAt(FileInfo file)
    {
        try
        {
            return file.LastWriteTimeUtc;
        }
        catch (IOException)
        {
            return DateTime.MinValue;
        }
    }
}
