using System.Text;
using System.Text.Json.Nodes;

namespace Offload.Simulator.Tests;

/// <summary>The Simulator's Anthropic usage reports cache reads and writes from the request's cache_control breakpoints.</summary>
public sealed class PromptCacheTests
{
    private const string Scenario = """{ "name": "cache", "turns": [ { "text": "one" }, { "text": "two" }, { "text": "three" } ] }""";

    private static readonly string LongSystem = new('s', 8_000);

    private static JsonObject Ephemeral() => new() { ["type"] = "ephemeral" };

    private static JsonObject Text(string text, bool breakpoint) =>
        breakpoint ? new() { ["type"] = "text", ["text"] = text, ["cache_control"] = Ephemeral() } : new() { ["type"] = "text", ["text"] = text };

    private static JsonObject Message(string role, string text, bool breakpoint) =>
        new() { ["role"] = role, ["content"] = new JsonArray(Text(text, breakpoint)) };

    private static JsonObject Request(string system, bool breakpoints, params (string Role, string Text)[] messages)
    {
        var body = Sim.Anthropic(false);
        body["system"] = new JsonArray(Text(system, breakpoints));
        var list = new JsonArray();
        for (var i = 0; i < messages.Length; i++)
        {
            list.Add(Message(messages[i].Role, messages[i].Text, breakpoints && i == messages.Length - 1));
        }

        body["messages"] = list;
        return body;
    }

    private static async Task<(int Input, int Read, int Write, int Total)> UsageAsync(HttpClient client, JsonObject body)
    {
        using var response = await Sim.PostAsync(client, "v1/messages", body);
        response.EnsureSuccessStatusCode();
        var usage = Sim.Parse(await response.Content.ReadAsStringAsync())["usage"]!;
        return (
            usage["input_tokens"]!.GetValue<int>(),
            usage["cache_read_input_tokens"]!.GetValue<int>(),
            usage["cache_creation_input_tokens"]!.GetValue<int>(),
            Math.Max(1, Encoding.UTF8.GetByteCount(body.ToJsonString()) / 4));
    }

    [Fact]
    public async Task Breakpoints_NextTurnReadsWhatTheLastOneWrote_AndWritesOnlyTheNewPart()
    {
        await using var server = await Sim.StartAsync(Scenario);
        using var client = Sim.Client(server);
        (string, string) task = ("user", new string('u', 6_000));
        (string, string) reply = ("assistant", "one");
        (string, string) result = ("user", new string('r', 4_000));

        var first = await UsageAsync(client, Request(LongSystem, true, task));
        var second = await UsageAsync(client, Request(LongSystem, true, task, reply, result));

        Assert.Equal(0, first.Read);
        Assert.True(first.Write > 3_000, $"the system prompt and task (~3,500 tokens) are written: {first}");
        Assert.Equal(first.Total, first.Input + first.Read + first.Write);
        Assert.Equal(first.Write, second.Read);
        Assert.InRange(second.Write, 1_000, 1_100); // the reply and the 4,000-character tool result
        Assert.Equal(second.Total, second.Input + second.Read + second.Write);
        Assert.True(second.Input < 100, $"only what follows the last breakpoint is plain input: {second}");
    }

    [Fact]
    public async Task ChangedPrefix_OrOtherModel_OrNoBreakpoint_ReadsNothing()
    {
        await using var server = await Sim.StartAsync(Scenario);
        using var client = Sim.Client(server);
        (string, string) task = ("user", new string('u', 6_000));
        await UsageAsync(client, Request(LongSystem, true, task));

        var changed = await UsageAsync(client, Request(LongSystem + "!", true, task));
        var otherModelBody = Request(LongSystem, true, task);
        otherModelBody["model"] = "claude-other";
        var otherModel = await UsageAsync(client, otherModelBody);
        var unmarked = await UsageAsync(client, Request(LongSystem, false, task));

        Assert.Equal(0, changed.Read);
        Assert.True(changed.Write > 3_000);
        Assert.Equal(0, otherModel.Read);
        Assert.Equal((0, 0, unmarked.Total), (unmarked.Read, unmarked.Write, unmarked.Input));
    }

    [Fact]
    public async Task PrefixUnderTheMinimum_IsNotCached()
    {
        await using var server = await Sim.StartAsync(Scenario);
        using var client = Sim.Client(server);

        var first = await UsageAsync(client, Request("short", true, ("user", "hi")));
        var second = await UsageAsync(client, Request("short", true, ("user", "hi")));

        Assert.Equal((0, 0), (first.Read, first.Write));
        Assert.Equal((0, 0), (second.Read, second.Write));
    }

    [Fact]
    public async Task ScriptedCacheCounts_OverrideTheAccounting()
    {
        await using var server = await Sim.StartAsync("""{ "name": "scripted", "turns": [ { "text": "one", "cacheReadTokens": 7, "cacheWriteTokens": 3 } ] }""");
        using var client = Sim.Client(server);

        var usage = await UsageAsync(client, Request(LongSystem, true, ("user", new string('u', 6_000))));

        Assert.Equal((7, 3, usage.Total - 10), (usage.Read, usage.Write, usage.Input));
    }
}
