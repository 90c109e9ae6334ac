using System.Text.Json.Nodes;

namespace Offload.Simulator.Tests;

/// <summary>A scenario's context window, summary answers, and turns that go on across a compaction.</summary>
public sealed class ContextWindowTests
{
    private const string Scenario = """
        {
          "name": "windowed",
          "contextWindow": 300,
          "summary": { "text": "the summary" },
          "turns": [ { "text": "turn {{turn}}", "toolCalls": [ { "name": "Read", "input": { "file_path": "f{{turn}}.txt" } } ], "repeat": 10 } ]
        }
        """;

    [Fact]
    public async Task ARequestLongerThanTheWindow_Gets400PromptIsTooLong_AsTheApiSendsIt_InBothShapes()
    {
        await using var server = await Sim.StartAsync(Scenario);
        using var client = Sim.Client(server);
        var tooLong = new string('x', 2000);

        using var anthropic = await Sim.PostAsync(client, "/v1/messages", Sim.Anthropic(false, Sim.User(tooLong)));
        using var openAI = await Sim.PostAsync(client, "/v1/chat/completions", Sim.OpenAI(false, Sim.User(tooLong)));

        var tokens = server.Requests[0].InputTokens;
        Assert.True(tokens > 300);
        Assert.Equal(400, (int)anthropic.StatusCode);
        Assert.Equal(
            $$$"""{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: {{{tokens}}} tokens > 300 maximum"}}""",
            await anthropic.Content.ReadAsStringAsync());
        Assert.Equal(400, (int)openAI.StatusCode);
        var error = Sim.Parse(await openAI.Content.ReadAsStringAsync())["error"]!;
        Assert.Equal("context_length_exceeded", error["code"]!.GetValue<string>());
        Assert.Equal($"This model's maximum context length is 300 tokens. However, your messages resulted in {server.Requests[1].InputTokens} tokens. Please reduce the length of the messages.",
            error["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task ASummaryRequest_IsAnsweredWithTheSummary_AndTheTurnsGoOnAfterIt()
    {
        await using var server = await Sim.StartAsync(Scenario);
        using var client = Sim.Client(server);

        using var summary = await Sim.PostAsync(client, "/v1/messages", Sim.Anthropic(false,
            Sim.User("go"), Sim.Assistant("turn 0"), Sim.User("ok"), Sim.Assistant("turn 1"),
            Sim.User(global::Offload.Simulator.Scenario.SummaryRequestMarker + ", please.")));
        var text = Sim.Parse(await summary.Content.ReadAsStringAsync())["content"]![0]!["text"]!.GetValue<string>();
        Assert.StartsWith("the summary\n\n[simulator: this summary covers 2 turns of conversation ", text, StringComparison.Ordinal);
        Assert.True(server.Requests[0].Summary);

        using var next = await Sim.PostAsync(client, "/v1/messages", Sim.Anthropic(false,
            Sim.User("Continued. " + text), Sim.Assistant("turn 2"), Sim.User("ok")));
        var answer = Sim.Parse(await next.Content.ReadAsStringAsync())["content"]!.AsArray();
        Assert.Equal("turn 3", answer[0]!["text"]!.GetValue<string>());
        Assert.Equal("f3.txt", answer[1]!["input"]!["file_path"]!.GetValue<string>());
        Assert.Equal(3, server.Requests[1].TurnIndex);
    }

    [Fact]
    public async Task AHeldRequest_IsAnsweredOnlyOnceReleased()
    {
        await using var server = await Sim.StartAsync(Scenario);
        using var client = Sim.Client(server);
        using var hold = server.Hold(r => r.TurnIndex == 0);

        var answer = Sim.PostAsync(client, "/v1/messages", Sim.Anthropic(false, Sim.User("go")));
        await server.WaitForRequestAsync(r => r.TurnIndex == 0);
        Assert.False(answer.IsCompleted);
        hold.Release();

        using var response = await answer;
        Assert.Equal(200, (int)response.StatusCode);
    }
}
