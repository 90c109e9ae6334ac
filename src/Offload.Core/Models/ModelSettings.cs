using System.Text.Json;

namespace Offload.Models;

/// <summary>
/// The <c>models</c> section of Offload's config (camelCase JSON). Everything has a working default, so an
/// empty section means: Anthropic with <see cref="ModelCatalog.DefaultModel"/>, keys from the environment.
/// </summary>
public sealed record ModelSettings
{
    /// <summary>The model used when a task names none, as <c>provider:model</c>.</summary>
    public string DefaultModel { get; set; } = ModelCatalog.DefaultModel;

    /// <summary>
    /// Providers by name: new OpenAI-compatible servers (vLLM, llama.cpp, a gateway) or overrides of the built-in
    /// ones (another base URL or key variable for <c>anthropic</c>, <c>openai</c>, <c>ollama</c>).
    /// </summary>
    public Dictionary<string, ProviderSettings> Providers { get; set; } = [];

    /// <summary>Prices by model name that add to or replace <see cref="ModelCatalog.Prices"/>.</summary>
    public Dictionary<string, ModelPrice> Prices { get; set; } = [];

    public RetrySettings Retry { get; set; } = new();

    /// <summary>
    /// Context windows in tokens by model (<c>provider:model</c> or the bare model name), for models
    /// <see cref="ModelCatalog.ContextWindows"/> does not know or knows wrong: <c>{"vllm:my-model": 32768}</c>.
    /// </summary>
    public Dictionary<string, int> ContextWindow { get; set; } = [];

    /// <summary>The share of the window a request may reach before the agent compacts its conversation first.</summary>
    public double CompactAt { get; set; } = 0.8;

    /// <summary>The most tokens one model answer may have (Anthropic requires a value).</summary>
    public int MaxOutputTokens { get; set; } = 32_000;

    /// <summary>
    /// Thinking per model (<c>provider:model</c>, a bare name, or <c>*</c>): <c>"auto"</c> (default), <c>"off"</c>,
    /// <c>"adaptive"</c>, an effort, or a token budget. <see cref="Models.Thinking"/>; docs/models.md.
    /// </summary>
    public Dictionary<string, JsonElement> Thinking { get; set; } = [];

    /// <summary>The provider settings for <paramref name="provider"/>, matched without regard to case.</summary>
    public ProviderSettings? FindProvider(string provider) =>
        Providers.FirstOrDefault(p => string.Equals(p.Key, provider, StringComparison.OrdinalIgnoreCase)).Value;

    /// <summary>
    /// The price of <paramref name="model"/> (<c>provider:model</c> or a bare model name): an exact entry in
    /// <see cref="Prices"/>, else the longest matching prefix among <see cref="Prices"/> and the built-in table.
    /// Null for a model nobody priced and for local providers.
    /// </summary>
    public ModelPrice? PriceOf(string model)
    {
        var colon = model.IndexOf(':', StringComparison.Ordinal);
        if (colon > 0 && ModelCatalog.FreeProviders.Contains(model[..colon], StringComparer.OrdinalIgnoreCase))
        {
            return null;
        }

        foreach (var key in colon > 0 ? [model, model[(colon + 1)..]] : new[] { model })
        {
            if (Prices.FirstOrDefault(p => string.Equals(p.Key, key, StringComparison.OrdinalIgnoreCase)).Value is { } own)
            {
                return own;
            }

            var best = Prices.Concat(ModelCatalog.Prices)
                .Where(p => key.StartsWith(p.Key, StringComparison.OrdinalIgnoreCase))
                .OrderByDescending(p => p.Key.Length)
                .Select(p => p.Value)
                .FirstOrDefault();
            if (best is not null)
            {
                return best;
            }
        }

        return null;
    }

    /// <summary>
    /// The configured window of <paramref name="model"/> (<c>provider:model</c>): an entry of <see cref="ContextWindow"/>
    /// for the full name or the bare model name, else null (the caller asks the Simulator's scenario, then the catalog).
    /// </summary>
    public int? ConfiguredContextWindow(string model)
    {
        var colon = model.IndexOf(':', StringComparison.Ordinal);
        foreach (var key in colon > 0 ? [model, model[(colon + 1)..]] : new[] { model })
        {
            if (ContextWindow.FirstOrDefault(w => string.Equals(w.Key, key, StringComparison.OrdinalIgnoreCase)) is { Key: not null } own)
            {
                return own.Value;
            }
        }

        return null;
    }

    /// <summary>The built-in window of <paramref name="model"/>: the longest catalog name that prefixes its bare name, or the default.</summary>
    public static int CatalogContextWindow(string model)
    {
        var name = model[(model.IndexOf(':', StringComparison.Ordinal) + 1)..];
        return ModelCatalog.ContextWindows
            .Where(w => name.StartsWith(w.Key, StringComparison.OrdinalIgnoreCase))
            .OrderByDescending(w => w.Key.Length)
            .Select(w => (int?)w.Value)
            .FirstOrDefault() ?? ModelCatalog.DefaultContextWindow;
    }

    /// <summary>What <paramref name="usage"/> of <paramref name="model"/> cost in USD; 0 for a model with no price.</summary>
    public decimal Cost(string model, ModelUsage usage)
    {
        if (PriceOf(model) is not { } price)
        {
            return 0m;
        }

        return (usage.Input * price.Input + usage.Output * price.Output
            + usage.CacheRead * price.CacheRead + usage.CacheWrite * price.CacheWrite) / 1_000_000m;
    }
}

/// <summary>
/// One provider: which API it speaks, where, and where its key comes from. <see cref="ApiKey"/> is for
/// tests and local servers; real keys belong in the environment variable named by <see cref="ApiKeyEnv"/>.
/// </summary>
public sealed record ProviderSettings
{
    /// <summary><c>anthropic</c> or <c>openai</c> (any OpenAI-compatible server).</summary>
    public string? Kind { get; init; }

    public string? BaseUrl { get; init; }

    public string? ApiKeyEnv { get; init; }

    public string? ApiKey { get; init; }
}

/// <summary>How model calls are retried. Tests set tiny delays and idle timeouts.</summary>
public sealed record RetrySettings
{
    /// <summary>Attempts in all, the first one included.</summary>
    public int MaxTries { get; set; } = 6;

    public TimeSpan BaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>A stream that sends nothing for this long is given up and retried.</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(90);
}
