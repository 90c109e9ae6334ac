using Offload.Models;

namespace Offload.Tests.Models;

public sealed class ModelRefTests
{
    [Theory]
    [InlineData("anthropic:claude-opus-4-8", "anthropic", "claude-opus-4-8")]
    [InlineData("openai:gpt-5", "openai", "gpt-5")]
    [InlineData("ollama:qwen3-coder:30b", "ollama", "qwen3-coder:30b")]
    [InlineData("sim:demo", "sim", "demo")]
    [InlineData("sim:/tmp/s.json", "sim", "/tmp/s.json")]
    [InlineData("  OpenAI:gpt-5  ", "openai", "gpt-5")]
    public void Parse_SplitsAtFirstColon(string text, string provider, string name) =>
        Assert.Equal(new ModelRef(provider, name), ModelRef.Parse(text));

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("foo")]
    [InlineData(":x")]
    [InlineData("anthropic:")]
    public void Parse_Malformed_ThrowsWithWhatToType(string text)
    {
        var e = Assert.Throws<ModelConfigException>(() => ModelRef.Parse(text));

        Assert.Equal(ModelConfigException.Malformed, e.Code);
        Assert.Contains("provider:model", e.Message);
        Assert.Contains("--model anthropic:claude-opus-4-8", e.Message);
        Assert.Contains("--model sim:demo", e.Message);
        Assert.Contains("anthropic, openai, ollama, sim", e.Message);
    }

    [Fact]
    public void Parse_UnknownProvider_ThrowsListingKnownOnes()
    {
        var e = Assert.Throws<ModelConfigException>(() => ModelRef.Parse("gemini:pro"));

        Assert.Equal(ModelConfigException.UnknownProvider, e.Code);
        Assert.Contains("'gemini'", e.Message);
        Assert.Contains("anthropic, openai, ollama, sim", e.Message);
        Assert.Contains("--model sim:demo", e.Message);
    }

    [Fact]
    public void Parse_ProviderDefinedInSettings_IsKnown()
    {
        var settings = new ModelSettings { Providers = { ["vllm"] = new ProviderSettings { Kind = "openai", BaseUrl = "http://127.0.0.1:8000/v1" } } };

        Assert.Equal(new ModelRef("vllm", "qwen3"), ModelRef.Parse("vllm:qwen3", settings));
        Assert.Contains("vllm", Assert.Throws<ModelConfigException>(() => ModelRef.Parse("x:y", settings)).Message);
    }

    [Fact]
    public void ToString_RoundTrips() =>
        Assert.Equal("sim:/tmp/s.json", ModelRef.Parse("sim:/tmp/s.json").ToString());

    [Fact]
    public void DefaultModel_Parses() =>
        Assert.Equal(new ModelRef("anthropic", "claude-opus-4-8"), ModelRef.Parse(new ModelSettings().DefaultModel));
}
