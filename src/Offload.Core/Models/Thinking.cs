using System.Text.Json;

namespace Offload.Models;

/// <summary>Which kind of thinking request a model takes.</summary>
public enum ThinkingSupport
{
    /// <summary>No thinking is asked for (OpenAI-compatible models, unknown and old Anthropic models).</summary>
    None,

    /// <summary><c>{"type":"enabled","budget_tokens":N}</c>: Claude models before adaptive thinking.</summary>
    Budget,

    /// <summary><c>{"type":"adaptive"}</c> with <c>output_config.effort</c>: claude-opus-4-6 and later, claude-sonnet-4-6.</summary>
    Adaptive,
}

/// <summary>
/// The thinking a request asks for: adaptive (with an effort, or the API's default when null) or a token budget.
/// </summary>
public sealed record ThinkingRequest(int? BudgetTokens = null, string? Effort = null)
{
    public bool IsAdaptive => BudgetTokens is null;
}

/// <summary>
/// <c>models.thinking</c> in the config: per model (<c>provider:model</c>, or a bare model name), with <c>*</c> for
/// every other model, one of <c>"auto"</c> (the default: what Claude Code 2.1.197 sends), <c>"off"</c>,
/// <c>"adaptive"</c>, an effort (<c>"low"</c>, <c>"medium"</c>, <c>"high"</c>, <c>"max"</c>: adaptive thinking at that
/// effort) or a whole number (a token budget, at least 1024 and below <c>models.maxOutputTokens</c>). docs/models.md.
/// </summary>
public static class Thinking
{
    public const int MinBudgetTokens = 1024;

    /// <summary>The effort Claude Code 2.1.197 sends with adaptive thinking.</summary>
    public const string DefaultEffort = "high";

    private static readonly string[] Efforts = ["low", "medium", "high", "max"];

    /// <summary>The first value of <c>models.thinking</c> that cannot work, said so that it can be fixed; null when all can.</summary>
    public static string? Problem(ModelSettings settings)
    {
        foreach (var (model, value) in settings.Thinking ?? [])
        {
            var at = $"models.thinking[\"{model}\"]";
            if (value.ValueKind == JsonValueKind.Number)
            {
                if (!value.TryGetInt32(out var budget) || budget < MinBudgetTokens || budget >= settings.MaxOutputTokens)
                {
                    return $"{at} is {value.GetRawText()}; a thinking budget is a whole number of tokens from {MinBudgetTokens} up to "
                        + $"below models.maxOutputTokens ({settings.MaxOutputTokens})";
                }
            }
            else if (value.ValueKind != JsonValueKind.String || !IsWord(value.GetString()))
            {
                return $"{at} is {value.GetRawText()}; it should be \"auto\", \"off\", \"adaptive\", an effort "
                    + $"({string.Join(", ", Efforts.Select(e => $"\"{e}\""))}) or a token budget such as 16000";
            }
        }

        return null;
    }

    /// <summary>
    /// The thinking to ask <paramref name="model"/> for, which takes <paramref name="support"/>: the configured value
    /// for the model, else for <c>*</c>, else <c>auto</c>. Null: none.
    /// </summary>
    public static ThinkingRequest? For(ModelSettings settings, ModelRef model, ThinkingSupport support)
    {
        var configured = Configured(settings, model);
        if (configured is { ValueKind: JsonValueKind.Number } number)
        {
            return new ThinkingRequest(BudgetTokens: number.GetInt32());
        }

        return configured?.GetString()?.ToLowerInvariant() switch
        {
            "off" => null,
            "adaptive" => new ThinkingRequest(),
            { } effort when Efforts.Contains(effort) => new ThinkingRequest(Effort: effort),
            _ => support switch
            {
                ThinkingSupport.Adaptive => new ThinkingRequest(Effort: DefaultEffort),
                ThinkingSupport.Budget => new ThinkingRequest(BudgetTokens: settings.MaxOutputTokens - 1), // as Claude Code: all but one token
                _ => null,
            },
        };
    }

    private static JsonElement? Configured(ModelSettings settings, ModelRef model)
    {
        if (settings.Thinking is not { Count: > 0 } table)
        {
            return null;
        }

        foreach (var key in new[] { model.ToString(), model.Name, "*" })
        {
            var found = table.FirstOrDefault(p => string.Equals(p.Key, key, StringComparison.OrdinalIgnoreCase));
            if (found.Key is not null)
            {
                return found.Value;
            }
        }

        return null;
    }

    private static bool IsWord(string? value) =>
        value?.ToLowerInvariant() is "auto" or "off" or "adaptive" || Efforts.Contains(value?.ToLowerInvariant());

}
