using System.Text.Json;
using Microsoft.Extensions.AI;
using Offload.Agent;
using Offload.Config;
using Offload.Models;
using Offload.Protocol;

namespace Offload.Tests.Models;

/// <summary>Which thinking each model is asked for, what the config may say about it, and how the journal keeps it.</summary>
public sealed class ThinkingSettingsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("offload-thinking-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("anthropic:claude-opus-4-8", null, "high")] // as Claude Code 2.1.197 sends it
    [InlineData("anthropic:claude-opus-4-6-20260101", null, "high")]
    [InlineData("anthropic:claude-sonnet-4-6", null, "high")]
    [InlineData("anthropic:claude-sonnet-4-5-20250929", 31_999, null)]
    [InlineData("anthropic:claude-haiku-4-5", 31_999, null)]
    [InlineData("anthropic:claude-opus-4-1", 31_999, null)]
    public void Auto_AsksEachModelForWhatClaudeCodeSends(string model, int? budget, string? effort)
    {
        var parsed = ModelRef.Parse(model);

        var request = Thinking.For(new ModelSettings(), parsed, ChatClientFactory.ThinkingOf(parsed));

        Assert.Equal(new ThinkingRequest(budget, effort), request);
    }

    [Theory]
    [InlineData("anthropic:claude-3-7-sonnet-20250219")]
    [InlineData("openai:gpt-5")]
    [InlineData("anthropic:some-new-model")]
    public void Auto_AsksModelsNotKnownToThinkForNothing(string model)
    {
        var parsed = ModelRef.Parse(model);

        Assert.Null(Thinking.For(new ModelSettings(), parsed, ChatClientFactory.ThinkingOf(parsed)));
    }

    [Fact]
    public void Config_ModelEntryWinsOverItsBareNameOverTheWildcard()
    {
        var settings = Load("""{ "models": { "thinking": { "*": "off", "claude-opus-4-8": "low", "anthropic:claude-opus-4-8": 20000, "claude-sonnet-4-5": "adaptive" } } }""").Models;

        Assert.Equal(new ThinkingRequest(BudgetTokens: 20_000), Thinking.For(settings, ModelRef.Parse("anthropic:claude-opus-4-8"), ThinkingSupport.Adaptive));
        Assert.Equal(new ThinkingRequest(Effort: "low"), Thinking.For(settings, new ModelRef("other", "claude-opus-4-8"), ThinkingSupport.Adaptive));
        Assert.Equal(new ThinkingRequest(), Thinking.For(settings, ModelRef.Parse("anthropic:claude-sonnet-4-5"), ThinkingSupport.Budget));
        Assert.Null(Thinking.For(settings, ModelRef.Parse("anthropic:claude-haiku-4-5"), ThinkingSupport.Budget));
    }

    [Theory]
    [InlineData("\"lots\"", "models.thinking[\"*\"] is \"lots\"; it should be \"auto\", \"off\", \"adaptive\", an effort")]
    [InlineData("true", "models.thinking[\"*\"] is true; it should be")]
    [InlineData("500", "models.thinking[\"*\"] is 500; a thinking budget is a whole number of tokens from 1024 up to below models.maxOutputTokens (32000)")]
    [InlineData("32000", "models.thinking[\"*\"] is 32000; a thinking budget")]
    [InlineData("1.5e4", "models.thinking[\"*\"] is 1.5e4; a thinking budget")]
    public void Config_BadValue_IsRefusedSayingWhichAndWhatWouldDo(string value, string expected)
    {
        var error = Assert.Throws<ConfigException>(() => Load($$"""{ "models": { "thinking": { "*": {{value}} } } }"""));

        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Journal_OlderAssistantMessagesReadWithoutThinking_AndRebuildPutsThinkingFirstInItsTurn()
    {
        var old = JsonSerializer.Deserialize<AgentEvent>("""{"type":"message.assistant","turn":1,"text":"Looking."}""", OffloadJson.Options);
        Assert.Equal(new AssistantMessage(1, "Looking."), old);

        List<AgentEvent> history =
        [
            new TaskCreated("read", "sim:x", "builtin", "b", "main", "abc"),
            new AssistantMessage(1, "Looking.", [new ThinkingBlock("hmm", "sig"), new ThinkingBlock("", RedactedData: "sealed")]),
            new ToolCalled(1, "c1", "Read", JsonElement.Parse("""{"file_path":"a"}""")),
        ];
        var written = JsonSerializer.Serialize(history[1], OffloadJson.Options);
        Assert.Contains("\"thinking\":[{\"text\":\"hmm\",\"signature\":\"sig\"},{\"text\":\"\",\"redactedData\":\"sealed\"}]", written);

        var assistant = Conversation.Rebuild(history)[1].Contents;

        var thought = Assert.IsType<TextReasoningContent>(assistant[0]);
        Assert.Equal(("hmm", "sig", false), (thought.Text, thought.ProtectedData, AnthropicChatClient.IsRedacted(thought)));
        var redacted = Assert.IsType<TextReasoningContent>(assistant[1]);
        Assert.Equal(("", "sealed", true), (redacted.Text, redacted.ProtectedData, AnthropicChatClient.IsRedacted(redacted)));
        Assert.IsType<TextContent>(assistant[2]);
        Assert.IsType<FunctionCallContent>(assistant[3]);
    }

    private OffloadConfig Load(string json)
    {
        var path = Path.Combine(_dir, "config.json");
        File.WriteAllText(path, json);
        return OffloadConfig.Load(path);
    }
}
