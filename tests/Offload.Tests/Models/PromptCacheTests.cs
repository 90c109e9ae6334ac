using Offload.Protocol;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;

namespace Offload.Tests.Models;

/// <summary>
/// The builtin agent's Anthropic requests carry cache_control breakpoints (tools, system prompt, newest message) so each
/// turn reads the conversation so far from the prompt cache; the Simulator counts reads and writes from the breakpoints.
/// </summary>
public sealed class PromptCacheTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task EveryTurn_ReadsFromTheCacheWhatThePreviousTurnWrote()
    {
        var model = _h.Scenario("cached", Scenario([.. Enumerable.Range(0, 12).Select(i => Tool("Bash", new { command = $"seq {i * 100} {i * 100 + 150}" })), Final("done")]));

        var task = await _h.WaitAsync((await _h.RunTaskAsync(model, "count a while")).Id);

        Assert.Equal(OffloadTaskStatus.Succeeded, task.Status);
        var usage = (await _h.EventsAsync(task.Id)).OfType<UsageRecorded>().ToList();
        Assert.Equal(13, usage.Count);
        Assert.Equal(0, usage[0].CacheReadTokens);
        Assert.True(usage[0].CacheWriteTokens >= 1024, $"the system prompt and tools are written on the first turn: {usage[0]}");
        for (var i = 1; i < usage.Count; i++)
        {
            Assert.Equal(usage[i - 1].CacheReadTokens + usage[i - 1].CacheWriteTokens, usage[i].CacheReadTokens);
            Assert.True(usage[i].InputTokens < 100, $"turn {i}: only the request envelope is uncached: {usage[i]}");
        }

        var read = usage.Sum(u => u.CacheReadTokens);
        var all = usage.Sum(u => u.InputTokens + u.CacheReadTokens + u.CacheWriteTokens);
        Assert.True(read >= 0.8 * all, $"{read} of {all} input tokens read from the cache");
    }
}
