using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;
using Offload.Protocol;

// MCPEXP002: custom request handlers and alternate results, the SDK's way for extensions such as Tasks, are marked
// "for evaluation" in 2.4.0; nothing else in the SDK answers a task-augmented tools/call.
#pragma warning disable MCPEXP002

namespace Offload.Cli.Mcp;

/// <summary>
/// MCP Tasks as the 2025-11-25 specification has them (call now, fetch later): a client that sends <c>offload_run</c>
/// with a <c>task</c> field gets a task back at once instead of the tool's result, polls it with <c>tasks/get</c>,
/// collects the result (the ended task's summary, as <c>offload_wait</c> gives it) with <c>tasks/result</c>, and hears
/// of each status change through <c>notifications/tasks/status</c>. The MCP task id is the Offload task's number, so a
/// task outlives the server process: any Offload task can be polled. The C# SDK 2.x dropped this form of Tasks for the
/// later Tasks extension (SEP-2663), so the methods are registered here by hand, over the SDK's custom request
/// handlers; the SDK's typed capabilities and tools have no field for them, so <see cref="Advertise"/> adds
/// <c>capabilities.tasks</c> and <c>offload_run</c>'s <c>execution.taskSupport</c> to the outgoing JSON.
/// </summary>
public sealed class McpTasks(OffloadTools tools) : IAsyncDisposable
{
    /// <summary>How often a client should poll (ms); status notifications make most polls unneeded.</summary>
    public const int PollIntervalMs = 2000;

    public const string StatusNotification = "notifications/tasks/status";
    public const string RelatedTaskMeta = "io.modelcontextprotocol/related-task";

    private readonly ConcurrentDictionary<long, DateTimeOffset> _created = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _watchers = [];

    /// <summary>The <c>task</c> field of a task-augmented <c>tools/call</c>, or null for an ordinary call.</summary>
    public static JsonObject? TaskField(JsonRpcRequest request) => request.Params is JsonObject p && p["task"] is JsonObject task ? task : null;

    /// <summary>Starts the Offload task of a task-augmented <c>offload_run</c> and answers with the MCP task.</summary>
    public async Task<ResultOrAlternate<CallToolResult>> CreateAsync(CallToolRequestParams call, McpServer server, CancellationToken cancellationToken)
    {
        if (call.Name != OffloadTools.Run)
        {
            throw new McpProtocolException($"only {OffloadTools.Run} can run as a task; call {call.Name} without `task`", McpErrorCode.InvalidParams);
        }

        TaskInfo created;
        try
        {
            await tools.Client.EnsureDaemonAsync(cancellationToken);
            created = await tools.RunAsync(new ToolArguments(call.Name, call.Arguments), cancellationToken);
        }
        catch (CliException e)
        {
            // Nothing was started, so there is no task to poll: the client, which waits for a task, gets the CLI's words
            // as the request's error.
            throw new McpProtocolException(e.Message + (e.Hint is null ? "" : $" (next: {e.Hint})"), McpErrorCode.InvalidParams);
        }

        _created[created.Id] = DateTimeOffset.UtcNow;
        lock (_watchers)
        {
            _watchers.Add(Task.Run(() => NotifyAsync(created.Id, server, _stopping.Token), CancellationToken.None));
        }

        return ResultOrAlternate<CallToolResult>.FromAlternate(new CreateTaskResult { Task = State(created) }, McpJsonContext.Default.CreateTaskResult);
    }

    /// <summary>The custom request handlers: <c>tasks/get</c>, <c>tasks/result</c>, <c>tasks/list</c>, <c>tasks/cancel</c>.</summary>
    public IEnumerable<McpServerRequestHandler> Handlers() =>
    [
        Handler("tasks/get", async (p, ct) => Node(State(await TaskAsync(Id(p), ct)))),
        Handler("tasks/result", ResultAsync),
        Handler("tasks/list", async (_, ct) =>
        {
            var states = new List<McpTaskState>();
            foreach (var id in _created.Keys.Order())
            {
                states.Add(State(await TaskAsync(id, ct)));
            }

            return JsonSerializer.SerializeToNode(new ListTasksResult { Tasks = states }, McpJsonContext.Default.ListTasksResult);
        }),
        Handler("tasks/cancel", async (p, ct) =>
        {
            var id = Id(p);
            await TaskAsync(id, ct); // an unknown id is the protocol's error, as for tasks/get
            try
            {
                return Node(State(await tools.Client.PostAsync<TaskInfo>($"v1/tasks/{id}/cancel", null, ct)));
            }
            catch (CliException e)
            {
                throw new McpProtocolException(e.Message + (e.Hint is null ? "" : $" ({e.Hint})"), McpErrorCode.InvalidParams);
            }
        }),
    ];

    /// <summary>
    /// The outgoing filter that says, in the JSON the SDK writes, that this server does tasks: <c>capabilities.tasks</c>
    /// in its <c>initialize</c> result and <c>execution.taskSupport: optional</c> on <c>offload_run</c> in <c>tools/list</c>.
    /// </summary>
    public static McpMessageFilter Advertise => next => (context, cancellationToken) =>
    {
        if (context.JsonRpcMessage is JsonRpcResponse { Result: JsonObject result })
        {
            if (result["capabilities"] is JsonObject capabilities && result.ContainsKey("serverInfo"))
            {
                capabilities["tasks"] = new JsonObject
                {
                    ["list"] = new JsonObject(),
                    ["cancel"] = new JsonObject(),
                    ["requests"] = new JsonObject { ["tools"] = new JsonObject { ["call"] = new JsonObject() } },
                };
            }
            else if (result["tools"] is JsonArray list)
            {
                foreach (var tool in list.OfType<JsonObject>().Where(t => (string?)t["name"] == OffloadTools.Run))
                {
                    tool["execution"] = new JsonObject { ["taskSupport"] = "optional" };
                }
            }
        }

        return next(context, cancellationToken);
    };

    private static McpServerRequestHandler Handler(string method, Func<JsonNode?, CancellationToken, Task<JsonNode?>> handle) => new()
    {
        Method = method,
        Handler = async (request, cancellationToken) => await handle(request.Params, cancellationToken),
    };

    /// <summary><c>tasks/result</c>: blocks until the task ends, then the tool result <c>offload_wait</c> would give.</summary>
    private async Task<JsonNode?> ResultAsync(JsonNode? parameters, CancellationToken cancellationToken)
    {
        var id = Id(parameters);
        await TaskAsync(id, cancellationToken);
        var task = await tools.Client.GetAsync<TaskInfo>($"v1/tasks/{id}/wait", cancellationToken);
        var result = OffloadTools.Text(OffloadTools.Ended(task) + "\n" + OffloadTools.Json(task));
        result.IsError = task.Status != OffloadTaskStatus.Succeeded;
        result.Meta = new JsonObject { [RelatedTaskMeta] = new JsonObject { ["taskId"] = Key(id) } };
        return JsonSerializer.SerializeToNode(result, McpJsonUtilities.DefaultOptions.GetTypeInfo(typeof(CallToolResult)));
    }

    /// <summary>Sends a status notification for each status change of the task until it ends (or the server stops).</summary>
    private async Task NotifyAsync(long id, McpServer server, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var e in tools.Client.EventsAsync(id, 0, follow: true, cancellationToken))
            {
                if (e is not StatusChanged changed)
                {
                    continue;
                }

                // The status the event says, not the task's latest: a quick task may have ended already.
                var task = await TaskAsync(id, cancellationToken);
                var state = changed.To.IsFinal() ? State(task) : State(task with { Status = changed.To, Error = null }, changed.At);
                await server.SendMessageAsync(new JsonRpcNotification { Method = StatusNotification, Params = Node(state) }, cancellationToken);
                if (changed.To.IsFinal())
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or CliException or HttpRequestException or IOException or InvalidOperationException)
        {
            // The server stopped, the client left, or the daemon went away for good: polling still works.
        }
    }

    private async Task<TaskInfo> TaskAsync(long id, CancellationToken cancellationToken)
    {
        try
        {
            await tools.Client.EnsureDaemonAsync(cancellationToken);
            return (await tools.Client.GetAsync<TaskReport>($"v1/tasks/{id}", cancellationToken)).Task;
        }
        catch (CliException e)
        {
            throw new McpProtocolException(e.Message, e.ExitCode == ExitCodes.NotFound ? McpErrorCode.InvalidParams : McpErrorCode.InternalError);
        }
    }

    private static long Id(JsonNode? parameters) =>
        parameters?["taskId"] is JsonValue v && v.TryGetValue<string>(out var text)
        && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var id) && id > 0
            ? id
            : throw new McpProtocolException("`taskId` must be an Offload task number as text, like \"12\"", McpErrorCode.InvalidParams);

    private static string Key(long id) => id.ToString(CultureInfo.InvariantCulture);

    /// <summary>An Offload task as an MCP task: queued, running and needs_input are <c>working</c> (the message says which).</summary>
    public static McpTaskState State(TaskInfo task, DateTimeOffset? updatedAt = null) => new()
    {
        TaskId = Key(task.Id),
        Status = task.Status switch
        {
            OffloadTaskStatus.Succeeded => "completed",
            OffloadTaskStatus.Failed or OffloadTaskStatus.Limited => "failed",
            OffloadTaskStatus.Cancelled => "cancelled",
            _ => "working",
        },
        StatusMessage = task.Status switch
        {
            OffloadTaskStatus.NeedsInput => $"needs_input: task {task.Id} waits for an answer; offload_status shows the question, offload_approve or offload_deny answers it",
            _ when task.Error is { } error => $"{task.Status.ToWire()}: {error}",
            _ => task.Status.ToWire() + (task.Turns > 0 ? $" · {task.Turns} turns" : ""),
        },
        CreatedAt = task.CreatedAt.ToString("O", CultureInfo.InvariantCulture),
        LastUpdatedAt = (updatedAt ?? task.FinishedAt ?? task.StartedAt ?? task.CreatedAt).ToString("O", CultureInfo.InvariantCulture),
        Ttl = null, // Offload keeps tasks until they are discarded
        PollInterval = PollIntervalMs,
    };

    private static JsonNode? Node(McpTaskState state) => JsonSerializer.SerializeToNode(state, McpJsonContext.Default.McpTaskState);

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        Task[] watchers;
        lock (_watchers)
        {
            watchers = [.. _watchers];
        }

        await Task.WhenAll(watchers);
        _stopping.Dispose();
    }
}

/// <summary>A task as the 2025-11-25 specification's <c>Task</c>.</summary>
public sealed class McpTaskState
{
    public required string TaskId { get; init; }

    /// <summary><c>working</c>, <c>input_required</c>, <c>completed</c>, <c>failed</c> or <c>cancelled</c>.</summary>
    public required string Status { get; init; }

    public string? StatusMessage { get; init; }
    public required string CreatedAt { get; init; }
    public required string LastUpdatedAt { get; init; }

    /// <summary>Written even when null: null is "kept until deleted".</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public long? Ttl { get; init; }

    public int? PollInterval { get; init; }
}

/// <summary>The answer to a task-augmented request: the task, in place of the request's result.</summary>
public sealed class CreateTaskResult : Result
{
    public required McpTaskState Task { get; init; }
}

public sealed class ListTasksResult : Result
{
    public required IReadOnlyList<McpTaskState> Tasks { get; init; }
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(McpTaskState))]
[JsonSerializable(typeof(CreateTaskResult))]
[JsonSerializable(typeof(ListTasksResult))]
internal sealed partial class McpJsonContext : JsonSerializerContext;
