using System.Text.Json;
using Microsoft.Extensions.AI;
using Offload.Models;

namespace Offload.Tests.Models;

/// <summary>A tool-using conversation over real HTTP against the Simulator, for each API the clients speak.</summary>
public sealed class ConversationTests
{
    private const string ToolScenario = """
        {
          "name": "tool-use",
          "turns": [
            { "text": "Let me read it.", "toolCalls": [ { "name": "read_file", "input": { "path": "src/a.cs", "lines": [1, 2] } } ] },
            { "text": "The file says hello." }
          ]
        }
        """;

    private static readonly AIFunction ReadFile = AIFunctionFactory.Create(
        (string path) => $"contents of {path}", "read_file", "Reads a file of the repository.");

    [Theory]
    [InlineData("anthropic")]
    [InlineData("openai")]
    public async Task ToolCall_ThenResult_ThenFinalText(string provider)
    {
        await using var kit = await ModelTestKit.StartAsync(ToolScenario);
        using var client = kit.Client(provider);
        var history = ModelTestKit.Prompt("Read src/a.cs and tell me what it says.");
        var options = new ChatOptions { Tools = [ReadFile] };

        var first = await client.GetResponseAsync(history, options);

        Assert.Equal(ChatFinishReason.ToolCalls, first.FinishReason);
        var call = Assert.Single(first.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
        Assert.Equal("read_file", call.Name);
        Assert.Equal("src/a.cs", call.Arguments!["path"]!.ToString());
        Assert.Equal("[1,2]", JsonSerializer.Serialize(call.Arguments["lines"]));
        var firstUsage = ModelUsage.From(first.Usage);
        Assert.True(firstUsage.Input > 0 && firstUsage.Output > 0, $"usage {firstUsage}");

        history.AddRange(first.Messages);
        history.Add(new ChatMessage(ChatRole.Tool, [new FunctionResultContent(call.CallId, "hello")]));
        var second = await client.GetResponseAsync(history, options);

        Assert.Equal(ChatFinishReason.Stop, second.FinishReason);
        Assert.Equal("The file says hello.", second.Text);
        Assert.True(ModelUsage.From(second.Usage).Input > firstUsage.Input, "the second turn sends more input");

        var requests = kit.ModelRequests(provider);
        Assert.Equal([0, 1], requests.Select(r => r.TurnIndex));
        Assert.All(requests, r => Assert.True(r.Stream, "model calls stream on the wire"));
        Assert.Contains(call.CallId, requests[1].Body);
        Assert.Contains("hello", requests[1].Body);
        Assert.Empty(kit.Retries);
    }

    [Fact]
    public async Task Anthropic_MarksToolsSystemAndNewestMessageForCaching()
    {
        await using var kit = await ModelTestKit.StartAsync(ToolScenario);
        using var client = kit.Client("anthropic");
        var history = ModelTestKit.Prompt("Read src/a.cs.");

        await client.GetResponseAsync(history, new ChatOptions { Tools = [ReadFile] });

        using var body = JsonDocument.Parse(kit.ModelRequests("anthropic")[0].Body);
        var root = body.RootElement;
        Assert.Equal("ephemeral", root.GetProperty("tools")[0].GetProperty("cache_control").GetProperty("type").GetString());
        Assert.Equal("ephemeral", root.GetProperty("system")[0].GetProperty("cache_control").GetProperty("type").GetString());
        var newest = root.GetProperty("messages").EnumerateArray().Last().GetProperty("content").EnumerateArray().Last();
        Assert.Equal("ephemeral", newest.GetProperty("cache_control").GetProperty("type").GetString());
        Assert.Null(history[0].Contents[0].AdditionalProperties);
        Assert.Null(history[1].Contents[0].AdditionalProperties);
    }

    [Fact]
    public async Task Anthropic_StreamingCallStreamsUpdates()
    {
        await using var kit = await ModelTestKit.StartAsync("""{ "name": "text", "turns": [ { "text": "One two three four." } ] }""");
        using var client = kit.Client("anthropic");

        List<ChatResponseUpdate> updates = [];
        await foreach (var update in client.GetStreamingResponseAsync(ModelTestKit.Prompt()))
        {
            updates.Add(update);
        }

        Assert.Equal("One two three four.", updates.ToChatResponse().Text);
        Assert.True(updates.Count > 1);
    }
}
