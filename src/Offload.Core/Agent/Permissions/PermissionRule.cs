using System.Text.Json;

namespace Offload.Agent.Permissions;

/// <summary>
/// One entry of a <c>permissions.allow</c> / <c>ask</c> / <c>deny</c> list in Claude Code's syntax:
/// a tool name, optionally with a specifier in parentheses — <c>Bash</c>, <c>Bash(npm test:*)</c>,
/// <c>Edit(src/**)</c>, <c>Read(./secrets/**)</c>, <c>WebFetch(domain:example.com)</c>.
/// <see cref="Source"/> says where it was written, for the reason shown to the user.
/// </summary>
public sealed record PermissionRule(string Tool, string? Specifier, string Source = "")
{
    public static PermissionRule Parse(string text, string source = "")
    {
        var rule = text.Trim();
        var open = rule.IndexOf('(', StringComparison.Ordinal);
        if (open < 0)
        {
            return Valid(rule, null);
        }

        if (!rule.EndsWith(')'))
        {
            throw new PermissionSettingsException($"the permission rule '{text}' in {source} has no closing parenthesis");
        }

        var specifier = rule[(open + 1)..^1].Trim();
        return Valid(rule[..open].Trim(), specifier is "" or "*" ? null : specifier);

        PermissionRule Valid(string tool, string? spec) =>
            tool.Length > 0 && tool.All(c => char.IsLetterOrDigit(c) || c is '_' or '-' or '.')
                ? new PermissionRule(tool, spec, source)
                : throw new PermissionSettingsException($"'{text}' in {source} is not a permission rule (expected e.g. Bash, Bash(npm test:*), Edit(src/**))");
    }

    /// <summary>
    /// The allow rule <c>offload approve --always</c> adds for the rest of a task: narrow on purpose —
    /// the exact command for Bash, the exact file for the file tools (<c>Edit</c> covers <c>Write</c>).
    /// </summary>
    public static PermissionRule AlwaysAllowFor(string tool, JsonElement input, string? worktree = null)
    {
        var source = "an earlier `offload approve --always`";
        var ruleTool = tool switch
        {
            "Write" => "Edit",
            "Glob" or "Grep" => "Read",
            _ => tool,
        };
        return ToolInputs.Command(tool, input) is { } command
            ? new PermissionRule("Bash", command, source)
            : ToolInputs.Path(tool, input) is { } path
                ? new PermissionRule(ruleTool, ToolInputs.RuleFor(path, worktree), source)
                : new PermissionRule(tool, null, source);
    }

    public override string ToString() => Specifier is null ? Tool : $"{Tool}({Specifier})";

    /// <summary>The rule and where it came from, as a reason line.</summary>
    public string Describe() => Source.Length == 0 ? ToString() : $"{this} from {Source}";
}

/// <summary>A settings file or rule that cannot be read: the task stops rather than run with fewer rules than the user wrote.</summary>
public sealed class PermissionSettingsException(string message) : Exception(message);
