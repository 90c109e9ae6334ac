using System.Net;
using System.Text.Json.Nodes;

namespace Offload.Simulator.Tests;

public sealed class ScenarioTests
{
    [Theory]
    [InlineData("{", "not valid JSON")]
    [InlineData("""{"name":"x"}""", "'turns' is required")]
    [InlineData("""{"name":"x","turns":[{"text":"a","toolcalls":[]}]}""", "turns[0] has an unknown property 'toolcalls'")]
    [InlineData("""{"name":"x","turns":[{"toolCalls":[{"input":{}}]}]}""", "turns[0].toolCalls[0].name is required")]
    [InlineData("""{"name":"x","turns":[{"repeat":0}]}""", "turns[0].repeat is 0; it must be at least 1")]
    [InlineData("""{"name":"x","turns":[{"faults":[{"kind":"explode"}]}]}""", "turns[0].faults[0].kind 'explode' is unknown")]
    [InlineData("""{"name":"x","turns":[{"faults":[{"kind":"status"}]}]}""", "turns[0].faults[0].status is required")]
    [InlineData("""{"name":"x","turns":[],"rules":[{"turn":{}}]}""", "rules[0].whenContains is required")]
    [InlineData("""{"name":"x","turns":[{"delayMs":"slow"}]}""", "turns[0].delayMs must be a whole number, not the string \"slow\"")]
    public void Parse_InvalidScenario_ThrowsFormatExceptionNamingTheMistake(string json, string expected)
    {
        var error = Assert.Throws<FormatException>(() => Scenario.Parse(json));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Builtin_UnknownName_ThrowsListingTheBuiltinNames()
    {
        var error = Assert.Throws<KeyNotFoundException>(() => Scenario.Builtin("nope"));

        Assert.Contains("demo, echo, slow", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Builtins_AllParseAndAreListed()
    {
        Assert.Equal(["demo", "echo", "slow"], Scenario.BuiltinNames);
        foreach (var name in Scenario.BuiltinNames)
        {
            Assert.Equal(name, Scenario.Builtin(name).Name);
        }

        var demo = Scenario.Builtin("demo");
        Assert.Equal(
            ["Glob", "Bash", "Write", "Read", "Edit", "Bash"],
            demo.Turns.SelectMany(t => t.ToolCalls).Select(c => c.Name));
        Assert.Empty(demo.Turns[^1].ToolCalls);
    }

    [Fact]
    public void Load_UsesFileNameWhenScenarioHasNoName()
    {
        var path = Path.Combine(Path.GetTempPath(), $"sim-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, """{"turns":[{"text":"hi"}]}""");
        try
        {
            Assert.Equal(Path.GetFileNameWithoutExtension(path), Scenario.Load(path).Name);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Repeat_OccupiesConsecutiveTurnIndices()
    {
        await using var server = await Sim.StartAsync("""
            {
              "name": "bench",
              "turns": [
                { "text": "step", "toolCalls": [ { "name": "Bash", "input": { "command": "true" } } ], "repeat": 1000 },
                { "text": "done" }
              ]
            }
            """);
        using var client = Sim.Client(server);

        Assert.Equal("tool_use", await StopReasonAtTurnAsync(client, 0));
        Assert.Equal("tool_use", await StopReasonAtTurnAsync(client, 999));
        Assert.Equal("end_turn", await StopReasonAtTurnAsync(client, 1000));
        Assert.Equal("toolu_sim_999_0", (await MessageAtTurnAsync(client, 999))["content"]![1]!["id"]!.GetValue<string>());
        Assert.Equal("done", (await MessageAtTurnAsync(client, 1000))["content"]![0]!["text"]!.GetValue<string>());
        Assert.Equal("(scenario finished)", (await MessageAtTurnAsync(client, 1001))["content"]![0]!["text"]!.GetValue<string>());
    }

    [Fact]
    public async Task Rules_MatchLastUserMessageIncludingToolResults_AndRespectAfterTurn()
    {
        await using var server = await Sim.StartAsync("""
            {
              "name": "rules",
              "turns": [ { "text": "first" }, { "text": "second" } ],
              "rules": [
                { "whenContains": "also fix", "afterTurn": 1, "turn": { "text": "Fixed it too." } },
                { "whenContains": "permission denied", "turn": { "text": "That failed; stopping." } }
              ],
              "finalText": "nothing more"
            }
            """);
        using var client = Sim.Client(server);

        Assert.Equal("first", await TextAsync(client, Sim.User("also fix it")));
        Assert.Equal("Fixed it too.", await TextAsync(client, Sim.User("do it"), Sim.Assistant("first"), Sim.User("please ALSO FIX the flaky test")));
        Assert.Equal("second", await TextAsync(client, Sim.User("also fix: do it"), Sim.Assistant("first"), Sim.User("go on")));
        var toolResult = new JsonObject
        {
            ["role"] = "user",
            ["content"] = new JsonArray(new JsonObject { ["type"] = "tool_result", ["tool_use_id"] = "t", ["content"] = "bash: permission denied", ["is_error"] = true }),
        };
        Assert.Equal("That failed; stopping.", await TextAsync(client, Sim.User("do it"), Sim.Assistant("first"), toolResult));
    }

    private static async Task<string> TextAsync(HttpClient client, params JsonNode[] messages)
    {
        using var response = await Sim.PostAsync(client, "v1/messages", Sim.Anthropic(false, messages));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return Sim.Parse(await response.Content.ReadAsStringAsync())["content"]![0]!["text"]!.GetValue<string>();
    }

    private static async Task<JsonNode> MessageAtTurnAsync(HttpClient client, int turn)
    {
        var messages = new List<JsonNode> { Sim.User("start") };
        for (var i = 0; i < turn; i++)
        {
            messages.Add(Sim.Assistant("step"));
            messages.Add(Sim.User("ok"));
        }

        using var response = await Sim.PostAsync(client, "v1/messages", Sim.Anthropic(false, [.. messages]));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return Sim.Parse(await response.Content.ReadAsStringAsync());
    }

    private static async Task<string> StopReasonAtTurnAsync(HttpClient client, int turn) =>
        (await MessageAtTurnAsync(client, turn))["stop_reason"]!.GetValue<string>();
}
