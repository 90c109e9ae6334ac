using System.Text.Json;
using Offload.Protocol;
using Offload.Simulator;
using static Offload.Tests.Resilience.ResilienceKit;

namespace Offload.Tests.EndToEnd;

/// <summary>
/// Thinking end to end: the real daemon runs the builtin agent against a Simulator in the test (an Anthropic-protocol
/// provider <c>simt</c>, so every request can be read), whose scenario declares the thinking it takes. The Simulator
/// signs each thinking block it gives and answers 400 when one comes back altered or missing, as the API does.
/// </summary>
public sealed class ThinkingTests : IAsyncLifetime
{
    private const string FirstThought = "Read the readme first.\nIt says what the project is.";
    private const string SecondThought = "Now app.py.";
    private readonly OffloadHarness _h = new();
    private SimulatorServer _sim = null!;

    public async Task InitializeAsync() => _sim = await SimulatorServer.StartAsync(new SimulatorOptions());

    public async Task DisposeAsync()
    {
        await _h.DisposeAsync();
        await _sim.DisposeAsync();
    }

    /// <summary>
    /// Turn 0 thinks, then reads README.md; turn 1 thinks, has a redacted block, then reads app.py; turn 2 thinks and
    /// answers. <paramref name="secondTurnFaults"/> go on turn 1.
    /// </summary>
    private static object ThinkingScenario(string thinking = "adaptive", params object[] secondTurnFaults) => new
    {
        name = "thinking",
        thinking,
        turns = new object[]
        {
            new { thinking = FirstThought, text = "", toolCalls = new[] { new { name = "Read", input = new { file_path = "README.md" } } } },
            new { thinking = SecondThought, redactedThinking = true, text = "", toolCalls = new[] { new { name = "Read", input = new { file_path = "app.py" } } }, faults = secondTurnFaults },
            new { thinking = "Both read.", text = "Done reading." },
        },
    };

    /// <summary>
    /// The model for the scenario and the config: the <c>simt</c> provider, fast retries, and models.thinking as
    /// <paramref name="thinking"/> makes it for the model.
    /// </summary>
    private string Model(object scenario, Func<string, object>? thinking = null, string idleTimeout = "00:00:05")
    {
        var model = "simt:" + _h.Scenario("thinking-" + Guid.NewGuid().ToString("N")[..8], scenario)["sim:".Length..];
        _h.WriteConfig(new
        {
            models = new
            {
                retry = new { maxTries = 4, baseDelay = "00:00:00.020", maxDelay = "00:00:00.100", idleTimeout },
                providers = new Dictionary<string, object> { ["simt"] = new { kind = "anthropic", baseUrl = _sim.BaseUrl.ToString(), apiKey = "test" } },
                thinking = thinking?.Invoke(model) ?? new Dictionary<string, object>(),
            },
        });
        return model;
    }

    private List<JsonElement> Requests(string model) =>
        [.. _sim.Requests.Where(r => r.Api == "anthropic" && r.Model == model["simt:".Length..]).Select(r => JsonElement.Parse(r.Body))];

    /// <summary>Each assistant message's thinking blocks in a request: (type, thinking or data, signature).</summary>
    private static List<List<(string?, string?, string?)>> Thinking(JsonElement request) =>
    [
        .. request.GetProperty("messages").EnumerateArray().Where(m => m.GetProperty("role").GetString() == "assistant")
            .Select(m => m.GetProperty("content").EnumerateArray()
                .TakeWhile(b => b.GetProperty("type").GetString() is "thinking" or "redacted_thinking")
                .Select(b => b.GetProperty("type").GetString() == "thinking"
                    ? ("thinking", b.GetProperty("thinking").GetString(), b.GetProperty("signature").GetString())
                    : ((string?)"redacted_thinking", b.GetProperty("data").GetString(), (string?)null))
                .ToList()),
    ];

    /// <summary>The blocks the Simulator gave for turns 0 and 1 of <see cref="ThinkingScenario"/>.</summary>
    private static readonly List<List<(string?, string?, string?)>> Given =
    [
        [("thinking", FirstThought, SimulatedThinking.Sign(FirstThought))],
        [("thinking", SecondThought, SimulatedThinking.Sign(SecondThought)), ("redacted_thinking", SimulatedThinking.RedactedData(1), null)],
    ];

    [Fact]
    public async Task ThinkingAndRedactedThinkingBetweenToolCalls_TaskSucceeds_AndEveryLaterRequestCarriesTheBlocksUnchanged()
    {
        var model = Model(ThinkingScenario());

        var task = await _h.RunTaskAsync(model, "read the files");
        var done = await _h.WaitAsync(task.Id);

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status.ToWire()}: {done.Error}");
        Assert.Equal("Done reading.", done.Summary);
        var requests = Requests(model);
        Assert.Equal(3, requests.Count);
        for (var k = 0; k < requests.Count; k++)
        {
            Assert.Equal(Given.Take(k), Thinking(requests[k]));
            Assert.Equal("""{"type":"adaptive"}""", requests[k].GetProperty("thinking").GetRawText());
        }

        var journal = (await _h.EventsAsync(task.Id)).OfType<AssistantMessage>().ToList();
        Assert.Equal(
            [
                [new ThinkingBlock(FirstThought, SimulatedThinking.Sign(FirstThought))],
                [new ThinkingBlock(SecondThought, SimulatedThinking.Sign(SecondThought)), new ThinkingBlock("", null, SimulatedThinking.RedactedData(1))],
                [new ThinkingBlock("Both read.", SimulatedThinking.Sign("Both read."))],
            ],
            journal.Select(a => a.Thinking!.ToList()));
    }

    [Fact]
    public async Task DaemonKilledMidTask_ResumedRunSendsTheSameThinkingBlocks()
    {
        // Turn 1's first answer stalls (for a minute: longer than the test waits), so the daemon is killed with the call out.
        var model = Model(ThinkingScenario("adaptive", new { kind = "stall", ms = 60_000 }), idleTimeout: "00:02:00");
        var task = await _h.RunTaskAsync(model, "read the files");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await _sim.WaitForRequestAsync(r => r.Model == model["simt:".Length..] && r.TurnIndex == 1, timeout.Token);

        await KillNineAsync(await _h.DaemonPidAsync());
        await _h.DaemonPidAsync(); // a new daemon, which resumes the task from its journal
        var done = await _h.WaitAsync(task.Id);

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status.ToWire()}: {done.Error}");
        var requests = Requests(model);
        var turn1 = requests.Where(r => Thinking(r).Count == 1).ToList();
        Assert.Equal(2, turn1.Count); // before the kill, and from the resumed run
        Assert.True(JsonElement.DeepEquals(turn1[0].GetProperty("messages"), turn1[1].GetProperty("messages")),
            $"the resumed run sent other messages:\n{turn1[0].GetProperty("messages")}\nthen\n{turn1[1].GetProperty("messages")}");
        Assert.Equal(Given, Thinking(requests[^1]));
    }

    [Theory]
    [InlineData("adaptive", null, """{"type":"adaptive"}""", """{"effort":"high"}""")]
    [InlineData("budget", null, """{"type":"enabled","budget_tokens":31999}""", null)]
    [InlineData("adaptive", "low", """{"type":"adaptive"}""", """{"effort":"low"}""")]
    [InlineData("budget", 16000, """{"type":"enabled","budget_tokens":16000}""", null)]
    public async Task RequestShape_FollowsTheModelsThinking_AndTheConfig(string declared, object? configured, string thinking, string? outputConfig)
    {
        var model = Model(ThinkingScenario(declared), configured is null ? null : _ => new Dictionary<string, object> { ["*"] = configured });

        var done = await _h.WaitAsync((await _h.RunTaskAsync(model, "read the files")).Id);

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status.ToWire()}: {done.Error}");
        var requests = Requests(model);
        Assert.Equal(3, requests.Count);
        Assert.All(requests, r => Assert.Equal(thinking, r.GetProperty("thinking").GetRawText()));
        Assert.All(requests, r => Assert.Equal(outputConfig, r.TryGetProperty("output_config", out var o) ? o.GetRawText() : null));
        Assert.Equal(Given, Thinking(requests[^1]));
    }

    [Fact]
    public async Task ThinkingOffByConfig_SendsNoThinking_AndNoneIsKept()
    {
        var model = Model(ThinkingScenario(), model => new Dictionary<string, object> { ["*"] = "auto", [model] = "off" }); // the model's own entry wins

        var task = await _h.RunTaskAsync(model, "read the files");
        var done = await _h.WaitAsync(task.Id);

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status.ToWire()}: {done.Error}");
        var requests = Requests(model);
        Assert.Equal(3, requests.Count);
        Assert.All(requests, r => Assert.False(r.TryGetProperty("thinking", out _), r.ToString()));
        Assert.All(requests, r => Assert.False(r.TryGetProperty("output_config", out _), r.ToString()));
        Assert.All((await _h.EventsAsync(task.Id)).OfType<AssistantMessage>(), a => Assert.Null(a.Thinking));
    }

    [Fact]
    public async Task Logs_ShowThinkingCollapsed_WholeWithTheThinkingFlag_AndInJson()
    {
        var model = Model(ThinkingScenario());
        var task = await _h.RunTaskAsync(model, "read the files");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);
        var id = Id(task.Id);

        var collapsed = await _h.OffloadAsync("logs", id);
        var whole = await _h.OffloadAsync("logs", "--thinking", id);
        var json = await _h.OffloadAsync("logs", "--json", id);

        Assert.True(collapsed.ExitCode == 0 && whole.ExitCode == 0 && json.ExitCode == 0, $"{collapsed}\n{whole}\n{json}");
        Assert.Contains($"thinking: Read the readme first. ({FirstThought.Length} chars; --thinking shows it)", collapsed.Stdout);
        Assert.Contains("thinking: (redacted by the provider)", collapsed.Stdout);
        Assert.DoesNotContain("It says what the project is.", collapsed.Stdout);
        Assert.Contains("thinking: " + FirstThought, whole.Stdout);
        Assert.Contains("thinking: (redacted by the provider)", whole.Stdout);
        var thought = json.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonElement.Parse(l))
            .First(e => e.GetProperty("type").GetString() == "message.assistant").GetProperty("thinking")[0];
        Assert.Equal((FirstThought, SimulatedThinking.Sign(FirstThought)), (thought.GetProperty("text").GetString(), thought.GetProperty("signature").GetString()));
    }
}
