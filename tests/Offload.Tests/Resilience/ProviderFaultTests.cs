using Offload.Protocol;
using Offload.Simulator;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;
using static Offload.Tests.Resilience.ResilienceKit;

namespace Offload.Tests.Resilience;

/// <summary>
/// Provider faults caused by the Simulator over real HTTP, end to end through the daemon, for the Anthropic client
/// (<c>sim:</c>, the Simulator inside the daemon) and an OpenAI-compatible provider (a Simulator in the test).
/// </summary>
public sealed class ProviderFaultTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new();
    private SimulatorServer? _openAI;

    public enum Provider
    {
        Anthropic,
        OpenAI,
    }

    public async Task InitializeAsync() => _openAI = await SimulatorServer.StartAsync(new SimulatorOptions());

    public async Task DisposeAsync()
    {
        await _h.DisposeAsync();
        await _openAI!.DisposeAsync();
    }

    /// <summary>Config with tiny retry delays and a one-second idle timeout, and the OpenAI-compatible provider <c>local</c>.</summary>
    private string Model(Provider provider, string name, object scenario, int maxTries)
    {
        _h.WriteConfig(new
        {
            models = new
            {
                retry = FastRetry(maxTries),
                providers = new Dictionary<string, object> { ["local"] = new { kind = "openai", baseUrl = _openAI!.BaseUrl + "v1", apiKey = "test" } },
            },
        });
        var sim = _h.Scenario(name, scenario);
        return provider == Provider.Anthropic ? sim : "local:" + sim["sim:".Length..];
    }

    private static object BashTurn(string command, params object[] faults) =>
        new { text = "", toolCalls = new[] { new { name = "Bash", input = new { command } } }, faults };

    private static object FinalTurn(string text, params object[] faults) => new { text, faults };

    [Theory]
    [InlineData(Provider.Anthropic)]
    [InlineData(Provider.OpenAI)]
    public async Task TransientFaults_AreRetried_TheTaskSucceeds_AndLogsShowEachRetry(Provider provider)
    {
        var scenario = Scenario(
            BashTurn("echo first",
                new { kind = "status", status = 429 },
                new { kind = "status", status = 429, retryAfter = "1" },
                new { kind = "status", status = 529 },
                new { kind = "status", status = 500 }),
            BashTurn("echo second",
                new { kind = "status", status = 502 },
                new { kind = "status", status = 503 },
                new { kind = "drop", afterEvents = 3 }),
            FinalTurn("All done despite the faults.",
                new { kind = "errorEvent", message = "Overloaded" },
                new { kind = "stall", ms = 4000 },
                new { kind = "malformed" }));
        var model = Model(provider, "transient", scenario, maxTries: 6);

        var task = await _h.RunTaskAsync(model, "survive the faults");
        var done = await _h.WaitAsync(task.Id);

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status.ToWire()}: {done.Error}");
        Assert.Equal("All done despite the faults.", done.Summary);
        var retries = (await _h.EventsAsync(task.Id)).OfType<ModelRetried>().ToList();
        Assert.Equal(10, retries.Count);
        Assert.Equal(
            ["HTTP 429 rate limited", "HTTP 429 rate limited", "HTTP 529 overloaded", "HTTP 500", "HTTP 502", "HTTP 503"],
            retries.Take(6).Select(r => r.Reason));
        Assert.True(retries[1].DelayMs >= 1000, $"retry-after: 1 was not honoured: waited {retries[1].DelayMs} ms");
        Assert.True(retries[0].DelayMs < 1000, $"the first 429 had no retry-after but waited {retries[0].DelayMs} ms");
        Assert.Contains("stream stalled", retries.Select(r => r.Reason));
        var bash = (await _h.EventsAsync(task.Id)).OfType<ToolResulted>().Select(r => r.Output.Trim()).ToList();
        Assert.Equal(["first", "second"], bash); // a dropped stream's half answer was thrown away, not run

        var logs = await _h.OffloadAsync("logs", Id(task.Id));
        Assert.Equal(10, logs.Stdout.Split('\n').Count(l => l.Contains("model call failed (", StringComparison.Ordinal) && l.Contains("; retry ", StringComparison.Ordinal)));
        Assert.Contains("model call failed (HTTP 429 rate limited); retry 2 in ", logs.Stdout);
        Assert.Contains("model call failed (HTTP 529 overloaded); retry 3 in ", logs.Stdout);
    }

    [Theory]
    [InlineData(Provider.Anthropic, 401, "ANTHROPIC_API_KEY")]
    [InlineData(Provider.Anthropic, 403, "permission")]
    [InlineData(Provider.Anthropic, 400, "rejected the request")]
    [InlineData(Provider.OpenAI, 401, "OPENAI_API_KEY")]
    [InlineData(Provider.OpenAI, 403, "permission")]
    [InlineData(Provider.OpenAI, 400, "rejected the request")]
    public async Task PersistentFaults_FailTheTaskAtOnce_WithTheProvidersWordsAndAHint(Provider provider, int status, string hint)
    {
        var message = $"simulated refusal {status}";
        var model = Model(provider, "refused", Scenario(
            BashTurn("echo never", new { kind = "status", status, message, times = 100 })), maxTries: 6);

        var task = await _h.RunTaskAsync(model, "be refused");
        var done = await _h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Failed, done.Status);
        Assert.Contains(message, done.Error);
        Assert.Contains($"HTTP {status}", done.Error);
        Assert.Contains(hint, done.Error);
        var events = await _h.EventsAsync(task.Id);
        Assert.Empty(events.OfType<ModelRetried>());
        Assert.Empty(events.OfType<ToolCalled>());
        var wait = await _h.OffloadAsync("wait", Id(task.Id));
        Assert.Equal(8, wait.ExitCode);
        Assert.Contains(message, (await _h.OffloadAsync("show", Id(task.Id))).Stdout);
    }

    [Theory]
    [InlineData(Provider.Anthropic)]
    [InlineData(Provider.OpenAI)]
    public async Task RetriesExhausted_FailTheTask_SayingTheProviderKeptFailing(Provider provider)
    {
        var model = Model(provider, "overloaded", Scenario(
            FinalTurn("never", new { kind = "status", status = 529, times = 100 })), maxTries: 3);

        var task = await _h.RunTaskAsync(model, "meet an overloaded provider");
        var done = await _h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Failed, done.Status);
        Assert.Contains("kept failing", done.Error);
        Assert.Contains("3 tries", done.Error);
        Assert.Equal(2, (await _h.EventsAsync(task.Id)).OfType<ModelRetried>().Count());
        Assert.Contains("failed", (await _h.OffloadAsync("ls")).Stdout);
    }
}
