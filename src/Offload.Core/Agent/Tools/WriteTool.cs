using System.Text.Json;

namespace Offload.Agent.Tools;

/// <summary>Creates or overwrites a whole file.</summary>
public sealed class WriteTool : ITool
{
    public string Name => "Write";

    public string Description =>
        "Write a file in the worktree, replacing it if it exists and creating missing parent directories. " +
        "Prefer Edit for changing part of an existing file. An existing file must have been Read first in this task (and Read again if it changed since).";

    public JsonElement InputSchema { get; } = ToolInput.Schema("""
        {
          "type": "object",
          "properties": {
            "file_path": { "type": "string", "description": "Path of the file, relative to the worktree or absolute inside it." },
            "content": { "type": "string", "description": "The whole new content of the file." }
          },
          "required": ["file_path", "content"],
          "additionalProperties": false
        }
        """);

    public bool Mutates => true;

    public Task<ToolResult> InvokeAsync(JsonElement input, ToolContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var filePath = ToolInput.RequireString(input, "file_path");
            var content = ToolInput.RequireString(input, "content");
            var root = WorktreePath.Root(context);
            var real = WorktreePath.Resolve(context, filePath, forWrite: true);
            var display = WorktreePath.Display(root, real);
            if (Directory.Exists(real))
            {
                throw new ToolException($"{display} is a directory; give the path of a file.");
            }
            var existed = File.Exists(real);
            if (existed)
            {
                context.Reads?.CheckWritable(real, display);
            }
            Directory.CreateDirectory(Path.GetDirectoryName(real)!);
            File.WriteAllText(real, content, TextFile.Utf8);
            var verb = existed ? "Overwrote" : "Created";
            return Task.FromResult(new ToolResult($"{verb} {display} ({TextFile.FormatSize(TextFile.Utf8.GetByteCount(content))}).", File: FileReads.Stamp(real, display)));
        }
        catch (ToolException e)
        {
            return Task.FromResult(ToolResult.Error(e.Message));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Task.FromResult(ToolResult.Error($"Could not write the file: {e.Message}"));
        }
    }
}
