using System.Text.Json;
using Microsoft.Extensions.AI;
using Offload.Agent;
using Offload.Protocol;

namespace Offload.Tests.Review;

/// <summary>The conversation as it stands after retries and rewinds: what the model is sent again.</summary>
public sealed class ConversationCurrentTests
{
    private static readonly JsonElement NoInput = JsonDocument.Parse("{}").RootElement;

    private static List<AgentEvent> Journal(params AgentEvent[] events) =>
        events.Select((e, i) => e with { TaskId = 1, Seq = i + 1 }).ToList();

    private static AgentEvent[] Turn(int turn, string callId) =>
    [
        new AssistantMessage(turn, $"turn {turn}"),
        new ToolCalled(turn, callId, "Write", NoInput),
        new ToolResulted(callId, "Write", "ok", false),
        new CheckpointSaved(turn, $"refs/offload/1/turn-{turn}", $"sha{turn}", 1),
    ];

    [Fact]
    public void Rewind_DropsEverythingAfterTheCheckpoint_ButAReplyAfterItCounts()
    {
        var journal = Journal([
            new TaskCreated("do it", "sim:x", "builtin", "offload/1-do-it", "main", "base"),
            .. Turn(1, "c1"), .. Turn(2, "c2"), .. Turn(3, "c3"),
            new TaskFinished(OffloadTaskStatus.Succeeded, "done", null, null)]);
        var checkpoint1 = journal.OfType<CheckpointSaved>().First();
        journal = Journal([.. journal, new TaskRewound(1, checkpoint1.Seq, "sha1", "commit"), new UserMessage("go on", "reply")]);

        var messages = Conversation.Rebuild(journal);

        Assert.Equal([ChatRole.User, ChatRole.Assistant, ChatRole.Tool, ChatRole.User], messages.Select(m => m.Role));
        Assert.Equal("go on", messages[^1].Text);
        Assert.Empty(Conversation.PendingCalls(journal));
    }

    [Fact]
    public void AttemptStarted_StartsAgainFromThePrompt_AndOldPendingCallsAreNotPending()
    {
        var journal = Journal([
            new TaskCreated("do it", "sim:x", "builtin", "offload/1-do-it", "main", "base"),
            .. Turn(1, "c1"),
            new AssistantMessage(2, "turn 2"),
            new ToolCalled(2, "cut-off", "Bash", NoInput),
            new TaskFinished(OffloadTaskStatus.Cancelled, null, "cancelled by the user", null),
            new AttemptStarted(2, "sim:y", "refs/offload/1/attempt-1/tip", "tip"),
            new AssistantMessage(1, "fresh start")]);

        var messages = Conversation.Rebuild(journal);

        Assert.Equal([ChatRole.User, ChatRole.Assistant], messages.Select(m => m.Role));
        Assert.Equal("do it", messages[0].Text);
        Assert.Equal("fresh start", messages[1].Text);
        Assert.Empty(Conversation.PendingCalls(journal));
    }

    [Fact]
    public void ARewindAfterARetry_CutsOnlyTheNewAttempt()
    {
        var first = Journal([
            new TaskCreated("do it", "sim:x", "builtin", "offload/1-do-it", "main", "base"),
            .. Turn(1, "a1"),
            new AttemptStarted(2, "sim:x"),
            .. Turn(1, "b1"), .. Turn(2, "b2")]);
        var newCheckpoint1 = first.OfType<CheckpointSaved>().ElementAt(1);
        var journal = Journal([.. first, new TaskRewound(1, newCheckpoint1.Seq, "sha1", null)]);

        var current = Conversation.Current(journal);

        Assert.Equal(["b1"], current.OfType<ToolCalled>().Select(c => c.CallId));
        Assert.IsType<TaskCreated>(current[0]);
    }
}
