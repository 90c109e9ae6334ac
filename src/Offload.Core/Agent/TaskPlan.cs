using System.Text.Json;
using Offload.Protocol;

namespace Offload.Agent;

/// <summary>
/// The agent's plan (Claude Code's task list) and whether the task is still in plan mode, both derived from the journal:
/// each item is its latest <see cref="PlanItemChanged"/> in the conversation as it stands, and plan mode lasts from a
/// <c>--plan-first</c> <see cref="TaskCreated"/> until a <see cref="PlanApproved"/>. So a restart, a rewind or a retry
/// finds the plan the model last saw. The plan tools change it one call at a time (they are not concurrency-safe).
/// </summary>
public sealed class TaskPlan
{
    /// <summary>Where the agent in plan mode writes its plan, relative to the worktree; the only file it may write then.</summary>
    public const string PlanFile = ".offload/plan.md";

    private readonly List<PlanItem> _items;

    private TaskPlan(List<PlanItem> items, bool planMode)
    {
        _items = items;
        PlanMode = planMode;
    }

    /// <summary>True until the user approves the plan of a <c>--plan-first</c> task: only reading, searching and planning run.</summary>
    public bool PlanMode { get; private set; }

    /// <summary>The items not deleted, in the order they were made.</summary>
    public IReadOnlyList<PlanItem> Items => _items.Where(i => i.Status != "deleted").ToList();

    public PlanProgress Progress => new(Items.Count(i => i.Status == "completed"), Items.Count);

    /// <param name="current">The conversation as it stands (<see cref="Conversation.Current"/>).</param>
    public static TaskPlan From(IReadOnlyList<AgentEvent> current)
    {
        var items = new List<PlanItem>();
        foreach (var changed in current.OfType<PlanItemChanged>())
        {
            var at = items.FindIndex(i => i.Id == changed.Item.Id);
            if (at < 0)
            {
                items.Add(changed.Item);
            }
            else
            {
                items[at] = changed.Item;
            }
        }

        var planFirst = current.OfType<TaskCreated>().FirstOrDefault()?.PlanFirst ?? false;
        return new TaskPlan(items, planFirst && !current.OfType<PlanApproved>().Any());
    }

    public PlanItem? Find(string id) => _items.FirstOrDefault(i => i.Id == id && i.Status != "deleted");

    public PlanItemChanged Create(string subject, string description, string? activeForm, JsonElement? metadata)
    {
        var next = _items.Select(i => int.TryParse(i.Id, out var n) ? n : 0).DefaultIfEmpty(0).Max() + 1;
        return Set(new PlanItem(next.ToString(System.Globalization.CultureInfo.InvariantCulture), subject, description, "pending", activeForm, Blocks: [], BlockedBy: [], Metadata: metadata));
    }

    /// <summary>Stores the item as it now is and returns the event that records it.</summary>
    public PlanItemChanged Set(PlanItem item)
    {
        var at = _items.FindIndex(i => i.Id == item.Id);
        if (at < 0)
        {
            _items.Add(item);
        }
        else
        {
            _items[at] = item;
        }

        var progress = Progress;
        return new PlanItemChanged(item, progress.Done, progress.Total);
    }

    public void Approve() => PlanMode = false;
}
