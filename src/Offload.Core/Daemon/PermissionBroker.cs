using System.Collections.Concurrent;
using System.Text.Json;
using Offload.Engines;
using Offload.Protocol;
using Offload.Store;

namespace Offload.Daemon;

/// <summary>The user's answer to one permission question. A deny's <see cref="Reason"/> goes to the model.</summary>
public sealed record PermissionAnswer(bool Allowed, string? Reason, bool Always);

/// <summary>
/// Background approvals. An engine asks (<see cref="RequestAsync"/>): the task is parked in
/// <c>needs_input</c> with the exact tool call in its journal, and waits; the user answers from
/// the API (<see cref="AnswerAsync"/>). The journal is the truth on both sides: the answer is
/// stored the moment it is given, so a question and its answer survive a daemon restart — the
/// resumed run asks again and either finds the answer or parks again on the same question
/// (same tool and input, no tool result since).
/// </summary>
public sealed class PermissionBroker(ITaskStore store, EventHub hub)
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource<PermissionAnswer>> _waiting = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _answering = new(1, 1);

    /// <summary>Raised after a task was parked on a question (for notifications). Handlers must not throw.</summary>
    public event Action<PermissionRequested>? Parked;

    /// <param name="clock">The run's wall-clock limit, stopped while the question waits for its answer.</param>
    public async Task<PermissionAnswer> RequestAsync(Journal journal, string tool, JsonElement input, string? rule, WallClock clock, CancellationToken cancellationToken)
    {
        var history = await journal.ReadAllAsync(cancellationToken);
        var request = OpenRequest(history, tool, input);
        var answered = request is null ? null : AnswerTo(history, request.RequestId);
        if (answered is not null)
        {
            return new PermissionAnswer(answered.Allowed, answered.Reason, answered.Always); // answered while no run was waiting
        }

        var waiter = new TaskCompletionSource<PermissionAnswer>(TaskCreationOptions.RunContinuationsAsynchronously);
        var requestId = request?.RequestId ?? $"perm-{journal.TaskId}-{Guid.NewGuid():N}"[..24];
        _waiting[requestId] = waiter;
        try
        {
            if (request is null)
            {
                request = (PermissionRequested)await journal.AppendAsync(new PermissionRequested(requestId, tool, input.Clone(), rule), cancellationToken);
            }

            await journal.AppendAsync(new StatusChanged(OffloadTaskStatus.Running, OffloadTaskStatus.NeedsInput, $"needs approval: {tool} {Describe(input)}".TrimEnd()), cancellationToken);
            Parked?.Invoke(request);

            // the answer may have been stored between our read and registering the waiter
            if (AnswerTo(await journal.ReadAllAsync(cancellationToken), requestId) is { } late)
            {
                waiter.TrySetResult(new PermissionAnswer(late.Allowed, late.Reason, late.Always));
            }

            PermissionAnswer answer;
            using (clock.Pause())
            {
                answer = await waiter.Task.WaitAsync(cancellationToken);
            }

            await journal.AppendAsync(new StatusChanged(OffloadTaskStatus.NeedsInput, OffloadTaskStatus.Running, answer.Allowed ? "approved" : "denied"), cancellationToken);
            return answer;
        }
        finally
        {
            _waiting.TryRemove(new KeyValuePair<string, TaskCompletionSource<PermissionAnswer>>(requestId, waiter));
        }
    }

    /// <summary>The open question of a task, if any: the latest request without an answer.</summary>
    public async Task<PermissionRequested?> PendingAsync(long taskId, CancellationToken cancellationToken = default)
    {
        var task = await store.GetTaskAsync(taskId, cancellationToken) ?? throw OffloadException.NotFound(taskId);
        if (task.Status.IsFinal())
        {
            return null;
        }

        var history = await store.ReadEventsAsync(taskId, 0, int.MaxValue, cancellationToken);
        return history.OfType<PermissionRequested>().LastOrDefault() is { } last && AnswerTo(history, last.RequestId) is null ? last : null;
    }

    /// <summary>Stores the user's answer to the task's open question and wakes the run waiting on it.</summary>
    public async Task<(PermissionRequested Request, PermissionAnswered Answer)> AnswerAsync(long taskId, bool allow, string? reason, bool always, CancellationToken cancellationToken)
    {
        await _answering.WaitAsync(cancellationToken);
        try
        {
            var request = await PendingAsync(taskId, cancellationToken)
                ?? throw new OffloadException(ErrorCodes.Conflict, $"task {taskId} has no question waiting for an answer",
                    $"`offload show {taskId}` shows its status; `offload logs {taskId}` what it did");
            var answer = (PermissionAnswered)await store.AppendUnfencedAsync(taskId,
                new PermissionAnswered(request.RequestId, allow, string.IsNullOrWhiteSpace(reason) ? null : reason, always && allow), cancellationToken);
            hub.Publish(answer);
            if (_waiting.TryGetValue(request.RequestId, out var waiter))
            {
                waiter.TrySetResult(new PermissionAnswer(answer.Allowed, answer.Reason, answer.Always));
            }

            return (request, answer);
        }
        finally
        {
            _answering.Release();
        }
    }

    /// <summary>
    /// The question this call re-asks after a restart: the latest request, if it is for the same
    /// tool and input and no tool result was recorded after it.
    /// </summary>
    private static PermissionRequested? OpenRequest(IReadOnlyList<AgentEvent> history, string tool, JsonElement input)
    {
        for (var i = history.Count - 1; i >= 0; i--)
        {
            switch (history[i])
            {
                case ToolResulted:
                    return null;
                case PermissionRequested p:
                    return p.Tool == tool && JsonElement.DeepEquals(p.Input, input) ? p : null;
            }
        }

        return null;
    }

    /// <summary>The part of a call a person recognises (the command, the file), cut to one line.</summary>
    private static string Describe(JsonElement input)
    {
        var text = input.ValueKind != JsonValueKind.Object ? input.GetRawText()
            : new[] { "command", "file_path", "path", "url", "pattern" }.Select(k => input.TryGetProperty(k, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null)
                .FirstOrDefault(v => v is not null) ?? input.GetRawText();
        text = text.ReplaceLineEndings(" ");
        return text.Length <= 160 ? text : text[..159] + "…";
    }

    private static PermissionAnswered? AnswerTo(IReadOnlyList<AgentEvent> history, string requestId) =>
        history.OfType<PermissionAnswered>().LastOrDefault(a => a.RequestId == requestId);
}
