using Offload.Engines;
using Offload.Engines.Codex;
using Offload.Models;
using Offload.Protocol;

namespace Offload.Tests.Codex;

/// <summary>The mapping of <c>codex exec --json</c> lines (as Codex CLI 0.169.0 printed them here) to journal events.</summary>
public sealed class CodexStreamTests
{
    private static CodexStream Stream(int turn = 0, string model = "sim:x") =>
        new(turn, model, usage => new ModelSettings().Cost(model, usage));

    [Fact]
    public void TextThenCommand_IsOneTurn_AndTheItemsAfterTheCommandOpenTheNext()
    {
        var stream = Stream(turn: 2);
        Assert.Empty(stream.Map("""{"type":"thread.started","thread_id":"01a23d0e-7050-7552-a9f3-fb9ca8d90fd3"}"""));
        Assert.Empty(stream.Map("""{"type":"turn.started"}"""));
        var text = stream.Map("""{"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"Writing the note."}}""");
        var started = stream.Map("""{"type":"item.started","item":{"id":"item_2","type":"command_execution","command":"/bin/bash -lc 'wc -l < note.txt'","aggregated_output":"","exit_code":null,"status":"in_progress"}}""");
        var done = stream.Map("""{"type":"item.completed","item":{"id":"item_2","type":"command_execution","command":"/bin/bash -lc 'wc -l < note.txt'","aggregated_output":"2\n","exit_code":0,"status":"completed"}}""");
        var patch = stream.Map("""{"type":"item.started","item":{"id":"item_3","type":"file_change","changes":[{"path":"/w/a.txt","kind":"update"}],"status":"in_progress"}}""");
        var failed = stream.Map("""{"type":"item.completed","item":{"id":"item_3","type":"file_change","changes":[{"path":"/w/a.txt","kind":"update"}],"status":"failed"}}""");

        Assert.Equal("01a23d0e-7050-7552-a9f3-fb9ca8d90fd3", stream.SessionId);
        Assert.Equal([new AssistantMessage(3, "Writing the note.")], text);
        var call = Assert.IsType<ToolCalled>(Assert.Single(started));
        Assert.Equal((3, "item_2", "exec_command", """{"command":"/bin/bash -lc 'wc -l < note.txt'"}"""), (call.Turn, call.CallId, call.Name, call.Input.GetRawText()));
        Assert.Equal([new ToolResulted("item_2", "exec_command", "2\n", false, 0)], done);
        Assert.Equal(new AssistantMessage(4, ""), patch[0]); // a turn of tool calls only still counts
        Assert.Equal((4, "apply_patch"), (((ToolCalled)patch[1]).Turn, ((ToolCalled)patch[1]).Name));
        Assert.Equal([new ToolResulted("item_3", "apply_patch", "update /w/a.txt", true)], failed);
        Assert.Equal(4, stream.Turn);
    }

    [Fact]
    public void ParallelCommands_StartedTogether_AreOneTurn()
    {
        var stream = Stream();
        stream.Map("""{"type":"item.started","item":{"id":"a","type":"command_execution","command":"ls","status":"in_progress"}}""");
        stream.Map("""{"type":"item.started","item":{"id":"b","type":"command_execution","command":"pwd","status":"in_progress"}}""");
        var first = stream.Map("""{"type":"item.completed","item":{"id":"a","type":"command_execution","command":"ls","aggregated_output":"x","exit_code":2,"status":"failed"}}""");
        stream.Map("""{"type":"item.completed","item":{"id":"b","type":"command_execution","command":"pwd","aggregated_output":"/w","exit_code":0,"status":"completed"}}""");

        Assert.Equal(1, stream.Turn);
        Assert.Equal([new ToolResulted("a", "exec_command", "x", true, 2)], first);
    }

    [Fact]
    public void Retries_Errors_AndTheEnd_MapToRetriesNotesUsageAndTheOutcome()
    {
        var stream = Stream(model: "openai:gpt-5");
        var retry = stream.Map("""{"type":"error","message":"Reconnecting... 2/5 (stream disconnected before completion: Transport error: network error: error decoding response body)"}""");
        var warning = stream.Map("""{"type":"item.completed","item":{"id":"item_0","type":"error","message":"Model metadata for `demo` not found. Defaulting to fallback metadata; this can degrade performance and cause issues."}}""");
        stream.Map("""{"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"All done."}}""");
        var usage = stream.Map("""{"type":"turn.completed","usage":{"input_tokens":30618,"cached_input_tokens":10000,"cache_write_input_tokens":0,"output_tokens":48,"reasoning_output_tokens":0}}""");

        Assert.Equal([new ModelRetried(2, 0, "stream disconnected before completion: Transport error: network error: error decoding response body")], retry);
        Assert.Equal(CodexEngine.ErrorNote, Assert.IsType<EngineNote>(Assert.Single(warning)).Kind);
        var recorded = Assert.IsType<UsageRecorded>(Assert.Single(usage));
        Assert.Equal(("openai:gpt-5", 20618L, 48L, 10000L, 0L), (recorded.Model, recorded.InputTokens, recorded.OutputTokens, recorded.CacheReadTokens, recorded.CacheWriteTokens));
        Assert.Equal((20618 * 1.25m + 48 * 10m + 10000 * 0.125m) / 1_000_000m, recorded.CostUsd); // gpt-5's price; cached tokens apart
        Assert.Equal(new EngineOutcome.Succeeded("All done."), stream.Result!.ToOutcome());
    }

    [Fact]
    public void TurnFailed_FailsTheRunWithCodexsError()
    {
        var stream = Stream();
        stream.Map("""{"type":"turn.failed","error":{"message":"unexpected status 503 Service Unavailable: upstream is down"}}""");

        Assert.Equal(new EngineOutcome.Failed("Codex: unexpected status 503 Service Unavailable: upstream is down"), stream.Result!.ToOutcome());
    }
}
