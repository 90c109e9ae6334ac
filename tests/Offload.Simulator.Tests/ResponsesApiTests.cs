using System.Net;
using System.Text.Json.Nodes;

namespace Offload.Simulator.Tests;

/// <summary>The OpenAI Responses API (POST /v1/responses), as Codex CLI 0.169 sends it (input items, function calls, SSE).</summary>
public sealed class ResponsesApiTests
{
    private const string TwoTurns = """
        {
          "name": "codex",
          "turns": [
            { "text": "Writing it.", "toolCalls": [
                { "name": "exec_command", "input": { "cmd": "echo one > a.txt" } },
                { "name": "exec_command", "input": { "cmd": "wc -l a.txt" } } ],
              "faults": [ { "kind": "status", "status": 429, "retryAfter": "2", "message": "slow down" } ] },
            { "text": "Wrote a.txt." }
          ]
        }
        """;

    /// <summary>A request the way Codex builds it: developer instructions, its environment as a user message, then the prompt.</summary>
    private static JsonObject Request(bool stream, params JsonNode[] more)
    {
        var input = new JsonArray(
            Message("developer", "You are a coding agent running in the Codex CLI."),
            Message("user", "<environment_context>\n  <cwd>/repo</cwd>\n</environment_context>"),
            Message("user", "write a.txt"));
        foreach (var item in more)
        {
            input.Add(item);
        }

        return new JsonObject { ["model"] = "codex-test", ["stream"] = stream, ["input"] = input, ["tools"] = new JsonArray(), ["store"] = false };
    }

    private static JsonObject Message(string role, string text) => new()
    {
        ["type"] = "message", ["role"] = role, ["content"] = new JsonArray(new JsonObject { ["type"] = "input_text", ["text"] = text }),
    };

    [Fact]
    public async Task Streaming_TextAndFunctionCallsArriveAsNamedEventsAndEndWithUsage_AfterA429WithRetryAfter()
    {
        await using var server = await Sim.StartAsync(TwoTurns);
        using var client = Sim.Client(server);

        using (var limited = await Sim.PostAsync(client, "v1/responses", Request(true)))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
            Assert.Equal("2", Assert.Single(limited.Headers.GetValues("retry-after")));
            Assert.True(JsonNode.DeepEquals(
                Sim.Parse("""{"error":{"message":"slow down","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}"""),
                Sim.Parse(await limited.Content.ReadAsStringAsync())));
        }

        using var response = await Sim.PostAsync(client, "v1/responses", Request(true));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = await Sim.ReadSseAsync(response);
        Assert.All(events, e => Assert.Equal(e.Event, Sim.Parse(e.Data)["type"]!.GetValue<string>()));
        Assert.Equal(Enumerable.Range(0, events.Count), events.Select(e => Sim.Parse(e.Data)["sequence_number"]!.GetValue<int>()));
        Assert.Equal(["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"], events.Take(4).Select(e => e.Event));
        Assert.Equal("response.completed", events[^1].Event);

        var text = string.Concat(events.Where(e => e.Event == "response.output_text.delta").Select(e => Sim.Parse(e.Data)["delta"]!.GetValue<string>()));
        Assert.Equal("Writing it.", text);
        var arguments = events.Where(e => e.Event == "response.function_call_arguments.delta").ToList();
        Assert.True(arguments.Count >= 4, "each call's arguments arrive in at least two deltas");
        var calls = events.Where(e => e.Event == "response.output_item.done").Select(e => Sim.Parse(e.Data)["item"]!).Where(i => i["type"]!.GetValue<string>() == "function_call").ToList();
        Assert.Equal(["call_sim_0_0", "call_sim_0_1"], calls.Select(c => c["call_id"]!.GetValue<string>()));
        Assert.Equal(["exec_command", "exec_command"], calls.Select(c => c["name"]!.GetValue<string>()));
        Assert.True(JsonNode.DeepEquals(new JsonObject { ["cmd"] = "echo one > a.txt" }, Sim.Parse(calls[0]["arguments"]!.GetValue<string>())));

        var completed = Sim.Parse(events[^1].Data)["response"]!;
        Assert.Equal("completed", completed["status"]!.GetValue<string>());
        Assert.Equal(3, completed["output"]!.AsArray().Count);
        var usage = completed["usage"]!;
        Assert.Equal(usage["input_tokens"]!.GetValue<int>() + usage["output_tokens"]!.GetValue<int>(), usage["total_tokens"]!.GetValue<int>());

        var recorded = server.Requests.Where(r => r.Path == "/v1/responses").ToList();
        Assert.Equal(["responses", "responses"], recorded.Select(r => r.Api));
        Assert.Equal([0, 0], recorded.Select(r => r.TurnIndex));
        Assert.Equal("test", recorded[1].ApiKey);
    }

    [Fact]
    public async Task NonStreaming_AfterFunctionCallOutputs_PlaysTheNextTurnAsOneResponseObject()
    {
        await using var server = await Sim.StartAsync(TwoTurns);
        using var client = Sim.Client(server);
        var body = Request(false,
            Message("assistant", "Writing it."),
            new JsonObject { ["type"] = "function_call", ["call_id"] = "call_sim_0_0", ["name"] = "exec_command", ["arguments"] = "{}" },
            new JsonObject { ["type"] = "function_call", ["call_id"] = "call_sim_0_1", ["name"] = "exec_command", ["arguments"] = "{}" },
            new JsonObject { ["type"] = "function_call_output", ["call_id"] = "call_sim_0_0", ["output"] = "" },
            new JsonObject { ["type"] = "function_call_output", ["call_id"] = "call_sim_0_1", ["output"] = "1 a.txt" });

        using var response = await Sim.PostAsync(client, "v1/responses", body);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var reply = Sim.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("response", reply["object"]!.GetValue<string>());
        var item = Assert.Single(reply["output"]!.AsArray())!;
        Assert.Equal("Wrote a.txt.", item["content"]![0]!["text"]!.GetValue<string>());
        Assert.Equal(1, server.Requests[^1].TurnIndex); // the assistant message and its two calls are one answer
    }

    [Fact]
    public async Task Drop_CutsTheStreamBeforeResponseCompleted_AndErrorEventIsAFailedResponse()
    {
        await using var server = await Sim.StartAsync("""
            { "name": "cut", "turns": [ { "text": "never whole",
              "faults": [ { "kind": "drop", "afterEvents": 3 }, { "kind": "errorEvent", "message": "overloaded" } ] } ] }
            """);
        using var client = Sim.Client(server);

        using (var cut = await Sim.PostAsync(client, "v1/responses", Request(true)))
        {
            using var reader = new StreamReader(await cut.Content.ReadAsStreamAsync());
            var error = await Record.ExceptionAsync(async () =>
            {
                while (await reader.ReadLineAsync() is not null)
                {
                }
            });
            Assert.IsAssignableFrom<IOException>(error);
        }

        using var failed = await Sim.PostAsync(client, "v1/responses", Request(true));
        var events = await Sim.ReadSseAsync(failed);
        Assert.Equal(["response.created", "response.failed"], events.Select(e => e.Event));
        Assert.Equal("overloaded", Sim.Parse(events[1].Data)["response"]!["error"]!["message"]!.GetValue<string>());

        using var whole = await Sim.PostAsync(client, "v1/responses", Request(true));
        Assert.Equal("response.completed", (await Sim.ReadSseAsync(whole))[^1].Event);
    }
}
