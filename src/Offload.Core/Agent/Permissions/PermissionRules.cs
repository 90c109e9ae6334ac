using System.Text.Json;
using System.Text.Json.Serialization;

namespace Offload.Agent.Permissions;

/// <summary>
/// The <c>permissions</c> section as Claude Code writes it in <c>settings.json</c>, and as
/// Offload's own config takes it: lists of rules (<c>"allow": ["Bash(npm test:*)"]</c>).
/// </summary>
public sealed record PermissionLists
{
    public List<string> Allow { get; set; } = [];
    public List<string> Ask { get; set; } = [];
    public List<string> Deny { get; set; } = [];

    public PermissionLists Concat(PermissionLists other) => new()
    {
        Allow = [.. Allow, .. other.Allow],
        Ask = [.. Ask, .. other.Ask],
        Deny = [.. Deny, .. other.Deny],
    };
}

/// <summary>
/// Every rule that applies to a task, from all its sources at once. There is no file that
/// overrides another: a rule's list decides, and deny beats ask beats allow (as in Claude Code).
/// </summary>
public sealed record PermissionRules(IReadOnlyList<PermissionRule> Allow, IReadOnlyList<PermissionRule> Ask, IReadOnlyList<PermissionRule> Deny)
{
    public static readonly PermissionRules None = new([], [], []);

    /// <summary>
    /// The rules of a task: the repository's <c>.claude/settings.json</c> and
    /// <c>.claude/settings.local.json</c> (from the user's checkout, never the agent's worktree,
    /// so an agent cannot grant itself anything), the user's <c>~/.claude/settings.json</c>, and
    /// Offload's config.
    /// </summary>
    public static PermissionRules Load(string repoRoot, string? home, PermissionLists? config, string configSource = "Offload's config")
    {
        var files = new List<string>
        {
            Path.Combine(repoRoot, ".claude", "settings.json"),
            Path.Combine(repoRoot, ".claude", "settings.local.json"),
        };
        if (!string.IsNullOrEmpty(home))
        {
            files.Add(Path.Combine(home, ".claude", "settings.json"));
        }

        var rules = None;
        foreach (var file in files.Where(File.Exists))
        {
            rules = rules.With(ReadSettings(file), file);
        }

        return config is null ? rules : rules.With(config, configSource);
    }

    public PermissionRules With(PermissionLists lists, string source) => new(
        [.. Allow, .. lists.Allow.Select(r => PermissionRule.Parse(r, source))],
        [.. Ask, .. lists.Ask.Select(r => PermissionRule.Parse(r, source))],
        [.. Deny, .. lists.Deny.Select(r => PermissionRule.Parse(r, source))]);

    public PermissionRules WithAllow(IEnumerable<PermissionRule> rules) => this with { Allow = [.. Allow, .. rules] };

    private static PermissionLists ReadSettings(string file)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllText(file), Protocol.OffloadJson.Info<SettingsFile>(SettingsJson))?.Permissions ?? new PermissionLists();
        }
        catch (JsonException e)
        {
            throw new PermissionSettingsException($"{file} is not valid JSON ({e.Message}); its permission rules cannot be read. Fix the file or move it aside");
        }
    }

    internal sealed record SettingsFile([property: JsonPropertyName("permissions")] PermissionLists? Permissions);

    private static readonly JsonSerializerOptions SettingsJson = new()
    {
        PropertyNameCaseInsensitive = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        TypeInfoResolver = Protocol.OffloadJsonContext.Default,
    };
}
