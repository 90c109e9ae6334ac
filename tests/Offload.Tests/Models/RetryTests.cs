using Microsoft.Extensions.AI;
using Offload.Models;

namespace Offload.Tests.Models;

/// <summary>Faults injected by the Simulator, seen through <see cref="RetryingChatClient"/>, for both client kinds.</summary>
public sealed class RetryTests
{
    private static string FaultScenario(string fault) => $$"""
        { "name": "faulty", "turns": [ { "text": "Recovered.", "faults": [ {{fault}} ] } ] }
        """;

    public static TheoryData<string, string> TransientFaults()
    {
        TheoryData<string, string> data = [];
        string[] faults =
        [
            """{ "kind": "status", "status": 529 }""",
            """{ "kind": "status", "status": 500 }""",
            """{ "kind": "status", "status": 502 }""",
            """{ "kind": "status", "status": 503 }""",
            """{ "kind": "status", "status": 429 }""",
            """{ "kind": "drop", "afterEvents": 2 }""",
            """{ "kind": "errorEvent" }""",
            """{ "kind": "malformed" }""",
        ];
        foreach (var provider in new[] { "anthropic", "openai" })
        {
            foreach (var fault in faults)
            {
                data.Add(provider, fault);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(TransientFaults))]
    public async Task TransientFault_IsRetriedAndSucceeds(string provider, string fault)
    {
        await using var kit = await ModelTestKit.StartAsync(FaultScenario(fault));
        using var client = kit.Client(provider);

        var response = await client.GetResponseAsync(ModelTestKit.Prompt());

        Assert.Equal("Recovered.", response.Text);
        Assert.Equal(1, Assert.Single(kit.Retries).Try);
        Assert.Equal(2, kit.ModelRequests(provider).Count);
    }

    [Theory]
    [InlineData("anthropic")]
    [InlineData("openai")]
    public async Task RateLimit_WaitsAtLeastRetryAfter(string provider)
    {
        await using var kit = await ModelTestKit.StartAsync(FaultScenario("""{ "kind": "status", "status": 429, "retryAfter": "1" }"""));
        using var client = kit.Client(provider);

        var response = await client.GetResponseAsync(ModelTestKit.Prompt());

        Assert.Equal("Recovered.", response.Text);
        var retry = Assert.Single(kit.Retries);
        Assert.True(retry.Delay >= TimeSpan.FromSeconds(1), $"delay {retry.Delay}");
        Assert.Contains("429", retry.Reason);
        var requests = kit.ModelRequests(provider);
        Assert.True(requests[1].At - requests[0].At >= TimeSpan.FromSeconds(0.9), "the retry waited");
    }

    [Theory]
    [InlineData("anthropic")]
    [InlineData("openai")]
    public async Task Stall_IsGivenUpAfterIdleTimeoutAndRetried(string provider)
    {
        await using var kit = await ModelTestKit.StartAsync(FaultScenario("""{ "kind": "stall", "ms": 3000 }"""));
        using var client = kit.Client(provider, ModelTestKit.FastRetry with { IdleTimeout = TimeSpan.FromMilliseconds(300) });

        var response = await client.GetResponseAsync(ModelTestKit.Prompt());

        Assert.Equal("Recovered.", response.Text);
        Assert.Equal("stream stalled", Assert.Single(kit.Retries).Reason);
    }

    [Theory]
    [InlineData("anthropic", 401, "check ANTHROPIC_API_KEY")]
    [InlineData("anthropic", 403, "permission")]
    [InlineData("anthropic", 400, "rejected the request")]
    [InlineData("openai", 401, "OPENAI_API_KEY")]
    [InlineData("openai", 403, "permission")]
    [InlineData("openai", 400, "rejected the request")]
    public async Task RefusedRequest_FailsAtOnceWithProviderMessageAndHint(string provider, int status, string hint)
    {
        await using var kit = await ModelTestKit.StartAsync(FaultScenario(
            $$"""{ "kind": "status", "status": {{status}}, "message": "the provider says no" }"""));
        using var client = kit.Client(provider);

        var e = await Assert.ThrowsAsync<ModelCallException>(() => client.GetResponseAsync(ModelTestKit.Prompt()));

        Assert.Equal(provider, e.Provider);
        Assert.Equal(status, e.StatusCode);
        Assert.Equal("the provider says no", e.ProviderMessage);
        Assert.Contains(hint, e.Hint);
        Assert.Contains("the provider says no", e.Message);
        Assert.Empty(kit.Retries);
        Assert.Single(kit.ModelRequests(provider));
    }

    [Theory]
    [InlineData("anthropic")]
    [InlineData("openai")]
    public async Task PersistentOutage_EndsInModelCallExceptionAfterMaxTries(string provider)
    {
        await using var kit = await ModelTestKit.StartAsync(FaultScenario(
            """{ "kind": "status", "status": 503, "times": 10, "message": "down for maintenance" }"""));
        using var client = kit.Client(provider, ModelTestKit.FastRetry with { MaxTries = 3 });

        var e = await Assert.ThrowsAsync<ModelCallException>(() => client.GetResponseAsync(ModelTestKit.Prompt()));

        Assert.Equal(503, e.StatusCode);
        Assert.Equal("down for maintenance", e.ProviderMessage);
        Assert.Contains("kept failing", e.Hint);
        Assert.Contains("offload retry", e.Hint);
        Assert.Equal([1, 2], kit.Retries.Select(r => r.Try));
        Assert.Equal(3, kit.ModelRequests(provider).Count);
    }

    [Theory]
    [InlineData("anthropic")]
    [InlineData("openai")]
    public async Task CallerCancellation_IsNotRetried(string provider)
    {
        await using var kit = await ModelTestKit.StartAsync(FaultScenario("""{ "kind": "stall", "ms": 3000 }"""));
        using var client = kit.Client(provider);
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.GetResponseAsync(ModelTestKit.Prompt(), cancellationToken: cancel.Token));

        Assert.Empty(kit.Retries);
    }

    [Theory]
    [InlineData("anthropic")]
    [InlineData("openai")]
    public async Task Streaming_FaultBeforeFirstUpdate_IsRetried(string provider)
    {
        await using var kit = await ModelTestKit.StartAsync(FaultScenario("""{ "kind": "status", "status": 529 }"""));
        using var client = kit.Client(provider);

        List<ChatResponseUpdate> updates = [];
        await foreach (var update in client.GetStreamingResponseAsync(ModelTestKit.Prompt()))
        {
            updates.Add(update);
        }

        Assert.Equal("Recovered.", updates.ToChatResponse().Text);
        Assert.Single(kit.Retries);
    }
}
