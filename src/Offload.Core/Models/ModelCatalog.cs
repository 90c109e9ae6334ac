namespace Offload.Models;

/// <summary>
/// The one place for the default model and the built-in prices. Prices are USD per million tokens, as the
/// providers publish them; a model is priced by the longest built-in name that prefixes it, so dated or
/// point-release names (<c>claude-sonnet-4-5-20250929</c>, <c>gpt-5.1</c>) find their family.
/// </summary>
public static class ModelCatalog
{
    public const string DefaultModel = "anthropic:claude-opus-4-8";

    public static IReadOnlyDictionary<string, ModelPrice> Prices { get; } = new Dictionary<string, ModelPrice>(StringComparer.OrdinalIgnoreCase)
    {
        // Anthropic: cache read 0.1x input, cache write (5 minute TTL) 1.25x input.
        ["claude-opus-4"] = new(5m, 25m, 0.50m, 6.25m),
        ["claude-opus-4-0"] = new(15m, 75m, 1.50m, 18.75m),
        ["claude-opus-4-1"] = new(15m, 75m, 1.50m, 18.75m),
        ["claude-opus-4-2025"] = new(15m, 75m, 1.50m, 18.75m),
        ["claude-sonnet-4"] = new(3m, 15m, 0.30m, 3.75m),
        ["claude-haiku-4"] = new(1m, 5m, 0.10m, 1.25m),
        ["claude-3-7-sonnet"] = new(3m, 15m, 0.30m, 3.75m),
        ["claude-3-5-haiku"] = new(0.80m, 4m, 0.08m, 1m),
        // OpenAI: cached input is discounted, writing the cache costs plain input.
        ["gpt-5"] = new(1.25m, 10m, 0.125m, 1.25m),
        ["gpt-5-mini"] = new(0.25m, 2m, 0.025m, 0.25m),
        ["gpt-5-nano"] = new(0.05m, 0.40m, 0.005m, 0.05m),
        ["gpt-4.1"] = new(2m, 8m, 0.50m, 2m),
        ["gpt-4.1-mini"] = new(0.40m, 1.60m, 0.10m, 0.40m),
        ["gpt-4.1-nano"] = new(0.10m, 0.40m, 0.025m, 0.10m),
        ["gpt-4o"] = new(2.50m, 10m, 1.25m, 2.50m),
        ["gpt-4o-mini"] = new(0.15m, 0.60m, 0.075m, 0.15m),
        ["o3"] = new(2m, 8m, 0.50m, 2m),
        ["o4-mini"] = new(1.10m, 4.40m, 0.275m, 1.10m),
    };

    /// <summary>
    /// Which thinking each model family takes, by longest prefix as for prices: what Claude Code 2.1.197 sends
    /// (adaptive for claude-opus-4-6 and later and claude-sonnet-4-6, a budget for the Claude 4 models before them).
    /// Models not here get none unless <c>models.thinking</c> asks for it.
    /// </summary>
    public static IReadOnlyDictionary<string, ThinkingSupport> Thinking { get; } = new Dictionary<string, ThinkingSupport>(StringComparer.OrdinalIgnoreCase)
    {
        ["claude-opus-4"] = ThinkingSupport.Budget,
        ["claude-sonnet-4"] = ThinkingSupport.Budget,
        ["claude-haiku-4"] = ThinkingSupport.Budget,
        ["claude-opus-4-6"] = ThinkingSupport.Adaptive,
        ["claude-opus-4-7"] = ThinkingSupport.Adaptive,
        ["claude-opus-4-8"] = ThinkingSupport.Adaptive,
        ["claude-sonnet-4-6"] = ThinkingSupport.Adaptive,
    };

    /// <summary>The thinking <paramref name="model"/> (a bare model name) takes, by the longest prefix in <see cref="Thinking"/>.</summary>
    public static ThinkingSupport ThinkingOf(string model) => Thinking
        .Where(p => model.StartsWith(p.Key, StringComparison.OrdinalIgnoreCase))
        .OrderByDescending(p => p.Key.Length)
        .Select(p => p.Value)
        .FirstOrDefault();

    /// <summary>
    /// Context windows in tokens (the most input one request may carry), by the longest name that prefixes a model's.
    /// Claude models take 200,000 (a 1M window needs a beta header Offload does not send: set <c>models.contextWindow</c>
    /// for an endpoint that serves one); OpenAI's gpt-5 family takes 400,000 of which 128,000 are reserved for output.
    /// </summary>
    public static IReadOnlyDictionary<string, int> ContextWindows { get; } = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase)
    {
        ["claude-"] = 200_000,
        ["gpt-5"] = 272_000,
        ["gpt-4.1"] = 1_047_576,
        ["gpt-4o"] = 128_000,
        ["o3"] = 200_000,
        ["o4-mini"] = 200_000,
    };

    /// <summary>The window assumed for a model nobody named; a provider that refuses a longer prompt says its own, and is believed.</summary>
    public const int DefaultContextWindow = 128_000;

    /// <summary>Providers that run on the user's own machine and cost nothing per token.</summary>
    public static IReadOnlyList<string> FreeProviders { get; } = ["ollama", "sim"];
}

/// <summary>USD per million tokens of each kind.</summary>
public sealed record ModelPrice(decimal Input, decimal Output, decimal CacheRead, decimal CacheWrite);
