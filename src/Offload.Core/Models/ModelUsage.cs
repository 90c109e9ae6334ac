using Microsoft.Extensions.AI;

namespace Offload.Models;

/// <summary>
/// Tokens one or more model calls used, split the way they are priced. <see cref="Input"/> is the uncached
/// input only; cache reads and writes are counted apart.
/// </summary>
public sealed record ModelUsage(long Input, long Output, long CacheRead, long CacheWrite)
{
    public static ModelUsage Zero { get; } = new(0, 0, 0, 0);

    /// <summary>The name under which Anthropic's client reports cache writes in <see cref="UsageDetails.AdditionalCounts"/>.</summary>
    public const string CacheWriteCountKey = "CacheCreationInputTokens";

    /// <summary>
    /// Reads Microsoft.Extensions.AI usage. Both clients count every input token, cached or not, in
    /// <see cref="UsageDetails.InputTokenCount"/> and cache reads in <see cref="UsageDetails.CachedInputTokenCount"/>;
    /// Anthropic's adds cache writes under <see cref="CacheWriteCountKey"/>.
    /// </summary>
    public static ModelUsage From(UsageDetails? usage)
    {
        if (usage is null)
        {
            return Zero;
        }

        var cacheRead = usage.CachedInputTokenCount ?? 0;
        var cacheWrite = usage.AdditionalCounts?.TryGetValue(CacheWriteCountKey, out var written) == true ? written : 0;
        var input = Math.Max(0, (usage.InputTokenCount ?? 0) - cacheRead - cacheWrite);
        return new ModelUsage(input, usage.OutputTokenCount ?? 0, cacheRead, cacheWrite);
    }

    public static ModelUsage operator +(ModelUsage a, ModelUsage b) =>
        new(a.Input + b.Input, a.Output + b.Output, a.CacheRead + b.CacheRead, a.CacheWrite + b.CacheWrite);
}
