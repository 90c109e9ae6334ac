using System.Text.Json;
using Offload.Protocol;
using Offload.Simulator;
using Offload.Tests.EndToEnd;
using static Offload.Tests.Resilience.ResilienceKit;

namespace Offload.Tests.Agent;

/// <summary>
/// Context management end to end: the real daemon runs the builtin agent against a Simulator in this process (reached
/// over HTTP as an Anthropic- or OpenAI-compatible provider), whose scenario has a context window it enforces as the
/// API does, so every request the agent made can be checked against it.
/// </summary>
public sealed class CompactionTests : IAsyncLifetime
{
    private const string SummaryText = "SUMMARY: read the data files one by one; nothing changed; go on with the next file.";
    private readonly OffloadHarness _h = new("/var/tmp");
    private SimulatorServer _sim = null!;

    public enum Provider
    {
        Anthropic,
        OpenAI,
    }

    public async Task InitializeAsync() => _sim = await SimulatorServer.StartAsync(new SimulatorOptions { MaxRecordedBodies = 2000 });

    public async Task DisposeAsync()
    {
        await _h.DisposeAsync();
        await _sim.DisposeAsync();
    }

    /// <summary>
    /// <paramref name="files"/> files of 50 lines (about 3,600 characters each) under data/, committed; and a scenario that
    /// reads one a turn (<c>data/f{{turn}}.txt</c>), then answers "all N steps done".
    /// </summary>
    private string Setup(Provider provider, int files, int scenarioWindow, int? configuredWindow)
    {
        Directory.CreateDirectory(Path.Combine(_h.Repo, "data"));
        for (var i = 0; i < files; i++)
        {
            File.WriteAllLines(Path.Combine(_h.Repo, "data", $"f{i}.txt"),
                Enumerable.Range(0, 50).Select(l => $"file {i} line {l}: " + new string((char)('a' + (l % 26)), 50)));
        }

        _h.Git("add", "-A");
        _h.Git("commit", "-q", "-m", "data");
        var scenario = new
        {
            name = "long",
            contextWindow = scenarioWindow,
            summary = new { text = SummaryText },
            turns = new object[]
            {
                new { text = "step {{turn}}", toolCalls = new[] { new { name = "Read", input = new { file_path = "data/f{{turn}}.txt" } } }, repeat = files },
                new { text = $"all {files} steps done" },
            },
        };
        var path = _h.Scenario("long", scenario)["sim:".Length..];
        var model = (provider == Provider.Anthropic ? "simhttp:" : "simoai:") + path;
        _h.WriteConfig(new
        {
            models = new
            {
                providers = new Dictionary<string, object>
                {
                    ["simhttp"] = new { kind = "anthropic", baseUrl = _sim.BaseUrl.ToString(), apiKey = "test" },
                    ["simoai"] = new { kind = "openai", baseUrl = _sim.BaseUrl + "v1", apiKey = "test" },
                },
                contextWindow = configuredWindow is { } w ? new Dictionary<string, int> { [model] = w } : [],
            },
            limits = new { maxTurns = files + 50 },
        });
        return model;
    }

    private IReadOnlyList<RecordedRequest> ModelRequests() => [.. _sim.Requests.Where(r => r.TurnIndex >= 0)];

    [Fact]
    public async Task LongTask_ToolOutputsTenTimesTheWindow_Succeeds_WithEveryRequestUnderTheWindow()
    {
        const int window = 16_000;
        const int steps = 300;
        var model = Setup(Provider.Anthropic, steps, window, configuredWindow: window);

        var task = await _h.RunTaskAsync(model, "read every data file");
        var done = await _h.WaitAsync(task.Id, TimeSpan.FromMinutes(10));

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status.ToWire()}: {done.Error}");
        Assert.Equal($"all {steps} steps done", done.Summary);
        var events = await _h.EventsAsync(task.Id);
        AssertGapless(events, "the long task");
        var outputChars = events.OfType<ToolResulted>().Sum(r => (long)r.Output.Length);
        Assert.True(outputChars / 4 >= 10L * window, $"the tool outputs came to {outputChars / 4} tokens, not ten times the window");

        // Every file was read once, in order: the Simulator's turns went on across each compaction, none was played twice.
        Assert.Equal(Enumerable.Range(0, steps).Select(i => $"data/f{i}.txt"),
            events.OfType<ToolCalled>().Select(c => c.Input.GetProperty("file_path").GetString()));
        Assert.All(events.OfType<ToolResulted>(), r => Assert.False(r.IsError, r.Output));

        var requests = ModelRequests();
        var over = requests.Where(r => r.InputTokens > window).ToList();
        Assert.True(over.Count == 0, $"{over.Count} of {requests.Count} requests passed the window of {window}: {string.Join(", ", over.Select(r => r.InputTokens))}");

        var compactions = events.OfType<ContextCompacted>().ToList();
        Assert.Contains(compactions, c => c.Summary is null && c.Cleared.Count > 0); // clearing old outputs was enough
        Assert.Contains(compactions, c => c.Summary is not null); // and at times it was not
        Assert.All(compactions, c => Assert.True(c.Reason == "threshold" && c.TokensAfter < c.TokensBefore && c.Window == window, $"{c}"));
        Assert.Equal(requests.Count(r => r.Summary), compactions.Count(c => c.Summary is not null));
        Assert.All(compactions.SelectMany(c => c.Cleared), c => Assert.True(File.Exists(c.Path), $"{c.Path} does not exist"));

        // show counts them (--json carries them); logs shows each.
        var show = await _h.OffloadAsync("show", "--json", Id(task.Id));
        using var json = JsonDocument.Parse(show.Stdout);
        Assert.Equal(compactions.Count, json.RootElement.GetProperty("compactions").GetArrayLength());
        Assert.Contains($"context   {compactions.Count} compactions", (await _h.OffloadAsync("show", Id(task.Id))).Stdout);
        var logs = (await _h.OffloadAsync("logs", Id(task.Id))).Stdout;
        Assert.Equal(compactions.Count, logs.Split('\n').Count(l => l.Contains("context compacted (threshold)", StringComparison.Ordinal)));
        Assert.Contains("summary: " + SummaryText, logs);
    }

    [Theory]
    [InlineData(Provider.Anthropic)]
    [InlineData(Provider.OpenAI)]
    public async Task PromptTooLong_FromTheProvider_CompactsAndRetries_TheTaskSucceeds(Provider provider)
    {
        const int window = 6_000; // the provider's; Offload assumes the default (128,000) for a model it does not know
        var model = Setup(provider, 12, window, configuredWindow: null);

        var task = await _h.RunTaskAsync(model, "read the data files");
        var done = await _h.WaitAsync(task.Id);

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status.ToWire()}: {done.Error}");
        Assert.Equal("all 12 steps done", done.Summary);
        var events = await _h.EventsAsync(task.Id);
        var first = events.OfType<ContextCompacted>().First();
        Assert.Equal("prompt too long", first.Reason);
        Assert.Equal(window, first.Window); // learned from the provider's answer
        Assert.True(first.TokensBefore > window, $"{first}");
        Assert.Empty(events.OfType<ErrorRaised>());

        // Refused once, then never again: from then on the agent compacted before it passed the window.
        var requests = ModelRequests();
        Assert.Single(requests, r => r.InputTokens > window);
        Assert.All(events.OfType<ContextCompacted>().Skip(1), c => Assert.Equal("threshold", c.Reason));
        Assert.Equal(Enumerable.Range(0, 12).Select(i => $"data/f{i}.txt"),
            events.OfType<ToolCalled>().Select(c => c.Input.GetProperty("file_path").GetString()));
    }

    [Fact]
    public async Task KillNine_WhileTheSummaryIsBeingWritten_LosesNothing_AndCompactsOnce()
    {
        const int window = 8_000;
        var model = Setup(Provider.Anthropic, 40, window, configuredWindow: window);
        using var hold = _sim.Hold(r => r.Summary); // the first summary request waits, unanswered, until the daemon is gone
        var pid = await _h.DaemonPidAsync();

        var task = await _h.RunTaskAsync(model, "read the data files");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await _sim.WaitForRequestAsync(r => r.Summary, timeout.Token);
        await KillNineAsync(pid);
        hold.Release();
        await _h.DaemonPidAsync(); // the new daemon resumes the task

        var done = await _h.WaitAsync(task.Id);
        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status.ToWire()}: {done.Error}");
        Assert.Equal("all 40 steps done", done.Summary);
        var events = await _h.EventsAsync(task.Id);
        AssertGapless(events, "after the kill");

        var compactions = events.OfType<ContextCompacted>().ToList();
        var killed = events.OfType<AssistantMessage>().First().Attempt; // the daemon's run that was killed wrote under this attempt number
        var turnAtKill = events.Where(e => e.Attempt == killed).OfType<AssistantMessage>().Max(a => a.Turn);
        var redone = compactions.First(c => c.Summary is not null);
        Assert.True(redone.Turn == turnAtKill && redone.Attempt > killed, $"the first summary is {redone}; the daemon was killed at turn {turnAtKill}");
        Assert.Equal(compactions.Count, compactions.Select(c => c.Turn).Distinct().Count()); // never twice at one point
        Assert.Equal(_sim.Requests.Count(r => r.Summary) - 1, compactions.Count(c => c.Summary is not null)); // every answered summary is on record, once
        Assert.Equal(Enumerable.Range(0, 40).Select(i => $"data/f{i}.txt"),
            events.OfType<ToolCalled>().Select(c => c.Input.GetProperty("file_path").GetString()));
        Assert.DoesNotContain(events.OfType<ToolResulted>(), r => r.IsError);
    }

    [Fact]
    public async Task Resume_AfterACompaction_RebuildsFromTheSummary_NotTheOldTurns()
    {
        const int window = 8_000;
        var model = Setup(Provider.Anthropic, 30, window, configuredWindow: window);
        var pid = await _h.DaemonPidAsync();
        using var summary = _sim.Hold(r => r.Summary);

        var task = await _h.RunTaskAsync(model, "read the data files");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await _sim.WaitForRequestAsync(r => r.Summary, timeout.Token);
        var seen = _sim.Requests.ToHashSet(ReferenceEqualityComparer.Instance);
        using var next = _sim.Hold(r => !r.Summary); // the first call after the compaction waits: the daemon dies then
        summary.Release();
        var after = await _sim.WaitForRequestAsync(r => !r.Summary && !seen.Contains(r), timeout.Token);
        await KillNineAsync(pid);
        next.Release();
        seen = _sim.Requests.ToHashSet(ReferenceEqualityComparer.Instance);
        await _h.DaemonPidAsync();

        var resumed = await _sim.WaitForRequestAsync(r => r.TurnIndex >= 0 && !seen.Contains(r), timeout.Token);
        var live = Messages(after);
        var rebuilt = Messages(resumed);
        Assert.Equal(live.GetRawText(), rebuilt.GetRawText()); // the resumed run sends what the live one sent
        var opening = rebuilt[0].GetProperty("content").ToString();
        Assert.Contains(SummaryText, opening);
        Assert.DoesNotContain("file 0 line", rebuilt.GetRawText(), StringComparison.Ordinal); // the first turns are gone
        Assert.False(resumed.Summary); // the compaction on record was not made again

        var done = await _h.WaitAsync(task.Id);
        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status.ToWire()}: {done.Error}");
        Assert.Equal("all 30 steps done", done.Summary);

        // A reply goes on from the same compacted conversation.
        seen = _sim.Requests.ToHashSet(ReferenceEqualityComparer.Instance);
        Assert.Equal(0, (await _h.OffloadAsync("reply", Id(task.Id), "one more thing")).ExitCode);
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);
        var replied = _sim.Requests.First(r => r.TurnIndex >= 0 && !seen.Contains(r));
        Assert.Contains(SummaryText, Messages(replied)[0].GetProperty("content").ToString());
        Assert.Contains("one more thing", Messages(replied).EnumerateArray().Last().GetRawText(), StringComparison.Ordinal);
    }

    private static JsonElement Messages(RecordedRequest request)
    {
        using var body = JsonDocument.Parse(request.Body);
        return body.RootElement.GetProperty("messages").Clone();
    }
}
