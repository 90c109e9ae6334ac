using System.Text.Json;
using Offload.Simulator;

namespace Offload.Bench;

/// <summary>The scripted model answers each figure needs (the Simulator's scenario format, docs/simulator.md).</summary>
public static class Scenarios
{
    public const string Prompt = "add a one-line greeting to README.md";

    /// <summary>One answer, no tools: the task ends after one turn.</summary>
    public static Scenario Final(string name = "final") => Make(name, new { text = "Done: nothing to change." });

    /// <summary>A task that keeps working: each turn reads a file after <paramref name="delayMs"/>.</summary>
    public static Scenario Endless(string name, int delayMs) =>
        Make(name, new { text = "", toolCalls = new[] { Read }, delayMs, repeat = 1_000_000 });

    /// <summary><paramref name="turns"/> tool turns (each after <paramref name="delayMs"/>), then a final answer.</summary>
    public static Scenario Tools(string name, object tool, int turns, int delayMs, int firstDelayMs = -1)
    {
        var steps = new List<object>();
        if (firstDelayMs >= 0)
        {
            steps.Add(new { text = "", toolCalls = new[] { tool }, delayMs = firstDelayMs });
            turns--;
        }

        steps.Add(new { text = "", toolCalls = new[] { tool }, delayMs, repeat = turns });
        steps.Add(new { text = "Done.", delayMs });
        return Make(name, [.. steps]);
    }

    public static readonly object Read = new { name = "Read", input = new { file_path = "README.md" } };

    /// <summary>Turn N reads src/moduleN.py (the Simulator puts the turn's number in place of <c>{{turn}}</c>).</summary>
    public static readonly object ReadModule = new { name = "Read", input = new { file_path = "src/module" + SimulatorServer.TurnPlaceholder + ".py" } };

    public static readonly object Glob = new { name = "Glob", input = new { pattern = "*.md" } };

    private static Scenario Make(string name, params object[] turns) =>
        Scenario.Parse(JsonSerializer.Serialize(new { name, turns }));
}
