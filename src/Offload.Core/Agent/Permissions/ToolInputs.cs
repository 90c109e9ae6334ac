using System.Text.Json;

namespace Offload.Agent.Permissions;

/// <summary>What a rule looks at in a tool call: Bash's command, the file tools' path, a fetch's URL.</summary>
internal static class ToolInputs
{
    public static string? Command(string tool, JsonElement input) =>
        tool == "Bash" ? String(input, "command") : null;

    /// <summary>The path a file tool reads or writes; Glob and Grep search their <c>path</c>, the worktree by default.</summary>
    public static string? Path(string tool, JsonElement input) => tool switch
    {
        "Read" or "Write" or "Edit" or "MultiEdit" or "NotebookEdit" => String(input, "file_path") ?? String(input, "notebook_path"),
        "Glob" or "Grep" => String(input, "path") ?? ".",
        _ => null,
    };

    public static string? Url(JsonElement input) => String(input, "url");

    /// <summary>A path as a rule specifier: <c>/rel</c> inside the worktree, <c>//abs</c> outside it.</summary>
    public static string RuleFor(string path, string? worktree)
    {
        if (worktree is null)
        {
            return System.IO.Path.IsPathRooted(path) ? "/" + path : path;
        }

        var full = System.IO.Path.GetFullPath(path, worktree);
        var relative = System.IO.Path.GetRelativePath(worktree, full);
        return relative == "." ? "/**" : relative.StartsWith("..", StringComparison.Ordinal) || System.IO.Path.IsPathRooted(relative) ? "/" + full : "/" + relative;
    }

    private static string? String(JsonElement input, string name) =>
        input.ValueKind == JsonValueKind.Object && input.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;
}
