using Offload.Engines;
using Offload.Workspace;

namespace Offload.Agent.Subagents;

/// <summary>
/// A kind of subagent the <c>Agent</c> tool can start, as Claude Code defines one: a Markdown file with YAML frontmatter
/// (<c>name</c>, <c>description</c>, <c>tools</c>, <c>model</c>) whose body is the subagent's system prompt.
/// </summary>
/// <param name="Tools">The tools it may call; null: all the task's tools but <c>Agent</c>.</param>
/// <param name="Model">Its model (<c>sonnet</c>/<c>opus</c>/<c>haiku</c>/<c>fable</c>, a full model name, or <c>inherit</c>); null inherits.</param>
/// <param name="Source">Where it was defined (a file path, or <c>built-in</c>).</param>
public sealed record AgentType(string Name, string Description, IReadOnlyList<string>? Tools, string? Model, string SystemPrompt, string Source);

/// <summary>The agent types a task's <c>Agent</c> tool offers: the built-in general-purpose one, the user's, the repository's.</summary>
public static class AgentTypes
{
    public const string GeneralPurpose = "general-purpose";
    private const string Folder = ".claude/agents";

    public static AgentType BuiltIn { get; } = new(
        GeneralPurpose,
        "General-purpose agent for researching complex questions, searching for code, and executing multi-step tasks. " +
        "When you are searching for a keyword or file and are not confident that you will find the right match in the first few tries use this agent to perform the search for you.",
        null, null,
        """
        You are an agent for a coding agent working in the background. Given the user's message, use the tools available
        to complete the task. Do what has been asked; nothing more, nothing less. When you complete the task, reply without
        calling a tool: that reply is your report, and the only thing the agent that started you will see of your work,
        so give it the findings, file paths and results it needs.
        """,
        "built-in");

    /// <summary>
    /// The types for <paramref name="run"/>, by name: the built-in one, then <c>~/.claude/agents/*.md</c>, then the
    /// repository's <c>.claude/agents/*.md</c> (a later one with the same name wins, as in Claude Code). While a new
    /// task's worktree is still being made, the repository's files are read from its base commit (what the checkout writes).
    /// </summary>
    public static async Task<IReadOnlyList<AgentType>> LoadAsync(EngineRun run, CancellationToken cancellationToken)
    {
        var types = new Dictionary<string, AgentType>(StringComparer.Ordinal) { [GeneralPurpose] = BuiltIn };
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        foreach (var (path, text) in ReadFolder(Path.Combine(home, Folder)))
        {
            Add(types, path, text);
        }

        foreach (var (path, text) in await ReadRepositoryAsync(run, cancellationToken))
        {
            Add(types, path, text);
        }

        return [.. types.Values];
    }

    private static void Add(Dictionary<string, AgentType> types, string path, string text)
    {
        if (Parse(text, path) is { } type)
        {
            types[type.Name] = type;
        }
    }

    private static IEnumerable<(string Path, string Text)> ReadFolder(string folder) =>
        Directory.Exists(folder)
            ? Directory.EnumerateFiles(folder, "*.md").Order(StringComparer.Ordinal).Select(f => (f, File.ReadAllText(f)))
            : [];

    private static async Task<IEnumerable<(string Path, string Text)>> ReadRepositoryAsync(EngineRun run, CancellationToken cancellationToken)
    {
        if (run.WorktreeReady.IsCompleted)
        {
            return ReadFolder(Path.Combine(run.Worktree, Folder));
        }

        var task = run.Task;
        GitResult? listed;
        try
        {
            listed = await Git.RunAsync(task.RepoPath, ["ls-tree", "--name-only", "-z", task.BaseCommit, "--", Folder + "/"], cancellationToken: cancellationToken);
        }
        catch (WorkspaceException)
        {
            listed = null;
        }

        var names = listed is { Ok: true } ? listed.Stdout.Split('\0', StringSplitOptions.RemoveEmptyEntries).Where(n => n.EndsWith(".md", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList() : null;
        if (names is null)
        {
            await run.WorktreeReady.WaitAsync(cancellationToken); // git cannot say: read what the checkout wrote
            return ReadFolder(Path.Combine(run.Worktree, Folder));
        }

        var files = names.Count == 0 ? new Dictionary<string, string>() : await GitWorkspace.ReadAtCommitAsync(task.RepoPath, task.BaseCommit, names, cancellationToken);
        return names.Where(n => files?.ContainsKey(n) == true).Select(n => (n, files![n]));
    }

    /// <summary>An agent file; null when it has no frontmatter with a <c>name</c> and a <c>description</c> (Claude Code skips those too).</summary>
    public static AgentType? Parse(string text, string source)
    {
        var lines = text.ReplaceLineEndings("\n").Split('\n');
        if (lines.Length < 2 || lines[0].Trim() != "---")
        {
            return null;
        }

        var end = Array.FindIndex(lines, 1, l => l.Trim() == "---");
        if (end < 0)
        {
            return null;
        }

        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in lines[1..end])
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0 && !char.IsWhiteSpace(line[0]))
            {
                fields[line[..colon].Trim()] = Unquote(line[(colon + 1)..].Trim());
            }
        }

        if (!fields.TryGetValue("name", out var name) || name.Length == 0 || !fields.TryGetValue("description", out var description))
        {
            return null;
        }

        IReadOnlyList<string>? tools = fields.TryGetValue("tools", out var list)
            ? list.Trim('[', ']').Split(',').Select(t => Unquote(t.Trim())).Where(t => t.Length > 0).ToList()
            : null;
        var model = fields.GetValueOrDefault("model") is { Length: > 0 } m ? m : null;
        return new AgentType(name, description, tools is ["*"] ? null : tools, model, string.Join('\n', lines[(end + 1)..]).Trim(), source);
    }

    private static string Unquote(string value) =>
        value.Length >= 2 && (value[0] == '"' || value[0] == '\'') && value[^1] == value[0] ? value[1..^1] : value;
}
