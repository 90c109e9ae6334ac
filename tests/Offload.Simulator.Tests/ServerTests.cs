using System.Net;
using System.Text.Json.Nodes;

namespace Offload.Simulator.Tests;

public sealed class ServerTests
{
    [Fact]
    public async Task UnknownScenario_Answers404ListingBuiltinNames_InBothApiShapes()
    {
        await using var server = await SimulatorServer.StartAsync(new SimulatorOptions());
        using var client = Sim.Client(server);

        using var anthropic = await Sim.PostAsync(client, "v1/messages", Sim.Anthropic(true, Sim.User("hi")));
        using var openai = await Sim.PostAsync(client, "v1/chat/completions", Sim.OpenAI(true, Sim.User("hi")));

        Assert.Equal(HttpStatusCode.NotFound, anthropic.StatusCode);
        var anthropicError = Sim.Parse(await anthropic.Content.ReadAsStringAsync());
        Assert.Equal("not_found_error", anthropicError["error"]!["type"]!.GetValue<string>());
        Assert.Contains("Unknown scenario 'claude-test'", anthropicError["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("demo, echo, slow", anthropicError["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);

        Assert.Equal(HttpStatusCode.NotFound, openai.StatusCode);
        var openaiError = Sim.Parse(await openai.Content.ReadAsStringAsync())["error"]!;
        Assert.Equal("model_not_found", openaiError["code"]!.GetValue<string>());
        Assert.Contains("demo, echo, slow", openaiError["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("echo")]
    [InlineData("sim:echo")]
    public async Task ModelName_SelectsBuiltinScenario(string model)
    {
        await using var server = await SimulatorServer.StartAsync(new SimulatorOptions());
        using var client = Sim.Client(server);
        var body = Sim.Anthropic(false, Sim.User("hi"));
        body["model"] = model;

        using var response = await Sim.PostAsync(client, "v1/messages", body);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var message = Sim.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("Hello from the simulator.", message["content"]![0]!["text"]!.GetValue<string>());
        Assert.Equal(model, message["model"]!.GetValue<string>());
    }

    [Fact]
    public async Task ModelName_ThatIsAScenarioFilePath_LoadsThatFile()
    {
        var path = Path.Combine(Path.GetTempPath(), $"sim-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(path, """{ "name": "from-file", "turns": [ { "text": "read from disk" } ] }""");
        try
        {
            await using var server = await SimulatorServer.StartAsync(new SimulatorOptions());
            using var client = Sim.Client(server);
            var body = Sim.OpenAI(false, Sim.User("hi"));
            body["model"] = path;

            using var response = await Sim.PostAsync(client, "v1/chat/completions", body);

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(
                "read from disk",
                Sim.Parse(await response.Content.ReadAsStringAsync())["choices"]![0]!["message"]!["content"]!.GetValue<string>());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task ModelName_ThatIsABrokenScenarioFile_Answers400WithTheParseError()
    {
        var path = Path.Combine(Path.GetTempPath(), $"sim-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(path, """{ "name": "broken", "turns": [ { "txt": "typo" } ] }""");
        try
        {
            await using var server = await SimulatorServer.StartAsync(new SimulatorOptions());
            using var client = Sim.Client(server);
            var body = Sim.Anthropic(false, Sim.User("hi"));
            body["model"] = path;

            using var response = await Sim.PostAsync(client, "v1/messages", body);

            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains(
                "turns[0] has an unknown property 'txt'",
                Sim.Parse(await response.Content.ReadAsStringAsync())["error"]!["message"]!.GetValue<string>(),
                StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task RegisteredScenarios_AreChosenByModelName()
    {
        var options = new SimulatorOptions
        {
            Scenarios = new Dictionary<string, Scenario> { ["mine"] = new("mine", [new ScenarioTurn { Text = "custom" }]) },
        };
        await using var server = await SimulatorServer.StartAsync(options);
        using var client = Sim.Client(server);
        var body = Sim.Anthropic(false, Sim.User("hi"));
        body["model"] = "mine";

        using var response = await Sim.PostAsync(client, "v1/messages", body);

        Assert.Equal("custom", Sim.Parse(await response.Content.ReadAsStringAsync())["content"]![0]!["text"]!.GetValue<string>());
    }

    [Fact]
    public async Task Requests_AreRecordedInOrderAndServedAsJson()
    {
        await using var server = await SimulatorServer.StartAsync(new SimulatorOptions { DefaultScenario = Scenario.Builtin("echo") });
        using var client = Sim.Client(server);
        using (await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/")))
        {
        }

        var anthropicBody = Sim.Anthropic(true, Sim.User("hi"), Sim.Assistant("hello"), Sim.User("again"));
        using (var r = await Sim.PostAsync(client, "v1/messages?beta=true", anthropicBody))
        {
            await Sim.ReadSseAsync(r);
        }

        using (await Sim.PostAsync(client, "v1/chat/completions", Sim.OpenAI(false, Sim.User("hi"))))
        {
        }

        var requests = server.Requests;
        Assert.Equal(
            [("HEAD", "/", "", "other", null, -1, false), ("POST", "/v1/messages", "?beta=true", "anthropic", "claude-test", 1, true), ("POST", "/v1/chat/completions", "", "openai", "gpt-test", 0, false)],
            requests.Select(r => (r.Method, r.Path, r.Query, r.Api, r.Model, r.TurnIndex, r.Stream)));
        Assert.Equal(anthropicBody.ToJsonString(), requests[1].Body);
        Assert.Equal(requests[1].Body.Length, requests[1].BodyBytes);
        Assert.True(requests[0].At <= requests[1].At && requests[1].At <= requests[2].At);

        var listed = Sim.Parse(await client.GetStringAsync("_sim/requests"))["items"]!.AsArray();
        Assert.Equal(3, listed.Count);
        Assert.Null(listed[1]!["body"]);
        Assert.Equal(1, listed[1]!["turnIndex"]!.GetValue<int>());
        var withBodies = Sim.Parse(await client.GetStringAsync("_sim/requests?bodies=1"))["items"]!.AsArray();
        Assert.Equal(requests[1].Body, withBodies[1]!["body"]!.GetValue<string>());
        Assert.Equal(3, server.Requests.Count);
    }

    [Fact]
    public async Task Requests_KeepOnlyTheMostRecentBodies()
    {
        await using var server = await SimulatorServer.StartAsync(new SimulatorOptions { DefaultScenario = Scenario.Builtin("echo"), MaxRecordedBodies = 2 });
        using var client = Sim.Client(server);

        for (var i = 0; i < 4; i++)
        {
            using var response = await Sim.PostAsync(client, "v1/messages", Sim.Anthropic(false, Sim.User($"hi {i}")));
        }

        Assert.Equal([false, false, true, true], server.Requests.Select(r => r.Body.Length > 0));
        Assert.All(server.Requests, r => Assert.True(r.BodyBytes > 0));
    }

    [Fact]
    public async Task ConcurrentConversations_EachGetTheirOwnTurn()
    {
        await using var server = await SimulatorServer.StartAsync(new SimulatorOptions { DefaultScenario = Scenario.Builtin("demo") });
        using var client = Sim.Client(server);

        var answers = await Task.WhenAll(Enumerable.Range(0, 24).Select(async i =>
        {
            var messages = new List<JsonNode> { Sim.User($"task {i}") };
            for (var t = 0; t < i % 7; t++)
            {
                messages.Add(Sim.Assistant("…"));
                messages.Add(Sim.User("ok"));
            }

            using var response = await Sim.PostAsync(client, "v1/messages", Sim.Anthropic(true, [.. messages]));
            var events = await Sim.ReadSseAsync(response);
            return (i, StopReason: Sim.Parse(events.Single(e => e.Event == "message_delta").Data)["delta"]!["stop_reason"]!.GetValue<string>());
        }));

        Assert.All(answers, a => Assert.Equal(a.i % 7 < 6 ? "tool_use" : "end_turn", a.StopReason));
    }

    [Fact]
    public async Task UnknownEndpoint_Answers404()
    {
        await using var server = await SimulatorServer.StartAsync(new SimulatorOptions());
        using var client = Sim.Client(server);

        using var response = await client.GetAsync("v1/models");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task FixedPort_IsHonoured()
    {
        int port;
        await using (var probe = await SimulatorServer.StartAsync(new SimulatorOptions()))
        {
            port = probe.BaseUrl.Port;
        }

        await using var server = await SimulatorServer.StartAsync(new SimulatorOptions { Port = port });

        Assert.Equal(new Uri($"http://127.0.0.1:{port}/"), server.BaseUrl);
    }

    [Fact]
    public async Task WaitForRequest_CompletesForPastAndFutureRequestsAndCanBeCancelled()
    {
        await using var server = await SimulatorServer.StartAsync(new SimulatorOptions { DefaultScenario = Scenario.Builtin("echo") });
        using var client = Sim.Client(server);
        using (await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/")))
        {
        }

        var past = await server.WaitForRequestAsync(r => r.Method == "HEAD");
        var future = server.WaitForRequestAsync(r => r.Api == "openai");
        using var never = new CancellationTokenSource();
        var cancelled = server.WaitForRequestAsync(r => r.Api == "never", never.Token);
        Assert.False(future.IsCompleted);
        using (await Sim.PostAsync(client, "chat/completions", Sim.OpenAI(false, Sim.User("hi"))))
        {
        }

        await never.CancelAsync();

        Assert.Equal("/", past.Path);
        Assert.Equal("/chat/completions", (await future.WaitAsync(TimeSpan.FromSeconds(10))).Path);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
    }
}
