using System.Text.Json;
using Microsoft.Extensions.AI;
using Offload.Models;
using Offload.Protocol;

namespace Offload.Agent;

/// <summary>Rebuilds the model conversation from a task's journal: resume is a replay.</summary>
public static class Conversation
{
    public const string InterruptedNote =
        "This tool call was interrupted by a restart of Offload before its result was recorded. " +
        "It may or may not have taken effect: check the files before retrying it.";

    /// <summary>
    /// What the model is told when its reply was cut off by the output-token limit (Claude Code 2.1.197's words), sent
    /// as a <see cref="UserMessage"/> from <see cref="OutputLimitSource"/>, in the same transaction as the cut reply.
    /// </summary>
    public const string OutputLimitNote =
        "Output token limit hit. Resume directly \u2014 no apology, no recap of what you were doing. " +
        "Pick up mid-thought if that is where the cut happened. Break remaining work into smaller pieces.";

    public const string OutputLimitSource = "output-limit";

    /// <summary>Tool calls in the journal that have no result: the run stopped while they were pending.</summary>
    public static IReadOnlyList<ToolCalled> PendingCalls(IReadOnlyList<AgentEvent> history, string? subagent = null)
    {
        var current = Current(history, subagent);
        var answered = current.OfType<ToolResulted>().Select(r => r.CallId).ToHashSet(StringComparer.Ordinal);
        return current.OfType<ToolCalled>().Where(c => !answered.Contains(c.CallId)).ToList();
    }

    /// <summary>
    /// The events that make the conversation as it stands: the prompt, then the current attempt's events
    /// (after the last <see cref="AttemptStarted"/>), without those a <see cref="TaskRewound"/> took back.
    /// Everything else stays in the journal, on record. Only the events of <paramref name="subagent"/> (the Agent call
    /// whose subagent wrote them; null: the task's own agent) are in it: each agent has its own conversation.
    /// </summary>
    public static IReadOnlyList<AgentEvent> Current(IReadOnlyList<AgentEvent> history, string? subagent = null)
    {
        var current = new List<AgentEvent>(history.Count);
        foreach (var e in history)
        {
            switch (e)
            {
                case AttemptStarted:
                    current.RemoveAll(c => c is not TaskCreated);
                    break;
                case TaskRewound rewound:
                    current.RemoveAll(c => c.Seq > rewound.ToSeq);
                    break;
                case not TaskCreated when e.Subagent != subagent:
                case TaskCreated when subagent is not null:
                    break;
                default:
                    current.Add(e);
                    break;
            }
        }

        return current;
    }

    /// <summary>
    /// Whether a pending call was waiting for the user's answer when the run stopped: it never ran,
    /// so the resumed run asks again (or finds the answer given meanwhile) instead of calling it interrupted.
    /// </summary>
    public static bool IsParked(IReadOnlyList<AgentEvent> history, ToolCalled call) =>
        history.OfType<PermissionRequested>().Any(p => p.Seq > call.Seq && p.Tool == call.Name && JsonElement.DeepEquals(p.Input, call.Input));

    /// <summary>The model conversation as it stands: the current events (of the task's agent, or of one subagent), as compactions left them (<see cref="Compaction.View"/>).</summary>
    public static List<ChatMessage> Rebuild(IReadOnlyList<AgentEvent> history, string? subagent = null)
    {
        var messages = new List<ChatMessage>();
        ChatMessage? assistant = null;
        ChatMessage? tool = null;
        foreach (var e in Compaction.View(Current(history, subagent)))
        {
            switch (e)
            {
                case TaskCreated created:
                    messages.Add(new ChatMessage(ChatRole.User, created.Prompt));
                    assistant = tool = null;
                    break;
                case UserMessage user:
                    if (assistant is { Contents.Count: 0 })
                    {
                        messages.Remove(assistant); // an answer with nothing in it (cut off before its first word) is not sent back
                    }

                    messages.Add(new ChatMessage(ChatRole.User, user.Text));
                    assistant = tool = null;
                    break;
                case AssistantMessage text:
                    assistant = new ChatMessage(ChatRole.Assistant, [.. (text.Thinking ?? []).Select(ToContent)]);
                    if (text.Text.Length > 0)
                    {
                        assistant.Contents.Add(new TextContent(text.Text));
                    }

                    messages.Add(assistant);
                    tool = null;
                    break;
                case ToolCalled call when assistant is not null:
                    assistant.Contents.Add(new FunctionCallContent(call.CallId, call.Name, ToArguments(call.Input)));
                    break;
                case ToolResulted result:
                    if (tool is null)
                    {
                        tool = new ChatMessage(ChatRole.Tool, []);
                        messages.Add(tool);
                    }

                    // Read-only calls of a turn run together and are journaled as they end; the model gets them in call order.
                    var order = CallOrder(assistant, result.CallId);
                    var at = tool.Contents.Count;
                    while (at > 0 && CallOrder(assistant, ((FunctionResultContent)tool.Contents[at - 1]).CallId) > order)
                    {
                        at--;
                    }

                    tool.Contents.Insert(at, ResultContent(result));
                    break;
            }
        }

        return messages;
    }

    /// <summary>The thinking blocks of a model's answer, in order, as the journal keeps them; null when it has none.</summary>
    public static IReadOnlyList<ThinkingBlock>? ThinkingOf(IEnumerable<AIContent> contents)
    {
        List<ThinkingBlock> blocks = [.. contents.OfType<TextReasoningContent>().Select(r => AnthropicChatClient.IsRedacted(r)
            ? new ThinkingBlock("", RedactedData: r.ProtectedData ?? "")
            : new ThinkingBlock(r.Text, r.ProtectedData))];
        return blocks.Count == 0 ? null : blocks;
    }

    /// <summary>A journal's thinking block as the content a model client sends back (it goes first in its turn, as the API wants).</summary>
    public static AIContent ToContent(ThinkingBlock block) =>
        block.RedactedData is { } data ? AnthropicChatClient.RedactedThinking(data) : new TextReasoningContent(block.Text) { ProtectedData = block.Signature };

    /// <summary>Where the call is among the assistant message's calls; a result without its call goes last.</summary>
    private static int CallOrder(ChatMessage? assistant, string callId)
    {
        var index = assistant?.Contents.OfType<FunctionCallContent>().ToList().FindIndex(c => c.CallId == callId) ?? -1;
        return index < 0 ? int.MaxValue : index;
    }

    /// <summary>
    /// A tool result as the model gets it, live and on resume alike. A failed one carries a <see cref="ToolFailedException"/>,
    /// which the Anthropic client sends as <c>"is_error": true</c>; OpenAI's protocol has no such flag, so its client
    /// puts "Error: " before the text instead (<see cref="Models.ToolErrorTextChatClient"/>).
    /// </summary>
    public static FunctionResultContent ResultContent(ToolResulted result) =>
        new(result.CallId, result.Output) { Exception = result.IsError ? new ToolFailedException(result.Output) : null };

    public static Dictionary<string, object?> ToArguments(JsonElement input)
    {
        var args = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (input.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in input.EnumerateObject())
            {
                args[property.Name] = property.Value.Clone();
            }
        }

        return args;
    }

    public static JsonElement ToInput(IDictionary<string, object?>? arguments) =>
        JsonSerializer.SerializeToElement(arguments ?? new Dictionary<string, object?>(), OffloadJson.Info<IDictionary<string, object?>>());
}
