namespace Offload.Models;

/// <summary>
/// A model named the way users type it: <c>provider:model</c>, e.g. <c>anthropic:claude-opus-4-8</c>,
/// <c>openai:gpt-5</c>, <c>ollama:qwen3-coder</c> or <c>sim:demo</c>. The string is split at its first colon
/// only, so a simulator scenario may be a path (<c>sim:/tmp/s.json</c>).
/// </summary>
public sealed record ModelRef(string Provider, string Name)
{
    /// <summary>The providers every installation knows; settings may add OpenAI-compatible ones.</summary>
    public static IReadOnlyList<string> BuiltinProviders { get; } = ["anthropic", "openai", "ollama", "sim"];

    /// <summary>Parses <paramref name="text"/>; providers defined in <paramref name="settings"/> are accepted too.</summary>
    /// <exception cref="ModelConfigException">The text is not <c>provider:model</c> or names an unknown provider.</exception>
    public static ModelRef Parse(string text, ModelSettings? settings = null)
    {
        var trimmed = text?.Trim() ?? "";
        var colon = trimmed.IndexOf(':', StringComparison.Ordinal);
        var known = KnownProviders(settings);
        if (colon <= 0 || colon == trimmed.Length - 1)
        {
            var what = trimmed.Length == 0 ? "No model was given"
                : colon < 0 ? $"The model '{trimmed}' has no provider"
                : colon == 0 ? $"The model '{trimmed}' has no provider before the colon"
                : $"The model '{trimmed}' has no model name after the colon";
            throw new ModelConfigException(
                ModelConfigException.Malformed,
                $"{what}. Write it as provider:model, e.g. --model {ModelCatalog.DefaultModel} or --model sim:demo "
                + $"(known providers: {string.Join(", ", known)}).");
        }

        var provider = trimmed[..colon].ToLowerInvariant();
        if (!known.Contains(provider, StringComparer.Ordinal))
        {
            throw new ModelConfigException(
                ModelConfigException.UnknownProvider,
                $"The model provider '{trimmed[..colon]}' is not known (known providers: {string.Join(", ", known)}). "
                + $"Use e.g. --model {ModelCatalog.DefaultModel} or --model sim:demo, or define '{provider}' under "
                + "models.providers in the config with a kind and a baseUrl.");
        }

        return new ModelRef(provider, trimmed[(colon + 1)..]);
    }

    /// <summary>Whether <paramref name="text"/> parses; <paramref name="model"/> is set when it does.</summary>
    public static bool TryParse(string text, ModelSettings? settings, out ModelRef? model)
    {
        try
        {
            model = Parse(text, settings);
            return true;
        }
        catch (ModelConfigException)
        {
            model = null;
            return false;
        }
    }

    private static List<string> KnownProviders(ModelSettings? settings) =>
        [.. BuiltinProviders.Concat(settings?.Providers.Keys.Select(k => k.ToLowerInvariant()) ?? []).Distinct()];

    public override string ToString() => $"{Provider}:{Name}";
}
