using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Offload.Simulator.Tests;

public sealed class FaultTests
{
    private static string WithFaults(string faults) => $$"""
        {
          "name": "faulty",
          "turns": [
            { "text": "Working on it.", "toolCalls": [ { "name": "Bash", "input": { "command": "make test", "description": "run the tests" } } ],
              "faults": {{faults}} },
            { "text": "Done." }
          ]
        }
        """;

    [Fact]
    public async Task Status_AnswersErrorWithRetryAfterUntilTimesUsedThenTheTurn()
    {
        await using var server = await Sim.StartAsync(WithFaults("""
            [ { "kind": "status", "status": 429, "retryAfter": "1" },
              { "kind": "status", "status": 529, "times": 2, "message": "busy" } ]
            """));
        using var client = Sim.Client(server);
        var body = Sim.Anthropic(true, Sim.User("run the tests"));

        using (var limited = await Sim.PostAsync(client, "v1/messages?beta=true", body))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
            Assert.Equal("1", Assert.Single(limited.Headers.GetValues("retry-after")));
            var error = Sim.Parse(await limited.Content.ReadAsStringAsync());
            Assert.Equal("error", error["type"]!.GetValue<string>());
            Assert.Equal("rate_limit_error", error["error"]!["type"]!.GetValue<string>());
        }

        for (var i = 0; i < 2; i++)
        {
            using var overloaded = await Sim.PostAsync(client, "v1/messages?beta=true", body);
            Assert.Equal(529, (int)overloaded.StatusCode);
            Assert.False(overloaded.Headers.Contains("retry-after"));
            Assert.True(JsonNode.DeepEquals(
                Sim.Parse("""{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"""),
                Sim.Parse(await overloaded.Content.ReadAsStringAsync())));
        }

        using var ok = await Sim.PostAsync(client, "v1/messages?beta=true", body);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal("message_stop", (await Sim.ReadSseAsync(ok))[^1].Event);
    }

    [Fact]
    public async Task Status_OpenAIShapedErrorAndNonStreamingRequestsToo()
    {
        await using var server = await Sim.StartAsync(WithFaults("""[ { "kind": "status", "status": 401 } ]"""));
        using var client = Sim.Client(server);

        using var response = await Sim.PostAsync(client, "v1/chat/completions", Sim.OpenAI(false, Sim.User("run")));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var error = Sim.Parse(await response.Content.ReadAsStringAsync())["error"]!;
        Assert.Equal("authentication_error", error["type"]!.GetValue<string>());
        Assert.Equal("invalid_api_key", error["code"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(error["message"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Faults_AreTrackedPerConversation()
    {
        await using var server = await Sim.StartAsync(WithFaults("""[ { "kind": "status", "status": 503 } ]"""));
        using var client = Sim.Client(server);

        using var a1 = await Sim.PostAsync(client, "v1/messages", Sim.Anthropic(false, Sim.User("conversation A")));
        using var b1 = await Sim.PostAsync(client, "v1/messages", Sim.Anthropic(false, Sim.User("conversation B")));
        using var a2 = await Sim.PostAsync(client, "v1/messages", Sim.Anthropic(false, Sim.User("conversation A")));

        Assert.Equal(
            [HttpStatusCode.ServiceUnavailable, HttpStatusCode.ServiceUnavailable, HttpStatusCode.OK],
            new[] { a1.StatusCode, b1.StatusCode, a2.StatusCode });
    }

    [Theory]
    [InlineData("v1/messages")]
    [InlineData("v1/chat/completions")]
    public async Task Drop_SendsSomeEventsThenCutsTheConnection(string path)
    {
        await using var server = await Sim.StartAsync(WithFaults("""[ { "kind": "drop", "afterEvents": 3 } ]"""));
        using var client = Sim.Client(server);
        var body = path == "v1/messages" ? Sim.Anthropic(true, Sim.User("run the tests")) : Sim.OpenAI(true, Sim.User("run the tests"));

        using var response = await Sim.PostAsync(client, path, body);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var dataLines = 0;
        var error = await Record.ExceptionAsync(async () =>
        {
            while (await reader.ReadLineAsync() is { } line)
            {
                dataLines += line.StartsWith("data: ", StringComparison.Ordinal) ? 1 : 0;
            }
        });

        Assert.IsAssignableFrom<IOException>(error);
        Assert.Equal(3, dataLines);

        using var retry = await Sim.PostAsync(client, path, body);
        var last = (await Sim.ReadSseAsync(retry))[^1];
        Assert.Equal(path == "v1/messages" ? "message_stop" : "[DONE]", last.Event ?? last.Data);
    }

    [Fact]
    public async Task StreamOnlyFault_OnNonStreamingRequest_Answers500()
    {
        await using var server = await Sim.StartAsync(WithFaults("""[ { "kind": "drop" } ]"""));
        using var client = Sim.Client(server);

        using var response = await Sim.PostAsync(client, "v1/messages", Sim.Anthropic(false, Sim.User("run")));

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Equal("api_error", Sim.Parse(await response.Content.ReadAsStringAsync())["error"]!["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task ErrorEvent_SendsMessageStartThenOverloadedErrorEvent()
    {
        await using var server = await Sim.StartAsync(WithFaults("""[ { "kind": "errorEvent" } ]"""));
        using var client = Sim.Client(server);

        using var response = await Sim.PostAsync(client, "v1/messages", Sim.Anthropic(true, Sim.User("run")));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = await Sim.ReadSseAsync(response);
        Assert.Equal(["message_start", "error"], events.Select(e => e.Event));
        Assert.Equal("overloaded_error", Sim.Parse(events[1].Data)["error"]!["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task ErrorEvent_OpenAISendsErrorChunk()
    {
        await using var server = await Sim.StartAsync(WithFaults("""[ { "kind": "errorEvent" } ]"""));
        using var client = Sim.Client(server);

        using var response = await Sim.PostAsync(client, "v1/chat/completions", Sim.OpenAI(true, Sim.User("run")));

        var events = await Sim.ReadSseAsync(response);
        Assert.Equal(2, events.Count);
        Assert.Equal("server_error", Sim.Parse(events[1].Data)["error"]!["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task Stall_GoesSilentSoAClientTimeoutFires()
    {
        await using var server = await Sim.StartAsync(WithFaults("""[ { "kind": "stall", "ms": 600000 } ]"""));
        using var client = Sim.Client(server);
        var body = Sim.Anthropic(true, Sim.User("run"));

        using var response = await Sim.PostAsync(client, "v1/messages", body);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var lines = new List<string>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            while (await reader.ReadLineAsync(timeout.Token) is { } line)
            {
                lines.Add(line);
            }
        });

        Assert.Contains("event: message_start", lines);
        Assert.DoesNotContain("event: message_stop", lines);

        using var retry = await Sim.PostAsync(client, "v1/messages", body);
        Assert.Equal("message_stop", (await Sim.ReadSseAsync(retry))[^1].Event);
    }

    [Fact]
    public async Task Stall_EndsTheStreamUnfinishedAfterItsTime()
    {
        await using var server = await Sim.StartAsync(WithFaults("""[ { "kind": "stall", "ms": 20 } ]"""));
        using var client = Sim.Client(server);

        using var response = await Sim.PostAsync(client, "v1/messages", Sim.Anthropic(true, Sim.User("run")));

        var events = await Sim.ReadSseAsync(response);
        Assert.Equal(["message_start", "content_block_start"], events.Select(e => e.Event));
    }

    [Fact]
    public async Task Malformed_SendsADataLineThatIsNotJson()
    {
        await using var server = await Sim.StartAsync(WithFaults("""[ { "kind": "malformed" } ]"""));
        using var client = Sim.Client(server);

        using var anthropic = await Sim.PostAsync(client, "v1/messages", Sim.Anthropic(true, Sim.User("run")));
        using var openai = await Sim.PostAsync(client, "v1/chat/completions", Sim.OpenAI(true, Sim.User("run, the other api")));

        foreach (var response in new[] { anthropic, openai })
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var events = await Sim.ReadSseAsync(response);
            Assert.Equal(2, events.Count);
            Assert.NotNull(Sim.Parse(events[0].Data));
            Assert.ThrowsAny<JsonException>(() => Sim.Parse(events[1].Data));
        }
    }

    [Fact]
    public async Task Delay_HoldsTheAnswerAndLetsTheClientGiveUp()
    {
        await using var server = await Sim.StartAsync("""{ "name": "slowpoke", "turns": [ { "text": "late", "delayMs": 600000 } ] }""");
        using var client = Sim.Client(server);
        using var giveUp = new CancellationTokenSource();

        var pending = Sim.PostAsync(client, "v1/messages", Sim.Anthropic(true, Sim.User("hello")), giveUp.Token);
        var received = await server.WaitForRequestAsync(r => r.Api == "anthropic").WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(pending.IsCompleted);
        await giveUp.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending);
        Assert.Equal(0, received.TurnIndex);
    }
}
