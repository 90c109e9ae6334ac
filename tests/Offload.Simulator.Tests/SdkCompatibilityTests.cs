using System.ClientModel;
using Anthropic;
using Anthropic.Core;
using Microsoft.Extensions.AI;
using OpenAI;

namespace Offload.Simulator.Tests;

/// <summary>The official SDKs Offload's model clients are built on read the simulator's answers correctly.</summary>
public sealed class SdkCompatibilityTests
{
    private const string Script = """
        {
          "name": "sdk",
          "turns": [
            { "text": "Checking.", "toolCalls": [ { "name": "Bash", "input": { "command": "ls -la", "description": "list" } } ] },
            { "text": "There are three files." }
          ]
        }
        """;

    public static TheoryData<string> Apis => ["anthropic", "openai"];

    [Theory]
    [MemberData(nameof(Apis))]
    public async Task Streaming_ToolCallThenAnswer_ParsesThroughTheSdk(string api)
    {
        await using var server = await Sim.StartAsync(Script);
        using var client = Client(api, server);
        var tools = new ChatOptions { Tools = [AIFunctionFactory.Create((string command) => "a b c", "Bash")] };
        List<ChatMessage> messages = [new(ChatRole.User, "how many files?")];

        var first = await client.GetStreamingResponseAsync(messages, tools).ToChatResponseAsync();

        Assert.Equal(ChatFinishReason.ToolCalls, first.FinishReason);
        var call = Assert.Single(first.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
        Assert.Equal("Bash", call.Name);
        Assert.Equal("ls -la", call.Arguments!["command"]!.ToString());
        Assert.Equal(api == "anthropic" ? "toolu_sim_0_0" : "call_sim_0_0", call.CallId);
        Assert.Contains("Checking.", first.Text, StringComparison.Ordinal);
        Assert.True(first.Usage?.InputTokenCount > 0);
        Assert.True(first.Usage?.OutputTokenCount > 0);

        messages.AddRange(first.Messages);
        messages.Add(new ChatMessage(ChatRole.Tool, [new FunctionResultContent(call.CallId, "a b c")]));
        var second = await client.GetStreamingResponseAsync(messages, tools).ToChatResponseAsync();

        Assert.Equal(ChatFinishReason.Stop, second.FinishReason);
        Assert.Equal("There are three files.", second.Text);
    }

    [Theory]
    [MemberData(nameof(Apis))]
    public async Task NonStreaming_ParsesThroughTheSdk(string api)
    {
        await using var server = await Sim.StartAsync(Script);
        using var client = Client(api, server);

        var response = await client.GetResponseAsync("how many files?");

        Assert.Equal(ChatFinishReason.ToolCalls, response.FinishReason);
        Assert.Equal("Bash", Assert.Single(response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>()).Name);
    }

    [Theory]
    [MemberData(nameof(Apis))]
    public async Task StatusFault_SurfacesAsAnSdkErrorWithTheStatus(string api)
    {
        await using var server = await Sim.StartAsync("""
            { "name": "busy", "turns": [ { "text": "hi", "faults": [ { "kind": "status", "status": 529, "message": "simulated overload" } ] } ] }
            """);
        using var client = Client(api, server);

        var error = await Assert.ThrowsAnyAsync<Exception>(() => client.GetStreamingResponseAsync("hello").ToChatResponseAsync());

        Assert.Contains("529", error.ToString(), StringComparison.Ordinal);
    }

    private static IChatClient Client(string api, SimulatorServer server) => api switch
    {
        "anthropic" => new AnthropicClient(new ClientOptions
        {
            ApiKey = "sim",
            BaseUrl = server.BaseUrl.ToString().TrimEnd('/'),
            MaxRetries = 0,
        }).AsIChatClient("sdk", 1024),
        _ => new OpenAIClient(
                new ApiKeyCredential("sim"),
                new OpenAIClientOptions { Endpoint = new Uri(server.BaseUrl, "v1/"), RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(0) })
            .GetChatClient("sdk")
            .AsIChatClient(),
    };
}
