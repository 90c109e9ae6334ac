using System.Text.Json;

namespace Offload.Agent.Tools;

/// <summary>Replaces an exact string in a file; the string must be unique so the edit lands where the model means.</summary>
public sealed class EditTool : ITool
{
    public string Name => "Edit";

    public string Description =>
        "Replace an exact piece of text in a file of the worktree. old_string must match the file exactly " +
        "(whitespace and indentation included) and occur once, unless replace_all is true; " +
        "add surrounding lines to old_string to make it unique. The file must have been Read first in this task (and Read again if it changed since).";

    public JsonElement InputSchema { get; } = ToolInput.Schema("""
        {
          "type": "object",
          "properties": {
            "file_path": { "type": "string", "description": "Path of the file, relative to the worktree or absolute inside it." },
            "old_string": { "type": "string", "description": "The exact text to replace." },
            "new_string": { "type": "string", "description": "The text to put in its place; must differ from old_string." },
            "replace_all": { "type": "boolean", "default": false, "description": "Replace every occurrence instead of exactly one." }
          },
          "required": ["file_path", "old_string", "new_string"],
          "additionalProperties": false
        }
        """);

    public bool Mutates => true;

    public Task<ToolResult> InvokeAsync(JsonElement input, ToolContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var filePath = ToolInput.RequireString(input, "file_path");
            var oldString = ToolInput.RequireString(input, "old_string");
            var newString = ToolInput.RequireString(input, "new_string");
            var replaceAll = ToolInput.OptionalBool(input, "replace_all") ?? false;
            var root = WorktreePath.Root(context);
            var real = WorktreePath.Resolve(context, filePath, forWrite: true);
            var display = WorktreePath.Display(root, real);
            if (oldString.Length == 0)
            {
                throw new ToolException("old_string is empty. To create a file or replace all of it, use Write.");
            }
            if (oldString == newString)
            {
                throw new ToolException("old_string and new_string are identical; there is nothing to change.");
            }
            if (Directory.Exists(real))
            {
                throw new ToolException($"{display} is a directory, not a file.");
            }
            if (!File.Exists(real))
            {
                throw new ToolException($"File does not exist: {display}. Use Write to create it.");
            }
            context.Reads?.CheckWritable(real, display);
            var text = TextFile.ReadAllStrict(real, display);
            var count = CountOccurrences(text, oldString);
            if (count == 0)
            {
                throw new ToolException($"old_string was not found in {display}. It must match exactly, including whitespace and indentation; Read the file to copy the text.");
            }
            if (count > 1 && !replaceAll)
            {
                throw new ToolException($"old_string occurs {count} times in {display}. Include more surrounding lines to make it unique, or set replace_all to true to replace every occurrence.");
            }
            var updated = text.Replace(oldString, newString, StringComparison.Ordinal);
            File.WriteAllText(real, updated, TextFile.Utf8);
            return Task.FromResult(new ToolResult(count == 1
                ? $"Edited {display}: replaced 1 occurrence."
                : $"Edited {display}: replaced {count} occurrences.", File: FileReads.Stamp(real, display)));
        }
        catch (ToolException e)
        {
            return Task.FromResult(ToolResult.Error(e.Message));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Task.FromResult(ToolResult.Error($"Could not edit the file: {e.Message}"));
        }
    }

    private static int CountOccurrences(string text, string value)
    {
        var count = 0;
        for (var index = text.IndexOf(value, StringComparison.Ordinal); index >= 0; index = text.IndexOf(value, index + value.Length, StringComparison.Ordinal))
        {
            count++;
        }
        return count;
    }
}
