namespace Offload.Agent;

/// <summary>
/// A task's turns and cost so far, shared by its agent and its subagents (which run at the same time), so that the task's
/// limits count every model call: each one takes the next turn number, and its cost is added when it is known.
/// </summary>
internal sealed class TaskBudget(long taskId, int turns, decimal cost, int? maxTurns, decimal? maxCost)
{
    private readonly Lock _lock = new();
    private int _turns = turns;
    private decimal _cost = cost;

    /// <summary>The model calls counted so far.</summary>
    public int Turns
    {
        get
        {
            lock (_lock)
            {
                return _turns;
            }
        }
    }

    /// <summary>
    /// Why no further model call may be made (the limit reached and what to type), or null while it may;
    /// <paramref name="extraCost"/> is spent outside the turns (the summaries of compactions).
    /// </summary>
    public string? Exceeded(decimal extraCost = 0)
    {
        lock (_lock)
        {
            var cost = _cost + extraCost;
            return _turns >= maxTurns ? $"turn limit reached ({maxTurns} turns); raise it with `offload reply {taskId} --max-turns N \"go on\"`"
                : maxCost is { } cap && cost >= cap ? $"cost limit reached (${cost:0.####} of ${cap:0.####})"
                : null;
        }
    }

    /// <summary>Counts a model call that has answered; returns its turn number.</summary>
    public int Spend(decimal cost)
    {
        lock (_lock)
        {
            _cost += cost;
            return ++_turns;
        }
    }
}
