using System.Text.Json;
using Offload.Engines;
using Offload.Engines.Claude;
using Offload.Models;
using Offload.Protocol;

namespace Offload.Tests.Claude;

/// <summary>The mapping of Claude Code's stream-json lines (as 2.1.197 prints them) to journal events.</summary>
public sealed class ClaudeStreamTests
{
    private static string Line(object o) => JsonSerializer.Serialize(o);

    private static string Assistant(string id, object block, string? parent = null) =>
        Line(new { type = "assistant", message = new { id, role = "assistant", content = new[] { block } }, parent_tool_use_id = parent, session_id = "s-1" });

    [Fact]
    public void OneApiResponse_IsOneTurn_ItsTextThenItsToolCalls()
    {
        var stream = new ClaudeStream(turn: 2, "anthropic:claude-opus-4-8");
        var text = stream.Map(Assistant("msg_a", new { type = "text", text = "Looking." }));
        var call = stream.Map(Assistant("msg_a", new { type = "tool_use", id = "toolu_1", name = "Bash", input = new { command = "ls" } }));
        var toolOnly = stream.Map(Assistant("msg_b", new { type = "tool_use", id = "toolu_2", name = "Read", input = new { file_path = "/w/a" } }));

        Assert.Equal([new AssistantMessage(3, "Looking.")], text);
        var called = Assert.IsType<ToolCalled>(Assert.Single(call));
        Assert.Equal((3, "toolu_1", "Bash", "{\"command\":\"ls\"}"), (called.Turn, called.CallId, called.Name, called.Input.GetRawText()));
        Assert.Equal(2, toolOnly.Count);
        Assert.Equal(new AssistantMessage(4, ""), toolOnly[0]); // a turn of tool calls only still counts
        Assert.Equal(4, stream.Turn);
        Assert.Equal("s-1", stream.SessionId);
    }

    [Fact]
    public void ToolResults_AreMatchedToTheirCalls_StringOrBlocks_WithTheirErrorFlag()
    {
        var stream = new ClaudeStream(0, "sim:x");
        stream.Map(Assistant("m", new { type = "tool_use", id = "t1", name = "Bash", input = new { command = "false" } }));
        var results = stream.Map(Line(new
        {
            type = "user",
            message = new
            {
                role = "user",
                content = new object[]
                {
                    new { type = "tool_result", tool_use_id = "t1", content = "Exit code 1", is_error = true },
                    new { type = "tool_result", tool_use_id = "t9", content = new object[] { new { type = "text", text = "a" }, new { type = "image" } } },
                },
            },
        }));

        Assert.Equal([new ToolResulted("t1", "Bash", "Exit code 1", true), new ToolResulted("t9", "?", "a[image]", false)], results);
    }

    [Fact]
    public void SubagentLines_AddToolEventsButNoTurns()
    {
        var stream = new ClaudeStream(1, "sim:x");
        var events = stream.Map(Assistant("sub", new { type = "tool_use", id = "t1", name = "Grep", input = new { pattern = "x" } }, parent: "toolu_task"));
        Assert.Equal(1, stream.Turn);
        Assert.Equal("Grep", Assert.IsType<ToolCalled>(Assert.Single(events)).Name);
        Assert.Empty(stream.Map(Assistant("sub", new { type = "text", text = "sub thoughts" }, parent: "toolu_task")));
    }

    [Fact]
    public void ApiRetry_IsAModelRetry()
    {
        var stream = new ClaudeStream(0, "sim:x");
        var retry = stream.Map(Line(new { type = "system", subtype = "api_retry", attempt = 2, max_retries = 10, retry_delay_ms = 1100.8, error_status = 529, error = "overloaded" }));
        Assert.Equal([new ModelRetried(2, 1100, "529: overloaded")], retry);
    }

    [Fact]
    public void ResultLine_GivesUsageCostSummaryAndOutcome()
    {
        var stream = new ClaudeStream(0, "anthropic:opus");
        var events = stream.Map(Line(new
        {
            type = "result",
            subtype = "success",
            is_error = false,
            num_turns = 3,
            result = "All done.",
            total_cost_usd = 0.289,
            usage = new { input_tokens = 100, output_tokens = 20, cache_read_input_tokens = 5, cache_creation_input_tokens = 7 },
            modelUsage = new Dictionary<string, object> { ["claude-opus-4-8"] = new { costUSD = 0.289 } },
            permission_denials = Array.Empty<object>(),
        }));

        Assert.Equal([new UsageRecorded("anthropic:claude-opus-4-8", 100, 20, 5, 7, 0.289m)], events);
        Assert.Equal(new EngineOutcome.Succeeded("All done."), stream.Result!.ToOutcome(1));
    }

    [Fact]
    public void SimulatedModels_CostNothing_WhateverClaudeCodeReckons()
    {
        var stream = new ClaudeStream(0, "sim:demo");
        var usage = Assert.IsType<UsageRecorded>(Assert.Single(stream.Map(Line(new { type = "result", subtype = "success", total_cost_usd = 0.5, usage = new { input_tokens = 1 } }))));
        Assert.Equal(("sim:demo", 0m), (usage.Model, usage.CostUsd));
    }

    [Theory]
    [InlineData("error_max_turns", OffloadTaskStatus.Limited)]
    [InlineData("error_max_budget_usd", OffloadTaskStatus.Limited)]
    [InlineData("error_during_execution", OffloadTaskStatus.Failed)]
    public void ErrorResults_EndLimitedOrFailed_WithClaudeCodesMessage(string subtype, OffloadTaskStatus status)
    {
        var stream = new ClaudeStream(0, "sim:x");
        stream.Map(Line(new { type = "result", subtype, is_error = true, errors = new[] { "Reached maximum number of turns (1)" } }));
        var outcome = stream.Result!.ToOutcome(7);
        Assert.Equal(status, outcome.Status);
        Assert.Contains("Reached maximum number of turns (1)", outcome.Reason);
    }

    [Fact]
    public void PermissionDenials_AreReported_UnlessOffloadDeniedThem()
    {
        var stream = new ClaudeStream(0, "sim:x");
        stream.DeniedThroughOffload.Add("t2");
        var events = stream.Map(Line(new
        {
            type = "result",
            subtype = "success",
            permission_denials = new object[]
            {
                new { tool_name = "Bash", tool_use_id = "t1", tool_input = new { command = "rm -rf x" } },
                new { tool_name = "Bash", tool_use_id = "t2", tool_input = new { command = "curl x" } },
            },
        }));

        var denial = Assert.IsType<ErrorRaised>(Assert.Single(events.Skip(1)));
        Assert.Equal("Claude Code denied Bash (a permission rule)", denial.Message);
        Assert.Equal("{\"command\":\"rm -rf x\"}", denial.Detail);
    }

    [Fact]
    public void LinesThatAreNotJsonOrNotKnown_MapToNothing()
    {
        var stream = new ClaudeStream(0, "sim:x");
        Assert.Empty(stream.Map("not json"));
        Assert.Empty(stream.Map("[1,2]"));
        Assert.Empty(stream.Map(Line(new { type = "system", subtype = "init", session_id = "abc" })));
        Assert.Equal("abc", stream.SessionId);
        Assert.Null(stream.Result);
    }

    [Theory]
    [InlineData(null, "default")]
    [InlineData("", "default")]
    [InlineData("opus", "anthropic:opus")]
    [InlineData("anthropic:claude-sonnet-4-6", "anthropic:claude-sonnet-4-6")]
    [InlineData("sim:/tmp/s.json", "sim:/tmp/s.json")]
    public void Models_ForTheClaudeEngine(string? asked, string stored)
    {
        Assert.Equal(stored, CliModel.Claude.Resolve(asked, new ModelSettings()));
    }

    [Fact]
    public void OtherProviders_AreRefusedForTheClaudeEngine_WithWhatToTypeInstead()
    {
        var e = Assert.Throws<OffloadException>(() => CliModel.Claude.Resolve("openai:gpt-5", new ModelSettings()));
        Assert.Contains("--engine builtin", e.Hint);
        Assert.Equal((string?)null, CliModel.CliName("default"));
        Assert.Equal("/tmp/s.json", CliModel.CliName("sim:/tmp/s.json"));
    }
}
