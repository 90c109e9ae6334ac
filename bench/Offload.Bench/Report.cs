using System.Globalization;

namespace Offload.Bench;

/// <summary>One line of the result: Offload's figure, the comparison it names, the goal, and whether it was met.</summary>
public sealed record Figure(string Name, string Offload, string Comparison, string Goal, bool? Met, string Notes = "");

public static class Report
{
    public static void Print(IReadOnlyList<Figure> figures, TextWriter w)
    {
        w.WriteLine();
        w.WriteLine("| figure | Offload | comparison | goal | met |");
        w.WriteLine("|---|---|---|---|---|");
        foreach (var f in figures)
        {
            var met = f.Met switch { true => "yes", false => "**no**", null => "—" };
            w.WriteLine($"| {f.Name} | {f.Offload} | {f.Comparison} | {f.Goal} | {met} |");
        }

        var notes = figures.Where(f => f.Notes.Length > 0).ToList();
        if (notes.Count > 0)
        {
            w.WriteLine();
            foreach (var f in notes)
            {
                w.WriteLine($"- {f.Name}: {f.Notes}");
            }
        }
    }
}

public static class Stats
{
    public static double Median(IEnumerable<double> values) => Percentile(values, 50);

    /// <summary>Nearest-rank percentile.</summary>
    public static double Percentile(IEnumerable<double> values, double p)
    {
        var sorted = values.OrderBy(v => v).ToArray();
        if (sorted.Length == 0)
        {
            return double.NaN;
        }

        var rank = (int)Math.Ceiling(p / 100 * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }

    public static string Ms(double ms) => ms >= 10 ? ms.ToString("0", CultureInfo.InvariantCulture) + " ms"
        : ms.ToString("0.0#", CultureInfo.InvariantCulture) + " ms";

    public static string MiB(double mib) => mib.ToString(mib >= 100 ? "0" : "0.#", CultureInfo.InvariantCulture) + " MiB";

    public static string X(double ratio) => ratio.ToString(ratio >= 10 ? "0" : "0.#", CultureInfo.InvariantCulture) + "×";

    public static string N(double n, string format = "0.#") => n.ToString(format, CultureInfo.InvariantCulture);
}
