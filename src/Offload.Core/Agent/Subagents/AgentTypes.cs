using Offload.Engines;
using Offload.Workspace;

namespace Offload.Agent.Subagents;

/// <summary>
/// A kind of subagent the <c>Agent</c> tool can start, as Claude Code defines one: a Markdown file with YAML frontmatter
/// (<c>name</c>, <c>description</c>, <c>tools</c>, <c>disallowedTools</c>, <c>model</c>, <c>maxTurns</c>) whose body is the
/// subagent's system prompt.
/// </summary>
/// <param name="Tools">The tools it may call; null: all the task's tools but <c>Agent</c>.</param>
/// <param name="Model">Its model (<c>sonnet</c>/<c>opus</c>/<c>haiku</c>/<c>fable</c>, a full model name, or <c>inherit</c>); null inherits.</param>
/// <param name="Source">Where it was defined (a file path, or <c>built-in</c>).</param>
public sealed record AgentType(string Name, string Description, IReadOnlyList<string>? Tools, string? Model, string SystemPrompt, string Source)
{
    /// <summary>Tools taken out of its set (<see cref="Tools"/>, or all): as in Claude Code, they are removed first, whether or not <c>tools</c> is set.</summary>
    public IReadOnlyList<string> DisallowedTools { get; init; } = [];

    /// <summary>The model calls it may make before it is stopped (its own, across restarts); null: no limit but the task's.</summary>
    public int? MaxTurns { get; init; }

    /// <summary>Why its file cannot be used as written (the file, the field, the value); a call of it gets this as its error instead of running.</summary>
    public string? Invalid { get; init; }

    public bool Allows(string tool) => !DisallowedTools.Contains(tool) && (Tools is null || Tools.Contains(tool));
}

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

    /// <param name="root">Where the names are given from (the worktree's files are named as in the repository: <c>.claude/agents/x.md</c>); null: whole paths.</param>
    private static IEnumerable<(string Path, string Text)> ReadFolder(string folder, string? root = null) =>
        Directory.Exists(folder)
            ? Directory.EnumerateFiles(folder, "*.md").Order(StringComparer.Ordinal).Select(f => (root is null ? f : Path.GetRelativePath(root, f), File.ReadAllText(f)))
            : [];

    private static async Task<IEnumerable<(string Path, string Text)>> ReadRepositoryAsync(EngineRun run, CancellationToken cancellationToken)
    {
        if (run.WorktreeReady.IsCompleted)
        {
            return ReadFolder(Path.Combine(run.Worktree, Folder), run.Worktree);
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
            return ReadFolder(Path.Combine(run.Worktree, Folder), run.Worktree);
        }

        var files = names.Count == 0 ? new Dictionary<string, string>() : await GitWorkspace.ReadAtCommitAsync(task.RepoPath, task.BaseCommit, names, cancellationToken);
        return names.Where(n => files?.ContainsKey(n) == true).Select(n => (n, files![n]));
    }

    /// <summary>
    /// An agent file; null when it has no frontmatter with a <c>name</c> and a <c>description</c> (Claude Code skips those
    /// too). Lists (<c>tools</c>, <c>disallowedTools</c>) may be written <c>Read, Grep</c>, <c>[Read, Grep]</c> or as a YAML
    /// block of <c>- Read</c> lines. A value Offload cannot honour (a <c>maxTurns</c> that is not a positive integer) makes
    /// the type <see cref="AgentType.Invalid"/> rather than run with less than the file says: Claude Code ignores such a
    /// value, which would let a subagent run without the limit its author set.
    /// </summary>
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
        var items = new Dictionary<string, List<string>>(StringComparer.Ordinal); // the "- item" lines under a key with no value
        string? key = null;
        foreach (var line in lines[1..end])
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (line.Length > 0 && !char.IsWhiteSpace(line[0]) && line[0] != '-' && colon > 0)
            {
                key = line[..colon].Trim();
                fields[key] = Unquote(line[(colon + 1)..].Trim());
            }
            else if (key is not null && fields[key].Length == 0 && line.TrimStart() is ['-', ..] item)
            {
                (items.TryGetValue(key, out var list) ? list : items[key] = []).Add(Unquote(item[1..].Trim()));
            }
        }

        if (!fields.TryGetValue("name", out var name) || name.Length == 0 || !fields.TryGetValue("description", out var description))
        {
            return null;
        }

        IReadOnlyList<string>? List(string field) =>
            items.TryGetValue(field, out var block) ? block
            : fields.TryGetValue(field, out var inline) ? inline.Trim('[', ']').Split(',').Select(t => Unquote(t.Trim())).Where(t => t.Length > 0).ToList()
            : null;

        var tools = List("tools");
        var model = fields.GetValueOrDefault("model") is { Length: > 0 } m ? m : null;
        string? invalid = null;
        int? maxTurns = null;
        if (fields.TryGetValue("maxTurns", out var turns))
        {
            if (int.TryParse(turns, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n > 0)
            {
                maxTurns = n;
            }
            else
            {
                invalid = $"{source} has invalid maxTurns '{turns}'; it must be a positive integer (fix the file: the task reads it when it next starts)";
            }
        }

        return new AgentType(name, description, tools is ["*"] ? null : tools, model, string.Join('\n', lines[(end + 1)..]).Trim(), source)
        {
            DisallowedTools = List("disallowedTools") ?? [],
            MaxTurns = maxTurns,
            Invalid = invalid,
        };
    }

    private static string Unquote(string value) =>
        value.Length >= 2 && (value[0] == '"' || value[0] == '\'') && value[^1] == value[0] ? value[1..^1] : value;
}
