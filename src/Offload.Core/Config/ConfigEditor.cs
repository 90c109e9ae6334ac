using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using Offload.Protocol;

namespace Offload.Config;

/// <summary>
/// <c>offload config get|set|unset KEY</c>: one setting of a config file by its dotted name (<c>limits.maxTurns</c>), checked
/// against the settings Offload has (<see cref="OffloadConfig"/>'s own shape, so a misspelt key is refused, not written)
/// and written only when the whole file still loads: a value that would not, changes nothing. A map's entries are
/// named by their key (<c>models.contextWindow.vllm:my-model</c>).
/// </summary>
public static class ConfigEditor
{
    /// <summary>The settings a repository's <c>.offload/config.json</c> may set (<see cref="OffloadConfig.WithRepository"/>); the rest are the user's.</summary>
    public static readonly IReadOnlyList<string> RepositoryKeys = ["limits", "permissions", "check", "checkTries", "setup", "setupNetwork"];

    /// <summary>The key spelt as the file spells it (<c>limits.maxTurns</c> for <c>Limits.MaxTurns</c>), or a <see cref="ConfigKeyException"/>.</summary>
    public static IReadOnlyList<string> Resolve(string key)
    {
        var parts = key.Split('.');
        if (parts.Any(p => p.Length == 0))
        {
            throw new ConfigKeyException($"'{key}' is not a setting's name: names are words joined by dots, like limits.maxTurns");
        }

        var names = new List<string>();
        var info = Info(typeof(OffloadConfig));
        for (var i = 0; i < parts.Length; i++)
        {
            if (info.Kind == JsonTypeInfoKind.Dictionary)
            {
                // A map's key is the user's (a model, a provider): the rest of the name is read inside its value.
                names.Add(parts[i]);
                info = Info(info.ElementType!);
                continue;
            }

            var property = info.Kind == JsonTypeInfoKind.Object
                ? info.Properties.FirstOrDefault(p => string.Equals(p.Name, parts[i], StringComparison.OrdinalIgnoreCase))
                : null;
            if (property is null)
            {
                var under = string.Join('.', names);
                var known = info.Kind == JsonTypeInfoKind.Object ? string.Join(", ", info.Properties.Select(p => p.Name)) : null;
                throw new ConfigKeyException(known is null
                    ? $"{under} is a single value: it has no setting '{parts[i]}'"
                    : $"there is no setting '{(under.Length == 0 ? parts[i] : under + "." + parts[i])}'; {(under.Length == 0 ? "the settings are" : under + " has")}: {known}");
            }

            names.Add(property.Name);
            info = Info(property.PropertyType);
        }

        return names;
    }

    /// <summary>Every setting's name with its default (null: not set), maps and the sections read from one place as one entry each.</summary>
    public static IReadOnlyList<(string Key, string Default)> Keys()
    {
        var defaults = JsonSerializer.SerializeToNode(new OffloadConfig(), OffloadJson.Info<OffloadConfig>(OffloadConfig.ConfigJson));
        var keys = new List<(string, string)>();
        Walk(Info(typeof(OffloadConfig)), "", defaults);
        return keys;

        void Walk(JsonTypeInfo info, string prefix, JsonNode? node)
        {
            foreach (var property in info.Properties)
            {
                var name = prefix + property.Name;
                var child = node is JsonObject o ? o[property.Name] : null;
                var type = Info(property.PropertyType);
                if (type.Kind == JsonTypeInfoKind.Object)
                {
                    Walk(type, name + ".", child);
                }
                else
                {
                    keys.Add((name, child?.ToJsonString() ?? "null"));
                }
            }
        }
    }

    /// <summary>The value <paramref name="config"/> has for the key (defaults included), as JSON; null when it is not set.</summary>
    public static JsonNode? Get(OffloadConfig config, string key)
    {
        var names = Resolve(key);
        JsonNode? node = JsonSerializer.SerializeToNode(config, OffloadJson.Info<OffloadConfig>(OffloadConfig.ConfigJson));
        foreach (var name in names)
        {
            node = node is JsonObject o ? o[name] : null;
        }

        return node;
    }

    /// <summary>
    /// Sets (or, with a null <paramref name="value"/>, removes) the key in the file at <paramref name="path"/> and writes it
    /// back, whole, in one rename. <paramref name="value"/> is JSON (<c>8</c>, <c>true</c>, <c>["npm ci"]</c>), or else
    /// text. Returns the value as written. Throws <see cref="ConfigKeyException"/> or <see cref="ConfigException"/>
    /// without touching the file.
    /// </summary>
    public static JsonNode? Set(string path, string key, string? value)
    {
        var names = Resolve(key);
        var text = File.Exists(path) ? File.ReadAllText(path) : "";
        if (HasComments(text))
        {
            throw new ConfigKeyException($"{path} has comments, which writing it would drop; nothing was changed. Edit the file itself (the daemon reads it again when it changes)");
        }

        JsonObject root;
        try
        {
            root = string.IsNullOrWhiteSpace(text) ? [] : JsonNode.Parse(text, documentOptions: new() { AllowTrailingCommas = true }) as JsonObject
                ?? throw new ConfigException(path, null, null, "it is not a JSON object ({…})");
        }
        catch (JsonException e)
        {
            throw ConfigException.FromJson(path, e);
        }

        var parent = root;
        foreach (var name in names.SkipLast(1))
        {
            var existing = parent.FirstOrDefault(p => string.Equals(p.Key, name, StringComparison.OrdinalIgnoreCase));
            if (existing.Value is JsonObject child)
            {
                parent = child;
            }
            else if (value is null)
            {
                return null; // nothing to remove
            }
            else
            {
                parent.Remove(existing.Key ?? name);
                parent[name] = parent = [];
            }
        }

        var leaf = names[^1];
        var present = parent.FirstOrDefault(p => string.Equals(p.Key, leaf, StringComparison.OrdinalIgnoreCase)).Key;
        if (present is not null)
        {
            parent.Remove(present);
        }

        JsonNode? written = null;
        if (value is not null)
        {
            written = ParseValue(value, IsText(names));
            parent[leaf] = written;
        }

        var json = root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
        OffloadConfig.Parse(json, path); // the whole file must still load: else nothing is written
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var temporary = path + ".offload-tmp";
        File.WriteAllText(temporary, json, new UTF8Encoding(false));
        File.Move(temporary, path, overwrite: true);
        return written?.DeepClone();
    }

    /// <summary>JSON when it is JSON, else the text itself; a setting that holds text keeps <c>123</c> or <c>true</c> as text.</summary>
    private static JsonNode? ParseValue(string value, bool text)
    {
        try
        {
            var node = JsonNode.Parse(value);
            if (!text || node is JsonValue v && v.GetValueKind() == JsonValueKind.String)
            {
                return node;
            }
        }
        catch (JsonException)
        {
        }

        return JsonValue.Create(value);
    }

    private static bool IsText(IReadOnlyList<string> names)
    {
        var info = Info(typeof(OffloadConfig));
        foreach (var name in names)
        {
            info = info.Kind == JsonTypeInfoKind.Dictionary
                ? Info(info.ElementType!)
                : Info(info.Properties.First(p => p.Name == name).PropertyType);
        }

        return info.Type == typeof(string);
    }

    private static bool HasComments(string text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(text), new JsonReaderOptions { CommentHandling = JsonCommentHandling.Allow, AllowTrailingCommas = true });
        try
        {
            while (reader.Read())
            {
                if (reader.TokenType == JsonTokenType.Comment)
                {
                    return true;
                }
            }
        }
        catch (JsonException)
        {
            // It does not parse: Set says so with its line and column.
        }

        return false;
    }

    private static JsonTypeInfo Info(Type type) => OffloadConfig.ConfigJson.GetTypeInfo(type);
}

/// <summary>A key <see cref="ConfigEditor"/> does not know, or a file it will not rewrite.</summary>
public sealed class ConfigKeyException(string message) : Exception(message);
