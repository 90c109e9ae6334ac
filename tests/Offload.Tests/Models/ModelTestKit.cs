using Microsoft.Extensions.AI;
using Offload.Models;
using Offload.Simulator;

namespace Offload.Tests.Models;

/// <summary>Starts a Simulator for one scenario and makes clients of either API kind pointed at it.</summary>
internal sealed class ModelTestKit : IAsyncDisposable
{
    private ModelTestKit(SimulatorServer server) => Server = server;

    public SimulatorServer Server { get; }

    public List<ModelRetry> Retries { get; } = [];

    public static async Task<ModelTestKit> StartAsync(string scenarioJson) =>
        new(await SimulatorServer.StartAsync(new SimulatorOptions { DefaultScenario = Scenario.Parse(scenarioJson) }));

    /// <summary>Both built-in providers pointed at the Simulator, with explicit keys and tiny delays.</summary>
    public ModelSettings Settings(RetrySettings? retry = null) => new()
    {
        Providers =
        {
            ["anthropic"] = new ProviderSettings { BaseUrl = Server.BaseUrl.ToString(), ApiKey = "test-key" },
            ["openai"] = new ProviderSettings { BaseUrl = Server.BaseUrl + "v1", ApiKey = "test-key" },
        },
        Retry = retry ?? FastRetry,
    };

    public static RetrySettings FastRetry { get; } = new()
    {
        MaxTries = 6,
        BaseDelay = TimeSpan.FromMilliseconds(1),
        MaxDelay = TimeSpan.FromMilliseconds(10),
        IdleTimeout = TimeSpan.FromSeconds(10),
    };

    /// <summary>A client for <paramref name="provider"/> ("anthropic" or "openai") that records its retries.</summary>
    public IChatClient Client(string provider, RetrySettings? retry = null) =>
        new ChatClientFactory().Create(
            new ModelRef(provider, "scenario"),
            Settings(retry),
            _ => null,
            retry =>
            {
                lock (Retries)
                {
                    Retries.Add(retry);
                }

                return Task.CompletedTask;
            });

    public IReadOnlyList<RecordedRequest> ModelRequests(string provider) =>
        [.. Server.Requests.Where(r => r.Api == provider)];

    public ValueTask DisposeAsync() => Server.DisposeAsync();

    public static List<ChatMessage> Prompt(string text = "Hello there") =>
        [new(ChatRole.System, "You are a careful coding agent."), new(ChatRole.User, text)];
}
