using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace Offload.Simulator.Tests;

public sealed class AnthropicApiTests
{
    private const string TwoTurns = """
        {
          "name": "two",
          "turns": [
            { "text": "Looking.", "toolCalls": [ { "name": "Bash", "input": { "command": "git status --short", "description": "status" } } ] },
            { "text": "All clean." }
          ]
        }
        """;

    [Fact]
    public async Task Streaming_ToolUseTurnThenToolResultFollowUp_PlaysScriptInOrder()
    {
        await using var server = await Sim.StartAsync(TwoTurns);
        using var client = Sim.Client(server);

        using var first = await Sim.PostAsync(client, "v1/messages?beta=true", Sim.Anthropic(true, Sim.User("check the tree")));
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        var events = await Sim.ReadSseAsync(first);

        Assert.Equal("message_start", events[0].Event);
        Assert.Equal("message_stop", events[^1].Event);
        Assert.All(events, e => Assert.Equal(e.Event, Sim.Parse(e.Data)["type"]!.GetValue<string>()));
        var text = string.Concat(events
            .Where(e => e.Event == "content_block_delta" && Sim.Parse(e.Data)["delta"]!["type"]!.GetValue<string>() == "text_delta")
            .Select(e => Sim.Parse(e.Data)["delta"]!["text"]!.GetValue<string>()));
        Assert.Equal("Looking.", text);
        var toolStart = events.Single(e => e.Event == "content_block_start" && Sim.Parse(e.Data)["content_block"]!["type"]!.GetValue<string>() == "tool_use");
        var block = Sim.Parse(toolStart.Data)["content_block"]!;
        Assert.Equal("toolu_sim_0_0", block["id"]!.GetValue<string>());
        Assert.Equal("Bash", block["name"]!.GetValue<string>());
        var jsonParts = events
            .Where(e => e.Event == "content_block_delta" && Sim.Parse(e.Data)["delta"]!["type"]!.GetValue<string>() == "input_json_delta")
            .Select(e => Sim.Parse(e.Data)["delta"]!["partial_json"]!.GetValue<string>())
            .ToList();
        Assert.True(jsonParts.Count >= 2, "tool input should arrive in at least two chunks");
        Assert.True(JsonNode.DeepEquals(
            new JsonObject { ["command"] = "git status --short", ["description"] = "status" },
            Sim.Parse(string.Concat(jsonParts))));
        var delta = Sim.Parse(events.Single(e => e.Event == "message_delta").Data);
        Assert.Equal("tool_use", delta["delta"]!["stop_reason"]!.GetValue<string>());
        Assert.True(delta["usage"]!["output_tokens"]!.GetValue<int>() > 0);
        Assert.True(Sim.Parse(events[0].Data)["message"]!["usage"]!["input_tokens"]!.GetValue<int>() > 0);

        var followUp = Sim.Anthropic(
            true,
            Sim.User("check the tree"),
            new JsonObject
            {
                ["role"] = "assistant",
                ["content"] = new JsonArray(
                    new JsonObject { ["type"] = "text", ["text"] = "Looking." },
                    new JsonObject { ["type"] = "tool_use", ["id"] = "toolu_sim_0_0", ["name"] = "Bash", ["input"] = new JsonObject { ["command"] = "git status --short" } }),
            },
            new JsonObject
            {
                ["role"] = "user",
                ["content"] = new JsonArray(new JsonObject
                {
                    ["type"] = "tool_result",
                    ["tool_use_id"] = "toolu_sim_0_0",
                    ["content"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = "" }),
                }),
            });
        using var second = await Sim.PostAsync(client, "v1/messages?beta=true", followUp);
        var secondEvents = await Sim.ReadSseAsync(second);
        Assert.DoesNotContain(secondEvents, e => e.Data.Contains("tool_use\"", StringComparison.Ordinal) && e.Event == "content_block_start");
        Assert.Equal("end_turn", Sim.Parse(secondEvents.Single(e => e.Event == "message_delta").Data)["delta"]!["stop_reason"]!.GetValue<string>());

        followUp["messages"]!.AsArray().Add(Sim.Assistant("All clean."));
        followUp["messages"]!.AsArray().Add(Sim.User("anything else?"));
        using var third = await Sim.PostAsync(client, "v1/messages", followUp);
        var thirdText = string.Concat((await Sim.ReadSseAsync(third))
            .Where(e => e.Event == "content_block_delta")
            .Select(e => Sim.Parse(e.Data)["delta"]!["text"]!.GetValue<string>()));
        Assert.Equal("(scenario finished)", thirdText);
    }

    [Fact]
    public async Task NonStreaming_ReturnsWholeMessageWithToolUseAndUsage()
    {
        await using var server = await Sim.StartAsync(TwoTurns);
        using var client = Sim.Client(server);

        using var response = await Sim.PostAsync(client, "v1/messages", Sim.Anthropic(false, Sim.User("go")));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var message = Sim.Parse(await response.Content.ReadAsStringAsync());
        var id = message["id"]!.GetValue<string>();
        Assert.StartsWith("msg_sim_", id, StringComparison.Ordinal);
        var expected = Sim.Parse($$"""
            {
              "id": "{{id}}", "type": "message", "role": "assistant", "model": "claude-test",
              "content": [
                { "type": "text", "text": "Looking." },
                { "type": "tool_use", "id": "toolu_sim_0_0", "name": "Bash", "input": { "command": "git status --short", "description": "status" } }
              ],
              "stop_reason": "tool_use", "stop_sequence": null,
              "usage": { "input_tokens": {{message["usage"]!["input_tokens"]}}, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": {{message["usage"]!["output_tokens"]}} }
            }
            """);
        Assert.True(JsonNode.DeepEquals(expected, message), message.ToJsonString());
    }

    [Fact]
    public async Task SystemAsStringAndLargeBody_AreAccepted()
    {
        await using var server = await Sim.StartAsync(TwoTurns);
        using var client = Sim.Client(server);
        var body = Sim.Anthropic(false, Sim.User("go"));
        body["system"] = new string('x', 200_000);
        body["tools"] = new JsonArray(new JsonObject { ["name"] = "Bash", ["input_schema"] = new JsonObject { ["type"] = "object" } });

        using var response = await Sim.PostAsync(client, "v1/messages?beta=true", body);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var usage = Sim.Parse(await response.Content.ReadAsStringAsync())["usage"]!;
        Assert.True(usage["input_tokens"]!.GetValue<int>() >= 50_000);
    }

    [Fact]
    public async Task HeadAndGetRoot_Answer200()
    {
        await using var server = await Sim.StartAsync(TwoTurns);
        using var client = Sim.Client(server);

        using var head = await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/"));
        using var get = await client.GetAsync("/");

        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
    }

    [Fact]
    public async Task CountTokens_EstimatesFromBody()
    {
        await using var server = await Sim.StartAsync(TwoTurns);
        using var client = Sim.Client(server);
        var body = Sim.Anthropic(false, Sim.User(new string('a', 4000)));

        using var response = await Sim.PostAsync(client, "v1/messages/count_tokens?beta=true", body);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var tokens = Sim.Parse(await response.Content.ReadAsStringAsync())["input_tokens"]!.GetValue<int>();
        Assert.InRange(tokens, 1000, 1200);
    }

    [Fact]
    public async Task InvalidJsonBody_Answers400WithAnthropicError()
    {
        await using var server = await Sim.StartAsync(TwoTurns);
        using var client = Sim.Client(server);

        using var response = await client.PostAsync("v1/messages", new StringContent("{not json", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = Sim.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("error", error["type"]!.GetValue<string>());
        Assert.Equal("invalid_request_error", error["error"]!["type"]!.GetValue<string>());
    }
}
