namespace Offload.Simulator;

/// <summary>
/// Remembers, per conversation and turn, how far down a turn's fault list the requests have got, so a retry of
/// the same turn meets the next fault and finally the real answer.
/// </summary>
internal sealed class FaultBook
{
    private readonly Dictionary<string, (int Index, int Used)> _cursors = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <summary>The fault this request meets, or null when the turn's faults are used up.</summary>
    public ScenarioFault? Next(string key, IReadOnlyList<ScenarioFault> faults)
    {
        if (faults.Count == 0)
        {
            return null;
        }

        lock (_lock)
        {
            _cursors.TryGetValue(key, out var cursor);
            if (cursor.Index >= faults.Count)
            {
                return null;
            }

            var fault = faults[cursor.Index];
            cursor.Used++;
            _cursors[key] = cursor.Used >= fault.Times ? (cursor.Index + 1, 0) : cursor;
            return fault;
        }
    }
}
