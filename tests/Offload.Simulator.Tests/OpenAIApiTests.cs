using System.Net;
using System.Text.Json.Nodes;

namespace Offload.Simulator.Tests;

public sealed class OpenAIApiTests
{
    private const string TwoTools = """
        {
          "name": "tools",
          "turns": [
            { "text": "", "toolCalls": [
                { "name": "Read", "input": { "file_path": "README.md" } },
                { "name": "Grep", "input": { "pattern": "TODO", "output_mode": "content" } } ] },
            { "text": "Read the readme and found the TODOs." }
          ]
        }
        """;

    [Fact]
    public async Task Streaming_ToolCallsArriveSplitAcrossChunksWithFinishReasonAndUsage()
    {
        await using var server = await Sim.StartAsync(TwoTools);
        using var client = Sim.Client(server);

        using var response = await Sim.PostAsync(client, "v1/chat/completions", Sim.OpenAI(true, Sim.User("look")));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = await Sim.ReadSseAsync(response);
        Assert.All(events, e => Assert.Null(e.Event));
        Assert.Equal("[DONE]", events[^1].Data);
        var chunks = events.SkipLast(1).Select(e => Sim.Parse(e.Data)).ToList();
        var deltas = chunks.Where(c => c["choices"]!.AsArray().Count > 0).Select(c => c["choices"]![0]!).ToList();
        Assert.Equal("tool_calls", deltas[^1]["finish_reason"]!.GetValue<string>());

        var calls = new Dictionary<int, (string Id, string Name, string Arguments)>();
        var argumentChunks = 0;
        foreach (var call in deltas.SelectMany(d => d["delta"]!["tool_calls"]?.AsArray() ?? []))
        {
            var index = call!["index"]!.GetValue<int>();
            calls.TryGetValue(index, out var soFar);
            var function = call["function"]!;
            if (function["arguments"]!.GetValue<string>().Length > 0)
            {
                argumentChunks++;
            }

            calls[index] = (
                call["id"]?.GetValue<string>() ?? soFar.Id,
                function["name"]?.GetValue<string>() ?? soFar.Name,
                soFar.Arguments + function["arguments"]!.GetValue<string>());
        }

        Assert.Equal(("call_sim_0_0", "Read"), (calls[0].Id, calls[0].Name));
        Assert.Equal(("call_sim_0_1", "Grep"), (calls[1].Id, calls[1].Name));
        Assert.True(JsonNode.DeepEquals(new JsonObject { ["file_path"] = "README.md" }, Sim.Parse(calls[0].Arguments)));
        Assert.True(JsonNode.DeepEquals(new JsonObject { ["pattern"] = "TODO", ["output_mode"] = "content" }, Sim.Parse(calls[1].Arguments)));
        Assert.True(argumentChunks >= 4, "each call's arguments should arrive in at least two chunks");

        var usage = chunks.Single(c => c["choices"]!.AsArray().Count == 0)["usage"]!;
        Assert.Equal(
            usage["prompt_tokens"]!.GetValue<int>() + usage["completion_tokens"]!.GetValue<int>(),
            usage["total_tokens"]!.GetValue<int>());
    }

    [Fact]
    public async Task NonStreaming_AfterToolMessages_PlaysNextTurnWithStop()
    {
        await using var server = await Sim.StartAsync(TwoTools);
        using var client = Sim.Client(server);
        var body = Sim.OpenAI(
            false,
            new JsonObject { ["role"] = "system", ["content"] = "be brief" },
            Sim.User("look"),
            new JsonObject
            {
                ["role"] = "assistant",
                ["content"] = null,
                ["tool_calls"] = new JsonArray(new JsonObject { ["id"] = "call_sim_0_0", ["type"] = "function", ["function"] = new JsonObject { ["name"] = "Read", ["arguments"] = "{}" } }),
            },
            new JsonObject { ["role"] = "tool", ["tool_call_id"] = "call_sim_0_0", ["content"] = "# readme" });

        using var response = await Sim.PostAsync(client, "chat/completions", body);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var completion = Sim.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("chat.completion", completion["object"]!.GetValue<string>());
        var choice = completion["choices"]![0]!;
        Assert.Equal("stop", choice["finish_reason"]!.GetValue<string>());
        Assert.True(JsonNode.DeepEquals(
            new JsonObject { ["role"] = "assistant", ["content"] = "Read the readme and found the TODOs." },
            choice["message"]));
        Assert.True(completion["usage"]!["total_tokens"]!.GetValue<int>() > 0);
    }

    [Fact]
    public async Task Streaming_WithoutIncludeUsage_SendsNoUsageChunk()
    {
        await using var server = await Sim.StartAsync(TwoTools);
        using var client = Sim.Client(server);
        var body = Sim.OpenAI(true, Sim.User("look"));
        body.Remove("stream_options");

        using var response = await Sim.PostAsync(client, "v1/chat/completions", body);

        var events = await Sim.ReadSseAsync(response);
        Assert.DoesNotContain(events.SkipLast(1), e => Sim.Parse(e.Data)["usage"] is not null);
    }
}
