using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Offload.Simulator.Tests;

/// <summary>Small HTTP helpers shared by the tests: post a request, read an SSE stream.</summary>
internal static class Sim
{
    public static Task<SimulatorServer> StartAsync(string scenarioJson) =>
        SimulatorServer.StartAsync(new SimulatorOptions { DefaultScenario = Scenario.Parse(scenarioJson) });

    public static HttpClient Client(SimulatorServer server, TimeSpan? timeout = null) =>
        new() { BaseAddress = server.BaseUrl, Timeout = timeout ?? TimeSpan.FromSeconds(30) };

    public static async Task<HttpResponseMessage> PostAsync(HttpClient client, string path, JsonNode body, CancellationToken cancellationToken = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path)
        {
            Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("x-api-key", "test");
        return await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
    }

    public static JsonObject Anthropic(bool stream, params JsonNode[] messages) => new()
    {
        ["model"] = "claude-test",
        ["max_tokens"] = 1024,
        ["stream"] = stream,
        ["system"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = "You are a test.", ["cache_control"] = new JsonObject { ["type"] = "ephemeral" } }),
        ["messages"] = new JsonArray(messages),
    };

    public static JsonObject OpenAI(bool stream, params JsonNode[] messages) => new()
    {
        ["model"] = "gpt-test",
        ["stream"] = stream,
        ["stream_options"] = new JsonObject { ["include_usage"] = stream },
        ["messages"] = new JsonArray(messages),
    };

    public static JsonObject User(string text) => new() { ["role"] = "user", ["content"] = text };

    public static JsonObject Assistant(string text) => new() { ["role"] = "assistant", ["content"] = text };

    public static async Task<List<(string? Event, string Data)>> ReadSseAsync(HttpResponseMessage response, CancellationToken cancellationToken = default)
    {
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = new List<(string?, string)>();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
        string? name = null;
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                name = line["event: ".Length..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                events.Add((name, line["data: ".Length..]));
                name = null;
            }
        }

        return events;
    }

    public static JsonNode Parse(string json) => JsonNode.Parse(json) ?? throw new JsonException("null");
}
