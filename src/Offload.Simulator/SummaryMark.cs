using System.Globalization;
using System.Text.RegularExpressions;

namespace Offload.Simulator;

/// <summary>
/// The line the Simulator puts under every summary it writes: how many turns the summary covers and which conversation
/// it came from. A client that starts its compacted conversation with the summary (as Offload and Claude Code do)
/// carries the line along, so later requests keep their turn index and their faults: the Simulator keeps no state.
/// </summary>
internal sealed partial record SummaryMark(int Turns, string Conversation)
{
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"[simulator: this summary covers {Turns} turns of conversation {Conversation}]");

    /// <summary>The last mark in <paramref name="text"/>, or null.</summary>
    public static SummaryMark? Find(string text)
    {
        var matches = Pattern().Matches(text);
        return matches.Count == 0
            ? null
            : new SummaryMark(int.Parse(matches[^1].Groups[1].Value, CultureInfo.InvariantCulture), matches[^1].Groups[2].Value);
    }

    [GeneratedRegex(@"\[simulator: this summary covers (\d+) turns of conversation ([0-9A-F]+)\]")]
    private static partial Regex Pattern();
}
