using System.Globalization;
using System.Text.Json;
using Offload.Protocol;

namespace Offload.Agent.Tools;

/// <summary>
/// Claude Code's task-list tools (<c>TaskCreate</c>, <c>TaskUpdate</c>, <c>TaskList</c>, <c>TaskGet</c>), with its input shapes
/// and its answers word for word (2.1.197), so a Claude model plans here as it was trained to. The list is the task's
/// plan: every change is a <see cref="PlanItemChanged"/> in the journal (<see cref="TaskPlan"/>), which the user sees in
/// <c>show</c>, <c>ls</c> and <c>logs</c>. They change no file, and one at a time.
/// </summary>
public abstract class PlanTool : ITool
{
    public abstract string Name { get; }
    public abstract string Description { get; }
    public abstract JsonElement InputSchema { get; }
    public bool Mutates => false;
    public virtual bool ConcurrencySafe => false;

    public Task<ToolResult> InvokeAsync(JsonElement input, ToolContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            return Task.FromResult(context.Plan is { } plan ? Invoke(input, plan) : ToolResult.Error($"{Name} needs the task's plan, which this context has none of."));
        }
        catch (ToolException e)
        {
            return Task.FromResult(ToolResult.Error(e.Message));
        }
    }

    protected abstract ToolResult Invoke(JsonElement input, TaskPlan plan);

    protected static JsonElement? Metadata(JsonElement input) =>
        input.TryGetProperty("metadata", out var m) && m.ValueKind != JsonValueKind.Null
            ? m.ValueKind == JsonValueKind.Object ? m.Clone() : throw new ToolException("Parameter `metadata` must be an object.")
            : null;

    protected static IReadOnlyList<string> Ids(JsonElement input, string name)
    {
        if (!input.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return [];
        }

        return value.ValueKind == JsonValueKind.Array && value.EnumerateArray().All(v => v.ValueKind is JsonValueKind.String or JsonValueKind.Number)
            ? value.EnumerateArray().Select(v => v.ValueKind == JsonValueKind.String ? v.GetString()! : v.GetRawText()).ToList()
            : throw new ToolException($"Parameter `{name}` must be an array of task IDs.");
    }

    protected static string TaskId(JsonElement input) =>
        input.TryGetProperty("taskId", out var id) && id.ValueKind == JsonValueKind.Number ? id.GetRawText() : ToolInput.RequireString(input, "taskId");
}

public sealed class TaskCreateTool : PlanTool
{
    public override string Name => "TaskCreate";

    public override string Description =>
        "Create a task in the task list: the plan of this work, which the user sees. Use it for work of three steps or more; " +
        "give each task a brief subject, what needs to be done, and activeForm (\"Running tests\") shown while it is in progress. " +
        "New tasks start pending; mark them in_progress and completed with TaskUpdate as you go.";

    public override JsonElement InputSchema { get; } = ToolInput.Schema("""
        {
          "type": "object",
          "properties": {
            "subject": { "type": "string", "description": "A brief title for the task" },
            "description": { "type": "string", "description": "What needs to be done" },
            "activeForm": { "type": "string", "description": "Present continuous form shown in spinner when in_progress (e.g., \"Running tests\")" },
            "metadata": { "type": "object", "description": "Arbitrary metadata to attach to the task", "additionalProperties": {} }
          },
          "required": ["subject", "description"]
        }
        """);

    protected override ToolResult Invoke(JsonElement input, TaskPlan plan)
    {
        var changed = plan.Create(ToolInput.RequireString(input, "subject"), ToolInput.RequireString(input, "description"),
            ToolInput.OptionalString(input, "activeForm"), Metadata(input));
        return new ToolResult($"Task #{changed.Item.Id} created successfully: {changed.Item.Subject}") { Events = [changed] };
    }
}

public sealed class TaskUpdateTool : PlanTool
{
    private static readonly string[] Statuses = ["pending", "in_progress", "completed", "deleted"];

    public override string Name => "TaskUpdate";

    public override string Description =>
        "Update a task in the task list: set status to in_progress when you start it and completed when it is fully done " +
        "(deleted removes it), change its subject, description or activeForm, or record dependencies with addBlocks/addBlockedBy.";

    public override JsonElement InputSchema { get; } = ToolInput.Schema("""
        {
          "type": "object",
          "properties": {
            "taskId": { "type": "string", "description": "The ID of the task to update" },
            "subject": { "type": "string", "description": "New subject for the task" },
            "description": { "type": "string", "description": "New description for the task" },
            "activeForm": { "type": "string", "description": "Present continuous form shown in spinner when in_progress (e.g., \"Running tests\")" },
            "status": { "type": "string", "enum": ["pending", "in_progress", "completed", "deleted"], "description": "New status for the task" },
            "addBlocks": { "type": "array", "items": { "type": "string" }, "description": "Task IDs that this task blocks" },
            "addBlockedBy": { "type": "array", "items": { "type": "string" }, "description": "Task IDs that block this task" },
            "owner": { "type": "string", "description": "New owner for the task" },
            "metadata": { "type": "object", "description": "Metadata keys to merge into the task. Set a key to null to delete it.", "additionalProperties": {} }
          },
          "required": ["taskId"]
        }
        """);

    protected override ToolResult Invoke(JsonElement input, TaskPlan plan)
    {
        var id = TaskId(input);
        var status = ToolInput.OptionalString(input, "status");
        if (status is not null && !Statuses.Contains(status))
        {
            throw new ToolException($"Parameter `status` must be one of {string.Join(", ", Statuses)}, not \"{status}\".");
        }

        if (plan.Find(id) is not { } item)
        {
            return new ToolResult($"Task #{id} not found");
        }

        var events = new List<AgentEvent>();
        var fields = new List<string>();
        var updated = item;
        if (status == "deleted")
        {
            events.Add(plan.Set(item with { Status = "deleted" }));
            return new ToolResult($"Updated task #{id} deleted") { Events = events };
        }

        void Change(string field, string? value, string? old, Func<PlanItem, PlanItem> apply)
        {
            if (value is not null && value != old)
            {
                updated = apply(updated);
                fields.Add(field);
            }
        }

        var subject = ToolInput.OptionalString(input, "subject");
        var description = ToolInput.OptionalString(input, "description");
        var activeForm = ToolInput.OptionalString(input, "activeForm");
        var owner = ToolInput.OptionalString(input, "owner");
        Change("subject", subject, item.Subject, i => i with { Subject = subject! });
        Change("description", description, item.Description, i => i with { Description = description! });
        Change("activeForm", activeForm, item.ActiveForm, i => i with { ActiveForm = activeForm });
        Change("owner", owner, item.Owner, i => i with { Owner = owner });
        if (Metadata(input) is { } metadata)
        {
            var merged = item.Metadata is { } old ? System.Text.Json.Nodes.JsonNode.Parse(old.GetRawText())!.AsObject() : [];
            foreach (var property in metadata.EnumerateObject())
            {
                if (property.Value.ValueKind == JsonValueKind.Null)
                {
                    merged.Remove(property.Name);
                }
                else
                {
                    merged[property.Name] = System.Text.Json.Nodes.JsonNode.Parse(property.Value.GetRawText());
                }
            }

            updated = updated with { Metadata = JsonSerializer.SerializeToElement(merged, OffloadJson.Info<System.Text.Json.Nodes.JsonObject>()) };
            fields.Add("metadata");
        }

        Change("status", status, item.Status, i => i with { Status = status! });
        var others = new Dictionary<string, PlanItem>(StringComparer.Ordinal);
        PlanItem Other(string other) => others.TryGetValue(other, out var o) ? o : plan.Find(other) ?? throw new ToolException($"Task #{other} not found");
        var blocks = Ids(input, "addBlocks").Where(b => b != id && !(updated.Blocks ?? []).Contains(b)).Distinct().ToList();
        foreach (var b in blocks)
        {
            var other = Other(b);
            others[b] = other with { BlockedBy = [.. other.BlockedBy ?? [], id] };
        }

        if (blocks.Count > 0)
        {
            updated = updated with { Blocks = [.. updated.Blocks ?? [], .. blocks] };
            fields.Add("blocks");
        }

        var blockedBy = Ids(input, "addBlockedBy").Where(b => b != id && !(updated.BlockedBy ?? []).Contains(b)).Distinct().ToList();
        foreach (var b in blockedBy)
        {
            var other = Other(b);
            others[b] = other with { Blocks = [.. other.Blocks ?? [], id] };
        }

        if (blockedBy.Count > 0)
        {
            updated = updated with { BlockedBy = [.. updated.BlockedBy ?? [], .. blockedBy] };
            fields.Add("blockedBy");
        }

        if (fields.Count > 0)
        {
            events.Add(plan.Set(updated));
        }

        events.AddRange(others.Values.Select(plan.Set));
        return new ToolResult($"Updated task #{id} {string.Join(", ", fields)}") { Events = events };
    }
}

public sealed class TaskListTool : PlanTool
{
    public override string Name => "TaskList";

    public override string Description => "List the tasks in the task list: id, status, subject, owner and the open tasks blocking each.";

    public override JsonElement InputSchema { get; } = ToolInput.Schema("""{ "type": "object", "properties": {} }""");

    public override bool ConcurrencySafe => true;

    protected override ToolResult Invoke(JsonElement input, TaskPlan plan)
    {
        var items = plan.Items;
        if (items.Count == 0)
        {
            return new ToolResult("No tasks found");
        }

        var done = items.Where(i => i.Status == "completed").Select(i => i.Id).ToHashSet(StringComparer.Ordinal);
        return new ToolResult(string.Join('\n', items.Select(i =>
        {
            var open = (i.BlockedBy ?? []).Where(b => !done.Contains(b)).ToList();
            return $"#{i.Id} [{i.Status}] {i.Subject}{(i.Owner is null ? "" : $" ({i.Owner})")}{(open.Count > 0 ? $" [blocked by {string.Join(", ", open.Select(b => "#" + b))}]" : "")}";
        })));
    }
}

public sealed class TaskGetTool : PlanTool
{
    public override string Name => "TaskGet";

    public override string Description => "Get a task by ID from the task list: its subject, status, full description and dependencies.";

    public override JsonElement InputSchema { get; } = ToolInput.Schema("""
        {
          "type": "object",
          "properties": { "taskId": { "type": "string", "description": "The ID of the task to retrieve" } },
          "required": ["taskId"]
        }
        """);

    public override bool ConcurrencySafe => true;

    protected override ToolResult Invoke(JsonElement input, TaskPlan plan)
    {
        if (plan.Find(TaskId(input)) is not { } item)
        {
            return new ToolResult("Task not found");
        }

        var lines = new List<string> { $"Task #{item.Id}: {item.Subject}", $"Status: {item.Status}", $"Description: {item.Description}" };
        if (item.BlockedBy is { Count: > 0 } blockedBy)
        {
            lines.Add($"Blocked by: {string.Join(", ", blockedBy.Select(b => "#" + b))}");
        }

        if (item.Blocks is { Count: > 0 } blocks)
        {
            lines.Add($"Blocks: {string.Join(", ", blocks.Select(b => "#" + b))}");
        }

        return new ToolResult(string.Join('\n', lines));
    }
}
