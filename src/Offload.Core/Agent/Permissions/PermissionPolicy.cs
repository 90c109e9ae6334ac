using System.Text.Json;
using System.Text.RegularExpressions;
using Offload.Agent.Tools;

namespace Offload.Agent.Permissions;

public enum PermissionBehavior
{
    Allow,
    Ask,
    Deny,
}

/// <summary>What to do with one tool call, and why (shown to the user, and to the model on a deny).</summary>
public sealed record PermissionDecision(PermissionBehavior Behavior, string Why, PermissionRule? Rule = null);

/// <summary>
/// Decides each tool call of a task, in this order — the first step that applies wins:
/// <list type="number">
/// <item>deny rules, from any source (for Bash: any simple command of a compound one that matches) → refused;</item>
/// <item>this task's own <c>offload approve --always</c> answers → run;</item>
/// <item>ask rules → the task waits for the user (<c>needs_input</c>);</item>
/// <item>allow rules (for Bash: every simple command covered, none with a substitution) → run;</item>
/// <item>the defaults for background work (<see cref="BackgroundDefaults"/>) → run or ask.</item>
/// </list>
/// The agent loop then asks the user when told to, and the tool runs (Bash in the sandbox).
/// </summary>
public sealed class PermissionPolicy(PermissionRules rules, IEnumerable<PermissionRule> approved, string worktree, string? home, bool bashContained)
{
    private readonly List<PermissionRule> approved = [.. approved];

    /// <summary>Adds an <c>approve --always</c> rule for the rest of the run.</summary>
    public void Approve(PermissionRule rule) => approved.Add(rule);

    public PermissionDecision Decide(string tool, JsonElement input)
    {
        if (rules.Deny.FirstOrDefault(r => Matches(r, tool, input, RuleKind.Restrict)) is { } deny)
        {
            return new PermissionDecision(PermissionBehavior.Deny, $"denied by the rule {deny.Describe()}", deny);
        }

        if (approved.FirstOrDefault(r => Matches(r, tool, input, RuleKind.Allow)) is { } always)
        {
            return new PermissionDecision(PermissionBehavior.Allow, $"allowed by {always.Describe()}", always);
        }

        if (rules.Ask.FirstOrDefault(r => Matches(r, tool, input, RuleKind.Restrict)) is { } ask)
        {
            return new PermissionDecision(PermissionBehavior.Ask, $"the rule {ask.Describe()} asks first", ask);
        }

        if (AllowedByRules(tool, input) is { } allow)
        {
            return new PermissionDecision(PermissionBehavior.Allow, $"allowed by the rule {allow.Describe()}", allow);
        }

        return BackgroundDefaults.Decide(tool, bashContained);
    }

    private PermissionRule? AllowedByRules(string tool, JsonElement input)
    {
        if (ToolInputs.Command(tool, input) is not { } command)
        {
            return rules.Allow.FirstOrDefault(r => Matches(r, tool, input, RuleKind.Allow));
        }

        if (rules.Allow.FirstOrDefault(r => r.Tool == "Bash" && r.Specifier is null) is { } all)
        {
            return all;
        }

        var shell = ShellCommand.Parse(command);
        if (shell.HasSubstitution || shell.Parts.Count == 0)
        {
            return null;
        }

        PermissionRule? last = null;
        foreach (var part in shell.Parts)
        {
            last = rules.Allow.FirstOrDefault(r => r.Tool == "Bash" && BashMatches(r.Specifier!, part));
            if (last is null)
            {
                return null;
            }
        }

        return last;
    }

    private enum RuleKind
    {
        /// <summary>deny and ask: a match anywhere in the call counts.</summary>
        Restrict,
        /// <summary>allow: the whole call must be covered.</summary>
        Allow,
    }

    private bool Matches(PermissionRule rule, string tool, JsonElement input, RuleKind kind)
    {
        if (!Covers(rule.Tool, tool))
        {
            return false;
        }

        if (rule.Specifier is not { } spec)
        {
            return true;
        }

        if (ToolInputs.Command(tool, input) is { } command)
        {
            var shell = ShellCommand.Parse(command);
            return kind == RuleKind.Restrict
                ? shell.AllParts().Any(p => BashMatches(spec, p))
                : !shell.HasSubstitution && shell.Parts.Count > 0 && shell.Parts.All(p => BashMatches(spec, p));
        }

        if (ToolInputs.Path(tool, input) is { } path)
        {
            return PathMatches(spec, path, isDirectory: tool is "Glob" or "Grep");
        }

        if (spec.StartsWith("domain:", StringComparison.Ordinal) && ToolInputs.Url(input) is { } url && Uri.TryCreate(url, UriKind.Absolute, out var uri))
        {
            var domain = spec["domain:".Length..].Trim().ToLowerInvariant();
            return uri.Host == domain || uri.Host.EndsWith("." + domain, StringComparison.Ordinal);
        }

        return false;
    }

    /// <summary>As in Claude Code, <c>Edit</c> rules cover every tool that writes files, <c>Read</c> rules every tool that reads them.</summary>
    private static bool Covers(string ruleTool, string tool) => ruleTool == tool || (ruleTool, tool) switch
    {
        ("Edit", "Write" or "MultiEdit" or "NotebookEdit") => true,
        ("Read", "Glob" or "Grep") => true,
        _ => false,
    };

    /// <summary><c>npm test:*</c> is a prefix (word boundary), <c>*</c> elsewhere any text; anything else the exact command.</summary>
    internal static bool BashMatches(string spec, string part)
    {
        var pattern = string.Join(' ', spec.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries));
        if (pattern.EndsWith(":*", StringComparison.Ordinal))
        {
            var prefix = pattern[..^2].TrimEnd();
            return part == prefix || part.StartsWith(prefix + " ", StringComparison.Ordinal);
        }

        if (pattern.Contains('*'))
        {
            var regex = "^" + Regex.Escape(pattern).Replace(@"\ \*", @"(?:\ .*)?", StringComparison.Ordinal).Replace(@"\*", ".*", StringComparison.Ordinal) + "$";
            return Regex.IsMatch(part, regex, RegexOptions.Singleline | RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
        }

        return part == pattern;
    }

    /// <summary>
    /// gitignore-style path rules: <c>//abs</c> absolute, <c>~/x</c> in the home folder, <c>/x</c> and
    /// <c>./x</c> from the worktree's root (where the settings file sits in the repository), a pattern
    /// without a slash matches a file or folder name at any depth. A rule on a folder covers what is in it.
    /// </summary>
    private bool PathMatches(string spec, string path, bool isDirectory)
    {
        var target = Path.GetFullPath(path, worktree);
        string pattern;
        string @base;
        if (spec.StartsWith("//", StringComparison.Ordinal))
        {
            (@base, pattern) = ("/", spec[2..]);
        }
        else if (spec.StartsWith("~/", StringComparison.Ordinal))
        {
            if (string.IsNullOrEmpty(home))
            {
                return false;
            }

            (@base, pattern) = (home, spec[2..]);
        }
        else if (spec.StartsWith('/'))
        {
            (@base, pattern) = (worktree, spec[1..]);
        }
        else if (spec.StartsWith("./", StringComparison.Ordinal))
        {
            (@base, pattern) = (worktree, spec[2..]);
        }
        else if (!spec.TrimEnd('/').Contains('/'))
        {
            var name = GlobPattern.For(spec.TrimEnd('/'));
            return target.Split('/', StringSplitOptions.RemoveEmptyEntries).Any(name.IsMatch);
        }
        else
        {
            (@base, pattern) = (worktree, spec);
        }

        var relative = Path.GetRelativePath(@base, target);
        if (relative == ".." || relative.StartsWith("../", StringComparison.Ordinal) || Path.IsPathRooted(relative))
        {
            return false;
        }

        var glob = GlobPattern.For(pattern.TrimEnd('/') is { Length: > 0 } p ? p : "**");
        var candidates = new List<string> { relative };
        if (isDirectory)
        {
            candidates.Add(relative == "." ? "_" : relative + "/_");
        }

        for (var parent = Path.GetDirectoryName(relative); !string.IsNullOrEmpty(parent); parent = Path.GetDirectoryName(parent))
        {
            candidates.Add(parent);
        }

        return candidates.Any(glob.IsMatch);
    }
}

/// <summary>
/// What happens to a tool call no rule decides, for work nobody watches (docs/permissions.md).
/// Reading, searching and editing stay inside the worktree (the file tools refuse any other
/// path), so they run. Bash runs when the sandbox contains it; where it cannot (no bubblewrap),
/// each command asks. Tools Offload does not know ask.
/// </summary>
public static class BackgroundDefaults
{
    public static PermissionDecision Decide(string tool, bool bashContained) => tool switch
    {
        "Read" or "Glob" or "Grep" => new(PermissionBehavior.Allow, "reading inside the worktree is allowed by default"),
        "Write" or "Edit" => new(PermissionBehavior.Allow, "editing inside the worktree is allowed by default"),
        "TaskCreate" or "TaskUpdate" or "TaskList" or "TaskGet" => new(PermissionBehavior.Allow, "the plan tools change only the plan"),
        "Agent" => new(PermissionBehavior.Allow, "a subagent's own tool calls are checked one by one"),
        "Bash" when bashContained => new(PermissionBehavior.Allow, "commands run in the sandbox are allowed by default"),
        "Bash" => new(PermissionBehavior.Ask, "the sandbox (bubblewrap) is not available, so every command asks first"),
        _ => new(PermissionBehavior.Ask, $"{tool} is not one of the tools allowed by default"),
    };
}
