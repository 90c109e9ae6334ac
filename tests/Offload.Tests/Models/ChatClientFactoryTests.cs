using Microsoft.Extensions.AI;
using Offload.Models;

namespace Offload.Tests.Models;

public sealed class ChatClientFactoryTests
{
    private static readonly Func<string, string?> NoEnv = _ => null;

    [Theory]
    [InlineData("anthropic:claude-opus-4-8", "ANTHROPIC_API_KEY")]
    [InlineData("openai:gpt-5", "OPENAI_API_KEY")]
    public void Create_WithoutKey_SaysWhichVariableAndWhatToType(string model, string variable)
    {
        var e = Assert.Throws<ModelConfigException>(() => new ChatClientFactory().Create(ModelRef.Parse(model), new ModelSettings(), NoEnv));

        Assert.Equal(ModelConfigException.MissingKey, e.Code);
        Assert.Contains(variable, e.Message);
        Assert.Contains("--model provider:model", e.Message);
        Assert.Contains("--model sim:demo", e.Message);
    }

    [Fact]
    public void Create_CustomProviderKeyVariable_IsNamed()
    {
        var settings = new ModelSettings { Providers = { ["vllm"] = new ProviderSettings { Kind = "openai", BaseUrl = "http://127.0.0.1:1/v1", ApiKeyEnv = "VLLM_KEY" } } };

        var e = Assert.Throws<ModelConfigException>(() => new ChatClientFactory().Create(ModelRef.Parse("vllm:qwen3", settings), settings, NoEnv));

        Assert.Contains("VLLM_KEY", e.Message);
    }

    [Fact]
    public void Create_CustomProviderWithoutBaseUrl_IsAConfigError()
    {
        var settings = new ModelSettings { Providers = { ["vllm"] = new ProviderSettings { Kind = "openai" } } };

        var e = Assert.Throws<ModelConfigException>(() => new ChatClientFactory().Create(ModelRef.Parse("vllm:qwen3", settings), settings, NoEnv));

        Assert.Equal(ModelConfigException.BadProvider, e.Code);
        Assert.Contains("baseUrl", e.Message);
    }

    [Fact]
    public void Create_Ollama_NeedsNoKey()
    {
        using var client = new ChatClientFactory().Create(ModelRef.Parse("ollama:qwen3-coder"), new ModelSettings(), NoEnv);

        Assert.IsType<RetryingChatClient>(client);
    }

    [Fact]
    public async Task Create_Anthropic_ReadsKeyAndBaseUrlThroughGetEnv()
    {
        await using var kit = await ModelTestKit.StartAsync("""{ "name": "env", "turns": [ { "text": "From the environment." } ] }""");
        Dictionary<string, string> env = new()
        {
            ["ANTHROPIC_API_KEY"] = "env-key",
            ["ANTHROPIC_BASE_URL"] = kit.Server.BaseUrl.ToString(),
        };
        using var client = new ChatClientFactory().Create(ModelRef.Parse("anthropic:claude-opus-4-8"), new ModelSettings(), env.GetValueOrDefault);

        var response = await client.GetResponseAsync(ModelTestKit.Prompt());

        Assert.Equal("From the environment.", response.Text);
        Assert.Equal("claude-opus-4-8", Assert.Single(kit.ModelRequests("anthropic")).Model);
    }

    [Fact]
    public async Task Create_Sim_StartsTheSimulatorOnceAndPicksTheScenarioByName()
    {
        var path = Path.Combine(Path.GetTempPath(), $"offload-models-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(path, """{ "name": "file", "turns": [ { "text": "From a file." } ] }""");
        try
        {
            await using var host = new SimulatorHost();
            var factory = new ChatClientFactory(host);
            using var fromFile = factory.Create(ModelRef.Parse($"sim:{path}"), new ModelSettings(), NoEnv);
            using var demo = factory.Create(ModelRef.Parse("sim:demo"), new ModelSettings(), NoEnv);

            var responses = await Task.WhenAll(
                fromFile.GetResponseAsync(ModelTestKit.Prompt()),
                demo.GetResponseAsync(ModelTestKit.Prompt()));

            Assert.Equal("From a file.", responses[0].Text);
            Assert.False(string.IsNullOrEmpty(responses[1].Text));
            Assert.Equal(await host.GetBaseUrlAsync(), await host.GetBaseUrlAsync());
        }
        finally
        {
            File.Delete(path);
        }
    }
}
