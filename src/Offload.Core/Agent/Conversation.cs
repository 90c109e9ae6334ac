using System.Text.Json;
using Microsoft.Extensions.AI;
using Offload.Protocol;

namespace Offload.Agent;

/// <summary>Rebuilds the model conversation from a task's journal: resume is a replay.</summary>
public static class Conversation
{
    public const string InterruptedNote =
        "This tool call was interrupted by a restart of Offload before its result was recorded. " +
        "It may or may not have taken effect: check the files before retrying it.";

    /// <summary>Tool calls in the journal that have no result: the run stopped while they were pending.</summary>
    public static IReadOnlyList<ToolCalled> PendingCalls(IReadOnlyList<AgentEvent> history)
    {
        var current = Current(history);
        var answered = current.OfType<ToolResulted>().Select(r => r.CallId).ToHashSet(StringComparer.Ordinal);
        return current.OfType<ToolCalled>().Where(c => !answered.Contains(c.CallId)).ToList();
    }

    /// <summary>
    /// The events that make the conversation as it stands: the prompt, then the current attempt's events
    /// (after the last <see cref="AttemptStarted"/>), without those a <see cref="TaskRewound"/> took back.
    /// Everything else stays in the journal, on record.
    /// </summary>
    public static IReadOnlyList<AgentEvent> Current(IReadOnlyList<AgentEvent> history)
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

    /// <summary>The model conversation as it stands: the current events, as compactions left them (<see cref="Compaction.View"/>).</summary>
    public static List<ChatMessage> Rebuild(IReadOnlyList<AgentEvent> history)
    {
        var messages = new List<ChatMessage>();
        ChatMessage? assistant = null;
        ChatMessage? tool = null;
        foreach (var e in Compaction.View(Current(history)))
        {
            switch (e)
            {
                case TaskCreated created:
                    messages.Add(new ChatMessage(ChatRole.User, created.Prompt));
                    assistant = tool = null;
                    break;
                case UserMessage user:
                    messages.Add(new ChatMessage(ChatRole.User, user.Text));
                    assistant = tool = null;
                    break;
                case AssistantMessage text:
                    assistant = new ChatMessage(ChatRole.Assistant, []);
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

                    tool.Contents.Add(new FunctionResultContent(result.CallId, result.IsError ? $"Error: {result.Output}" : result.Output));
                    break;
            }
        }

        return messages;
    }

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
