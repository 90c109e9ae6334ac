using System.Collections;
using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Offload.Config;
using Offload.Protocol;

namespace Offload.Redaction;

/// <summary>
/// Keeps the values of secrets Offload knows out of the journal (and so out of every log, live
/// view and resumed conversation): API keys and tokens from the daemon's environment
/// (<c>ANTHROPIC_API_KEY</c>, <c>OPENAI_API_KEY</c>, any <c>*_KEY</c>, <c>*_TOKEN</c>,
/// <c>*SECRET*</c>, <c>*PASSWORD*</c> variable) and keys written in Offload's config. Values shorter
/// than <see cref="MinLength"/> are left alone: too short to be a key, too likely to be common text.
/// A task's own secrets (the values in the files <c>.worktreeinclude</c> copies into its worktree,
/// <see cref="WorktreeIncludeSecrets"/>) are added when its run starts and apply to its events only.
/// Applied once, where the store appends an event.
/// </summary>
public sealed class SecretRedactor
{
    public const int MinLength = 8;

    private volatile IReadOnlyList<(string Name, string Value)> _secrets;

    private readonly ConcurrentDictionary<long, IReadOnlyList<(string Name, string Value)>> _taskSecrets = new();

    public SecretRedactor(IEnumerable<(string Name, string Value)> secrets) => _secrets = Usable(secrets);

    public int Count => _secrets.Count;

    /// <summary>Adds <paramref name="other"/>'s secrets (a changed config's keys): none known before is forgotten.</summary>
    public void AddSecrets(SecretRedactor other) => _secrets = Usable(_secrets.Concat(other._secrets));

    /// <summary>Secrets of one task, redacted from its events (on top of the daemon's); replaces what was added before.</summary>
    public void AddTaskSecrets(long taskId, IEnumerable<(string Name, string Value)> secrets) =>
        _taskSecrets[taskId] = Usable(secrets.Concat(_secrets));

    private static List<(string Name, string Value)> Usable(IEnumerable<(string Name, string Value)> secrets) =>
        secrets.Where(s => s.Value.Length >= MinLength)
            .DistinctBy(s => s.Value, StringComparer.Ordinal)
            .OrderByDescending(s => s.Value.Length) // a key that contains another is replaced whole
            .ToList();

    public static SecretRedactor From(IDictionary environment, OffloadConfig config)
    {
        var secrets = new List<(string, string)>();
        foreach (DictionaryEntry entry in environment)
        {
            if (entry.Key is string name && entry.Value is string value && IsSecretName(name))
            {
                secrets.Add((name, value));
            }
        }

        foreach (var (provider, settings) in config.Models.Providers)
        {
            if (settings.ApiKey is { } key)
            {
                secrets.Add(($"models.providers.{provider}.apiKey", key));
            }

            if (settings.ApiKeyEnv is { } variable && environment[variable] is string value)
            {
                secrets.Add((variable, value));
            }
        }

        return new SecretRedactor(secrets);
    }

    public static bool IsSecretName(string name)
    {
        var upper = name.ToUpperInvariant();
        return upper.EndsWith("_KEY", StringComparison.Ordinal) || upper.EndsWith("_TOKEN", StringComparison.Ordinal)
            || upper.Contains("SECRET", StringComparison.Ordinal) || upper.Contains("PASSWORD", StringComparison.Ordinal)
            || upper is "ANTHROPIC_API_KEY" or "OPENAI_API_KEY" or "ANTHROPIC_AUTH_TOKEN";
    }

    public string Redact(string text) => Redact(text, _secrets);

    /// <summary><see cref="Redact(string)"/> with the task's own secrets too (<see cref="AddTaskSecrets"/>).</summary>
    public string RedactForTask(long taskId, string text) => Redact(text, _taskSecrets.TryGetValue(taskId, out var own) ? own : _secrets);

    private static string Redact(string text, IReadOnlyList<(string Name, string Value)> secrets)
    {
        foreach (var (name, value) in secrets)
        {
            if (text.Contains(value, StringComparison.Ordinal))
            {
                text = text.Replace(value, Placeholder(name), StringComparison.Ordinal);
            }
        }

        return text;
    }

    /// <summary>
    /// The event with every known secret replaced, wherever in it the value appears; the same instance
    /// when none does. The full output a tool result points to (a spill file) is redacted in place.
    /// </summary>
    public AgentEvent Redact(AgentEvent e)
    {
        var secrets = _taskSecrets.TryGetValue(e.TaskId, out var own) ? own : _secrets;
        if (secrets.Count == 0)
        {
            return e;
        }

        if (e is ToolResulted { FullOutputPath: { } spill } && File.Exists(spill) && File.ReadAllText(spill) is var full && Redact(full, secrets) is var clean && clean != full)
        {
            File.WriteAllText(spill, clean);
        }

        var json = JsonSerializer.Serialize(e, OffloadJson.Info<AgentEvent>());
        if (!secrets.Any(secret => json.Contains(secret.Value, StringComparison.Ordinal) || json.Contains(Encoded(secret.Value), StringComparison.Ordinal)))
        {
            return e;
        }

        var node = JsonNode.Parse(json)!;
        RedactStrings(node, secrets);
        return node.Deserialize(OffloadJson.Info<AgentEvent>())!;
    }

    /// <summary>Replaces secrets inside string values only, so the event's shape (names, the type) never changes.</summary>
    private static void RedactStrings(JsonNode node, IReadOnlyList<(string Name, string Value)> secrets)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (name, child) in obj.ToList())
                {
                    if (child is JsonValue value && value.TryGetValue<string>(out var text))
                    {
                        obj[name] = Redact(text, secrets);
                    }
                    else if (child is not null)
                    {
                        RedactStrings(child, secrets);
                    }
                }

                break;
            case JsonArray array:
                for (var i = 0; i < array.Count; i++)
                {
                    if (array[i] is JsonValue value && value.TryGetValue<string>(out var text))
                    {
                        array[i] = Redact(text, secrets);
                    }
                    else if (array[i] is { } child)
                    {
                        RedactStrings(child, secrets);
                    }
                }

                break;
        }
    }

    private static string Encoded(string value) => JsonSerializer.Serialize(value, OffloadJson.Info<string>())[1..^1];

    private static string Placeholder(string name) => $"[redacted {name}]";
}
