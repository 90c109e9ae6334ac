using System.Text.Json;
using Microsoft.Extensions.AI;
using Offload.Models;
using Offload.Protocol;

namespace Offload.Tests.Models;

public sealed class ModelSettingsTests
{
    [Fact]
    public void Json_BindsCamelCaseAndKeepsDefaultsForTheRest()
    {
        const string json = """
            {
              "defaultModel": "openai:gpt-5",
              "providers": { "vllm": { "kind": "openai", "baseUrl": "http://127.0.0.1:8000/v1", "apiKeyEnv": "VLLM_KEY" } },
              "prices": { "qwen3": { "input": 0.1, "output": 0.2, "cacheRead": 0.01, "cacheWrite": 0.1 } },
              "retry": { "maxTries": 3, "baseDelay": "00:00:00.010" }
            }
            """;

        var settings = JsonSerializer.Deserialize<ModelSettings>(json, OffloadJson.Options)!;

        Assert.Equal("openai:gpt-5", settings.DefaultModel);
        Assert.Equal(new ProviderSettings { Kind = "openai", BaseUrl = "http://127.0.0.1:8000/v1", ApiKeyEnv = "VLLM_KEY" }, settings.Providers["vllm"]);
        Assert.Equal(new ModelPrice(0.1m, 0.2m, 0.01m, 0.1m), settings.Prices["qwen3"]);
        Assert.Equal(new RetrySettings { MaxTries = 3, BaseDelay = TimeSpan.FromMilliseconds(10) }, settings.Retry);
        Assert.Equal(32_000, settings.MaxOutputTokens);
    }

    [Fact]
    public void Cost_DefaultModelIsPriced() =>
        Assert.Equal(5m + 25m, new ModelSettings().Cost(ModelCatalog.DefaultModel, new ModelUsage(1_000_000, 1_000_000, 0, 0)));

    [Theory]
    [InlineData("anthropic:claude-sonnet-4-5-20250929", 3 + 15 + 0.30 + 3.75)]
    [InlineData("claude-opus-4-1", 15 + 75 + 1.50 + 18.75)]
    [InlineData("openai:gpt-5.1", 1.25 + 10 + 0.125 + 1.25)]
    [InlineData("openai:gpt-5-mini", 0.25 + 2 + 0.025 + 0.25)]
    [InlineData("ollama:gpt-5", 0)]
    [InlineData("sim:demo", 0)]
    [InlineData("openai:unheard-of", 0)]
    public void Cost_UsesLongestPricedPrefix(string model, double expected) =>
        Assert.Equal((decimal)expected, new ModelSettings().Cost(model, new ModelUsage(1_000_000, 1_000_000, 1_000_000, 1_000_000)));

    [Fact]
    public void Cost_OwnPriceOverridesBuiltin()
    {
        var settings = new ModelSettings { Prices = { ["gpt-5"] = new ModelPrice(2m, 4m, 0m, 0m) } };

        Assert.Equal(0.002m + 0.002m, settings.Cost("openai:gpt-5", new ModelUsage(1_000, 500, 0, 0)));
    }

    [Fact]
    public void Usage_SplitsCachedInputFromInput()
    {
        var details = new UsageDetails
        {
            InputTokenCount = 160,
            OutputTokenCount = 7,
            CachedInputTokenCount = 100,
            AdditionalCounts = new() { [ModelUsage.CacheWriteCountKey] = 50 },
        };

        Assert.Equal(new ModelUsage(10, 7, 100, 50), ModelUsage.From(details));
        Assert.Equal(ModelUsage.Zero, ModelUsage.From(null));
        Assert.Equal(new ModelUsage(20, 14, 200, 100), ModelUsage.From(details) + ModelUsage.From(details));
    }
}
