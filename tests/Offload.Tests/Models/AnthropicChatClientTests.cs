using System.Text.Json;
using Anthropic;
using Anthropic.Core;
using Microsoft.Extensions.AI;
using Offload.Agent;
using Offload.Models;
using Offload.Protocol;
using Offload.Simulator;

namespace Offload.Tests.Models;

/// <summary>
/// <see cref="AnthropicChatClient"/> against the Simulator over HTTP: what it sends (compared with the official SDK's
/// <c>AsIChatClient</c>, as the Simulator recorded both), what it reads back, and that it keeps each message's wire
/// form correctly as a conversation grows, is rewound or changes.
/// </summary>
public sealed class AnthropicChatClientTests
{
    private const string ToolScenario = """
        {
          "name": "tools",
          "turns": [
            { "text": "Looking.", "toolCalls": [ { "name": "read_file", "input": { "path": "src/a.cs", "lines": [1, 2] } } ],
              "cacheReadTokens": 60, "cacheWriteTokens": 20 },
            { "text": "", "toolCalls": [ { "name": "read_file", "input": { "path": "src/b.cs" } }, { "name": "read_file", "input": { "path": "src/c.cs" } } ], "repeat": 3 },
            { "text": "Both files say hello." }
          ]
        }
        """;

    private static readonly AIFunctionDeclaration ReadFile = AIFunctionFactory.CreateDeclaration(
        "read_file", "Reads a file of the repository.",
        JsonElement.Parse("""{ "type": "object", "properties": { "path": { "type": "string" }, "lines": { "type": "array", "items": { "type": "integer" } } }, "required": ["path"] }"""));

    [Fact]
    public async Task ToolConversation_SendsTheMessagesTheSdkAdapterSends_AndReadsCallsUsageAndFinish()
    {
        await using var kit = await ModelTestKit.StartAsync(ToolScenario);
        using var client = kit.Client("anthropic");
        var options = new ChatOptions { Instructions = "Be brief.", Tools = [ReadFile] };
        var history = ModelTestKit.Prompt("Read the files.");
        List<ChatResponse> responses = [];
        for (var turn = 0; turn < 5; turn++)
        {
            var response = await client.GetResponseAsync(history, options);
            responses.Add(response);
            history.AddRange(response.Messages);
            var calls = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().ToList();
            if (calls.Count == 0)
            {
                break;
            }

            history.Add(new ChatMessage(ChatRole.Tool, [.. calls.Select((c, i) =>
                new FunctionResultContent(c.CallId, $"contents of {c.Arguments!["path"]}") { Exception = i == 1 ? new IOException("denied") : null })]));
        }

        Assert.Equal([ChatFinishReason.ToolCalls, ChatFinishReason.ToolCalls, ChatFinishReason.ToolCalls, ChatFinishReason.ToolCalls, ChatFinishReason.Stop],
            responses.Select(r => r.FinishReason));
        Assert.Equal("Both files say hello.", responses[^1].Text);
        var first = Assert.Single(responses[0].Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
        Assert.Equal(("read_file", "src/a.cs", "[1,2]"), (first.Name, first.Arguments!["path"]!.ToString(), JsonSerializer.Serialize(first.Arguments["lines"])));
        Assert.Equal(2, responses[1].Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Count());

        // Usage as the SDK adapter reports it: input counts cached tokens too; cache reads and writes apart.
        var usage = ModelUsage.From(responses[0].Usage);
        Assert.Equal((60, 20), (usage.CacheRead, usage.CacheWrite));
        Assert.True(usage.Input > 0 && usage.Output > 0, $"usage {usage}");
        Assert.Equal(usage.Input + 80, responses[0].Usage!.InputTokenCount);
        Assert.Equal((0, 0), (ModelUsage.From(responses[1].Usage).CacheRead, ModelUsage.From(responses[1].Usage).CacheWrite));

        // The same conversation through the SDK adapter (marked by SdkPromptCachingChatClient) sends the same messages.
        var ours = kit.ModelRequests("anthropic");
        var sdk = new SdkPromptCachingChatClient(new AnthropicClient(new ClientOptions { ApiKey = "test-key", BaseUrl = kit.Server.BaseUrl.ToString().TrimEnd('/'), MaxRetries = 0 })
            .AsIChatClient("scenario", kit.Settings().MaxOutputTokens));
        var lengths = ours.Select(r => Body(r).GetProperty("messages").GetArrayLength()).ToList();
        foreach (var length in lengths)
        {
            var upTo = history.Take(length + 1).ToList(); // + the system message
            await sdk.GetStreamingResponseAsync(upTo, options).ToChatResponseAsync();
        }

        var theirs = kit.ModelRequests("anthropic").Skip(ours.Count).ToList();
        Assert.Equal(ours.Count, theirs.Count);
        for (var i = 0; i < ours.Count; i++)
        {
            var (mine, reference) = (Body(ours[i]), Body(theirs[i]));
            Assert.True(JsonElement.DeepEquals(mine.GetProperty("messages"), reference.GetProperty("messages")),
                $"request {i}:\n{mine.GetProperty("messages")}\nvs the SDK adapter's\n{reference.GetProperty("messages")}");
            Assert.Equal(Texts(reference.GetProperty("system")), Texts(mine.GetProperty("system")));
            Assert.Equal(reference.GetProperty("max_tokens").GetInt32(), mine.GetProperty("max_tokens").GetInt32());
            Assert.Equal(reference.GetProperty("model").GetString(), mine.GetProperty("model").GetString());
            Assert.True(ours[i].Stream && theirs[i].Stream);

            // The tools are the adapter's, with a breakpoint after the last one.
            var tool = mine.GetProperty("tools")[0];
            Assert.Equal("ephemeral", tool.GetProperty("cache_control").GetProperty("type").GetString());
            var schema = reference.GetProperty("tools")[0].GetProperty("input_schema");
            Assert.True(JsonElement.DeepEquals(tool.GetProperty("input_schema"), schema), $"{tool.GetProperty("input_schema")}\nvs the SDK adapter's\n{schema}");
        }

        // Both system blocks (the system message and the instructions) are there; the breakpoint is after the last
        // (SdkPromptCachingChatClient marks the last system message, which here comes before the instructions).
        var system = Body(ours[^1]).GetProperty("system");
        Assert.Equal(["You are a careful coding agent.", "Be brief."], system.EnumerateArray().Select(b => b.GetProperty("text").GetString()));
        Assert.Equal("ephemeral", system[1].GetProperty("cache_control").GetProperty("type").GetString());
        var error = Body(ours[^1]).GetProperty("messages").EnumerateArray().SelectMany(m => m.GetProperty("content").EnumerateArray())
            .Where(b => b.GetProperty("type").GetString() == "tool_result").ToList();
        Assert.Equal([false, false, true, false, true, false, true], error.Select(b => b.GetProperty("is_error").GetBoolean()));
        Assert.Empty(kit.Retries);
    }

    [Fact]
    public async Task ToolResultsRebuiltFromTheJournal_CarryIsError_InCallOrder_AsTheSdkAdapterSendsThem()
    {
        await using var kit = await ModelTestKit.StartAsync(ToolScenario);
        using var client = kit.Client("anthropic");
        var options = new ChatOptions { Tools = [ReadFile] };
        var input = JsonElement.Parse("""{ "path": "src/a.cs" }""");
        AgentEvent[] journal =
        [
            new TaskCreated("Read the files.", "anthropic:scenario", "builtin", "b", "main", "c0") { Seq = 1 },
            new AssistantMessage(1, "Looking.") { Seq = 2 },
            new ToolCalled(1, "toolu_a", "read_file", input) { Seq = 3 },
            new ToolCalled(1, "toolu_b", "read_file", input) { Seq = 4 },
            new ToolResulted("toolu_b", "read_file", "hello", IsError: false) { Seq = 5 }, // read-only calls end in any order
            new ToolResulted("toolu_a", "read_file", "File does not exist: src/a.cs", IsError: true) { Seq = 6 },
        ];
        var history = Conversation.Rebuild(journal);

        await client.GetResponseAsync(history, options);
        var sdk = new SdkPromptCachingChatClient(new AnthropicClient(new ClientOptions { ApiKey = "test-key", BaseUrl = kit.Server.BaseUrl.ToString().TrimEnd('/'), MaxRetries = 0 })
            .AsIChatClient("scenario", kit.Settings().MaxOutputTokens));
        await sdk.GetStreamingResponseAsync(history, options).ToChatResponseAsync();

        var (mine, reference) = (Body(kit.ModelRequests("anthropic")[0]).GetProperty("messages"), Body(kit.ModelRequests("anthropic")[1]).GetProperty("messages"));
        Assert.True(JsonElement.DeepEquals(mine, reference), $"{mine}\nvs the SDK adapter's\n{reference}");
        var results = mine[mine.GetArrayLength() - 1].GetProperty("content").EnumerateArray().ToList();
        Assert.Equal([("toolu_a", true, "File does not exist: src/a.cs"), ("toolu_b", false, "hello")],
            results.Select(b => (b.GetProperty("tool_use_id").GetString(), b.GetProperty("is_error").GetBoolean(), b.GetProperty("content").GetString())));
    }

    [Fact]
    public async Task Breakpoint_MovesToTheNewestMessage_AndTheCallersMessagesStayUnmarked()
    {
        await using var kit = await ModelTestKit.StartAsync(ToolScenario);
        using var client = kit.Client("anthropic");
        var options = new ChatOptions { Tools = [ReadFile] };
        var history = ModelTestKit.Prompt("Read the files.");

        var first = await client.GetResponseAsync(history, options);
        history.AddRange(first.Messages);
        var call = first.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Single();
        history.Add(new ChatMessage(ChatRole.Tool, [new FunctionResultContent(call.CallId, "hello")]));
        await client.GetResponseAsync(history, options);

        var requests = kit.ModelRequests("anthropic");
        foreach (var request in requests)
        {
            var blocks = Body(request).GetProperty("messages").EnumerateArray().SelectMany(m => m.GetProperty("content").EnumerateArray()).ToList();
            Assert.Equal(1, blocks.Count(b => b.TryGetProperty("cache_control", out _)));
            Assert.True(blocks[^1].TryGetProperty("cache_control", out _), "the newest block is the breakpoint");
        }

        Assert.All(history.SelectMany(m => m.Contents), c => Assert.Null(c.AdditionalProperties));
    }

    [Fact]
    public async Task RewoundOrChangedConversation_SendsExactlyWhatAFreshClientSends()
    {
        await using var kit = await ModelTestKit.StartAsync(ToolScenario);
        using var client = kit.Client("anthropic");
        var options = new ChatOptions { Tools = [ReadFile] };
        var history = ModelTestKit.Prompt("Read the files.");
        for (var turn = 0; turn < 3; turn++)
        {
            var response = await client.GetResponseAsync(history, options);
            history.AddRange(response.Messages);
            history.Add(new ChatMessage(ChatRole.Tool, [.. response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>()
                .Select(c => new FunctionResultContent(c.CallId, $"turn {turn}"))]));
        }

        // Rewound to an earlier point, then a different conversation, then the long one with an edited tool result.
        List<ChatMessage> rewound = [.. history.Take(4)];
        List<ChatMessage> other = ModelTestKit.Prompt("Something else.");
        ((FunctionResultContent)history[3].Contents[0]).Result = "edited";
        List<List<ChatMessage>> conversations = [rewound, other, history];
        foreach (var conversation in conversations)
        {
            await client.GetResponseAsync(conversation, options);
        }

        using var fresh = kit.Client("anthropic");
        foreach (var conversation in conversations)
        {
            await fresh.GetResponseAsync(conversation, options);
        }

        var requests = kit.ModelRequests("anthropic");
        var kept = requests.Skip(3).Take(3).ToList();
        var again = requests.Skip(6).ToList();
        Assert.Equal(3, again.Count);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(again[i].Body, kept[i].Body);
        }

        Assert.Contains("edited", kept[2].Body);
        Assert.Equal(4, Body(kept[0]).GetProperty("messages").GetArrayLength() + 1);
    }

    [Fact]
    public async Task ImagesAndDocuments_AreSentAsBase64Blocks_AsTheSdkAdapterSendsThem()
    {
        await using var kit = await ModelTestKit.StartAsync("""{ "name": "text", "turns": [ { "text": "A red square." } ] }""");
        using var client = kit.Client("anthropic");
        List<ChatMessage> history = [new(ChatRole.User, [
            new TextContent("What is this?"),
            new DataContent(new byte[] { 0x89, 0x50, 0x4E, 0x47 }, "image/png"),
            new DataContent("%PDF-1.4"u8.ToArray(), "application/pdf"),
        ])];

        var response = await client.GetResponseAsync(history);

        Assert.Equal("A red square.", response.Text);
        var sdk = new SdkPromptCachingChatClient(new AnthropicClient(new ClientOptions { ApiKey = "test-key", BaseUrl = kit.Server.BaseUrl.ToString().TrimEnd('/'), MaxRetries = 0 })
            .AsIChatClient("scenario", kit.Settings().MaxOutputTokens));
        await sdk.GetResponseAsync(history);
        var requests = kit.ModelRequests("anthropic");
        Assert.Equal(2, requests.Count);
        var (mine, reference) = (Body(requests[0]).GetProperty("messages"), Body(requests[1]).GetProperty("messages"));
        Assert.True(JsonElement.DeepEquals(mine, reference), $"{mine}\nvs the SDK adapter's\n{reference}");
        Assert.Equal(["text", "image", "document"], mine[0].GetProperty("content").EnumerateArray().Select(b => b.GetProperty("type").GetString()));
    }

    private const string ThinkingScenario = """
        {
          "name": "thinking",
          "thinking": "adaptive",
          "turns": [
            { "thinking": "I should read a.cs first.\nThen the others.", "text": "Looking.", "toolCalls": [ { "name": "read_file", "input": { "path": "src/a.cs" } } ] },
            { "thinking": "Now b and c, together.", "redactedThinking": true,
              "toolCalls": [ { "name": "read_file", "input": { "path": "src/b.cs" } }, { "name": "read_file", "input": { "path": "src/c.cs" } } ] },
            { "redactedThinking": true, "toolCalls": [ { "name": "read_file", "input": { "path": "src/d.cs" } } ] },
            { "thinking": "All read.", "text": "They all say hello." }
          ]
        }
        """;

    [Fact]
    public async Task ThinkingBetweenToolCalls_AndRedactedThinking_AreReadWithSignatures_AndSentBackAsTheSdkAdapterSendsThem()
    {
        await using var kit = await ModelTestKit.StartAsync(ThinkingScenario);
        using var client = new AnthropicChatClient(kit.Server.BaseUrl.ToString(), "test-key", "scenario", 32_000, new ThinkingRequest(Effort: "high"));
        var options = new ChatOptions { Instructions = "Be brief.", Tools = [ReadFile] };
        var history = ModelTestKit.Prompt("Read the files.");
        List<ChatResponse> responses = [];
        for (var turn = 0; turn < 5; turn++)
        {
            var response = await client.GetResponseAsync(history, options);
            responses.Add(response);
            var contents = response.Messages.SelectMany(m => m.Contents).ToList();
            var calls = contents.OfType<FunctionCallContent>().ToList();

            // As the agent loop does: the journal's form of the turn (thinking first), then its text and calls.
            var thinking = Offload.Agent.Conversation.ThinkingOf(contents) ?? [];
            history.Add(new ChatMessage(ChatRole.Assistant, [.. thinking.Select(Offload.Agent.Conversation.ToContent), new TextContent(response.Text), .. calls]));
            if (calls.Count == 0)
            {
                break;
            }

            history.Add(new ChatMessage(ChatRole.Tool, [.. calls.Select(c => new FunctionResultContent(c.CallId, $"contents of {c.Arguments!["path"]}"))]));
        }

        Assert.Equal("They all say hello.", responses[^1].Text);
        var read = responses.Select(r => r.Messages.SelectMany(m => m.Contents).OfType<TextReasoningContent>()
            .Select(t => (t.Text, t.ProtectedData, AnthropicChatClient.IsRedacted(t))).ToList()).ToList();
        Assert.Equal([("I should read a.cs first.\nThen the others.", SimulatedThinking.Sign("I should read a.cs first.\nThen the others."), false)], read[0]);
        Assert.Equal([("Now b and c, together.", SimulatedThinking.Sign("Now b and c, together."), false), ("", SimulatedThinking.RedactedData(1), true)], read[1]);
        Assert.Equal([("", SimulatedThinking.RedactedData(2), true)], read[2]);
        Assert.Equal([("All read.", SimulatedThinking.Sign("All read."), false)], read[3]);

        // The same conversations through the SDK adapter, asking for adaptive thinking at high effort.
        var ours = kit.ModelRequests("anthropic");
        Assert.Equal(4, ours.Count); // the Simulator accepted every request: each block came back unchanged
        var sdk = new SdkPromptCachingChatClient(new AnthropicClient(new ClientOptions { ApiKey = "test-key", BaseUrl = kit.Server.BaseUrl.ToString().TrimEnd('/'), MaxRetries = 0 })
            .AsIChatClient("scenario", 32_000));
        var sdkOptions = new ChatOptions { Instructions = "Be brief.", Tools = [ReadFile], Reasoning = new ReasoningOptions { Effort = ReasoningEffort.High } };
        foreach (var request in ours)
        {
            await sdk.GetStreamingResponseAsync(history.Take(Body(request).GetProperty("messages").GetArrayLength() + 1).ToList(), sdkOptions).ToChatResponseAsync();
        }

        var theirs = kit.ModelRequests("anthropic").Skip(ours.Count).ToList();
        Assert.Equal(ours.Count, theirs.Count);
        for (var i = 0; i < ours.Count; i++)
        {
            var (mine, reference) = (Body(ours[i]), Body(theirs[i]));
            Assert.True(JsonElement.DeepEquals(mine.GetProperty("messages"), reference.GetProperty("messages")),
                $"request {i}:\n{mine.GetProperty("messages")}\nvs the SDK adapter's\n{reference.GetProperty("messages")}");
            Assert.Equal("""{"type":"adaptive"}""", mine.GetProperty("thinking").GetRawText());
            Assert.Equal("""{"effort":"high"}""", mine.GetProperty("output_config").GetRawText());
            Assert.Equal(reference.GetProperty("thinking").GetProperty("type").GetString(), mine.GetProperty("thinking").GetProperty("type").GetString());
            Assert.True(JsonElement.DeepEquals(mine.GetProperty("output_config"), reference.GetProperty("output_config")),
                $"{mine.GetProperty("output_config")} vs the SDK adapter's {reference.GetProperty("output_config")}");
        }

        // The last request holds every turn's thinking, first in its turn, as it was given.
        var last = Body(ours[^1]).GetProperty("messages").EnumerateArray().Where(m => m.GetProperty("role").GetString() == "assistant")
            .Select(m => string.Join(",", m.GetProperty("content").EnumerateArray().Select(b => b.GetProperty("type").GetString()))).ToList();
        Assert.Equal(["thinking,text,tool_use", "thinking,redacted_thinking,tool_use,tool_use", "redacted_thinking,tool_use"], last);

        // Not streamed, the Simulator answers with the same blocks (read here by the SDK adapter).
        var whole = await sdk.GetResponseAsync(history.Take(2).ToList(), sdkOptions);
        var block = Assert.Single(whole.Messages.SelectMany(m => m.Contents).OfType<TextReasoningContent>());
        Assert.Equal(("I should read a.cs first.\nThen the others.", SimulatedThinking.Sign("I should read a.cs first.\nThen the others.")), (block.Text, block.ProtectedData));
    }

    [Fact]
    public async Task AlteredOrDroppedThinking_IsRefusedByTheSimulator_AsTheApiRefusesIt()
    {
        await using var kit = await ModelTestKit.StartAsync(ThinkingScenario);
        using var client = new AnthropicChatClient(kit.Server.BaseUrl.ToString(), "test-key", "scenario", 32_000, new ThinkingRequest(Effort: "high"));
        var options = new ChatOptions { Tools = [ReadFile] };
        var prompt = ModelTestKit.Prompt("Read the files.");
        var first = await client.GetResponseAsync(prompt, options);
        var contents = first.Messages.SelectMany(m => m.Contents).ToList();
        var call = contents.OfType<FunctionCallContent>().Single();
        var thought = contents.OfType<TextReasoningContent>().Single();
        List<ChatMessage> Turn(params AIContent[] assistant) =>
            [.. prompt, new(ChatRole.Assistant, assistant), new(ChatRole.Tool, [new FunctionResultContent(call.CallId, "hello")])];

        var altered = new TextReasoningContent(thought.Text + " (edited)") { ProtectedData = thought.ProtectedData };
        var forged = AnthropicChatClient.RedactedThinking(Convert.ToBase64String(new byte[64]));
        foreach (var (conversation, expected) in new[]
        {
            (Turn(altered, call), "Invalid `signature` in `thinking` block"),
            (Turn(thought, forged, call), "Invalid `data` in `redacted_thinking` block"),
            (Turn(call), "Expected `thinking`, but found `tool_use`"),
        })
        {
            var error = await Assert.ThrowsAsync<ModelProviderException>(() => client.GetResponseAsync(conversation, options));
            Assert.Equal(400, error.StatusCode);
            Assert.Contains(expected, error.Message);
        }

        var accepted = await client.GetResponseAsync(Turn(thought, call), options);
        Assert.Equal(2, accepted.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Count());
    }

    [Fact]
    public void ContentItCannotSend_IsRefusedBeforeAnyCall()
    {
        using var client = new AnthropicChatClient("http://127.0.0.1:9", "test-key", "scenario", 1000);
        List<ChatMessage> history = [new(ChatRole.User, [new DataContent(new byte[] { 1, 2, 3 }, "audio/wav")])];

        var error = Assert.Throws<NotSupportedException>(() => client.GetStreamingResponseAsync(history));

        Assert.Contains("DataContent", error.Message);
        Assert.Contains("images and PDF documents", error.Message);
    }

    private static List<string?> Texts(JsonElement blocks) => [.. blocks.EnumerateArray().Select(b => b.GetProperty("text").GetString())];

    private static JsonElement Body(Offload.Simulator.RecordedRequest request) => JsonElement.Parse(request.Body);
}
