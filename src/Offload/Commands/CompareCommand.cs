using System.CommandLine;
using System.Globalization;
using Offload.Protocol;

namespace Offload.Cli.Commands;

/// <summary><c>offload compare</c>: tasks side by side, one column each.</summary>
public static class CompareCommand
{
    private const int MaxColumn = 28;

    public static Command Create()
    {
        var ids = new Argument<TaskRef[]>("ids")
        {
            Description = "Two or more tasks (3 4 5), a group (g2), or one task: it and the tasks that ran it again (`run --again`)",
            Arity = ArgumentArity.ZeroOrMore,
            CustomParser = r => [.. r.Tokens.Select(t => Common.TaskOrGroup(r, t.Value))],
        };
        var tag = new Option<string?>("--tag") { Description = "Compare the tasks with this tag (the newest 20)" };
        var diff = new Option<bool>("--diff") { Description = "With two tasks A B: how B's branch differs from A's" };
        var json = Common.JsonOption();
        var command = new Command("compare",
            "Tasks side by side: prompt, model, engine, status, check, turns, tokens, cost, time, retries, approvals, files changed and test commands")
        {
            ids, tag, diff, json,
        };
        command.SetAction(async (parse, ct) => await Common.WithClientAsync(async client =>
        {
            var refs = parse.GetValue(ids) ?? [];
            var byTag = parse.GetValue(tag);
            if (parse.GetValue(diff))
            {
                if (refs is not [{ IsGroup: false } a, { IsGroup: false } b] || byTag is not null)
                {
                    throw new CliException(ExitCodes.BadInput, "--diff compares the branches of exactly two tasks", "offload compare --diff 3 4");
                }

                var text = await client.GetTextAsync($"v1/compare/diff?a={a.Id}&b={b.Id}", ct);
                if (!parse.GetValue(json))
                {
                    Console.Out.WriteLine(Output.Paint($"# a/ is task {a.Id}'s branch, b/ is task {b.Id}'s", "2"));
                }

                Console.Out.Write(text.Length == 0 ? $"tasks {a.Id} and {b.Id} have the same files\n" : text);
                return ExitCodes.Ok;
            }

            string query;
            if (byTag is not null)
            {
                if (refs.Length > 0)
                {
                    throw new CliException(ExitCodes.BadInput, "give either tasks or --tag, not both");
                }

                query = "tag=" + Uri.EscapeDataString(byTag);
            }
            else if (refs is [{ IsGroup: true } group])
            {
                query = "group=" + group.Id.ToString(CultureInfo.InvariantCulture);
            }
            else if (refs.Length == 0 || refs.Any(r => r.IsGroup))
            {
                throw new CliException(ExitCodes.BadInput, refs.Length == 0 ? "nothing to compare" : "compare one group at a time, without tasks next to it",
                    "`offload compare 3 4`, `offload compare g2`, `offload compare 3` (its series) or `offload compare --tag T`");
            }
            else
            {
                query = "ids=" + string.Join(",", refs.Select(r => r.Id.ToString(CultureInfo.InvariantCulture)));
            }

            var compared = await client.GetAsync<CompareResponse>("v1/compare?" + query, ct);
            if (parse.GetValue(json))
            {
                Output.Json(compared);
            }
            else
            {
                Print(compared);
            }

            return ExitCodes.Ok;
        }, cancellationToken: ct));
        return command;
    }

    private static void Print(CompareResponse compared)
    {
        var tasks = compared.Tasks;
        var w = Console.Out;
        w.WriteLine(Output.Paint($"compare {compared.Of}", "1"));
        var prompts = Prompts(tasks.Select(t => t.Task.Prompt).ToList());
        if (prompts is null)
        {
            w.WriteLine($"prompt (the same for all): {Output.OneLine(tasks[0].Task.Prompt, 100)}");
        }

        var rows = new List<(string Label, string[] Cells)>
        {
            ("task", [.. tasks.Select(t => "#" + Id(t.Task.Id))]),
        };
        if (prompts is not null)
        {
            rows.Add(("prompt", [.. prompts]));
        }

        rows.AddRange(
        [
            ("model", [.. tasks.Select(t => t.Task.Model)]),
            ("engine", [.. tasks.Select(t => t.Task.Engine)]),
            ("status", [.. tasks.Select(t => t.Task.Status.ToWire())]),
            ("check", [.. tasks.Select(t => t.Check is { } c ? (c.Passed ? "passed" : "FAILED") + $" (try {c.Try})" : t.Task.Check is null ? "-" : "not run")]),
            ("turns", [.. tasks.Select(t => Id(t.Task.Turns))]),
            ("tokens in", [.. tasks.Select(t => Output.Tokens(t.Task.Usage.InputTokens))]),
            ("tokens out", [.. tasks.Select(t => Output.Tokens(t.Task.Usage.OutputTokens))]),
            ("cached", [.. tasks.Select(t => Output.Tokens(t.Task.CacheReadTokens))]),
            ("cost", [.. tasks.Select(t => Output.Cost(t.Task.Usage.CostUsd))]),
            ("time", [.. tasks.Select(t => Output.Duration(TimeSpan.FromSeconds(t.RunSeconds)))]),
            ("retries", [.. tasks.Select(t => Id(t.Task.Retries))]),
            ("approvals", [.. tasks.Select(t => Id(t.Task.Approvals))]),
            ("files", [.. tasks.Select(t => $"{t.Files.Count} (+{t.Files.Sum(f => f.Added)} −{t.Files.Sum(f => f.Deleted)})")]),
            ("tests", [.. tasks.Select(t => t.Tests is [.., var last] ? $"{t.Tests.Count} run, last exit {(last.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "?")}" : "-")]),
        ]);

        // Each changed file: its +/- per task.
        foreach (var path in tasks.SelectMany(t => t.Files.Select(f => f.Path)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            rows.Add(("  " + path, [.. tasks.Select(t => t.Files.FirstOrDefault(f => f.Path == path) is { } f ? $"+{f.Added} −{f.Deleted}" : "")]));
        }

        var labelWidth = Math.Min(rows.Max(r => r.Label.Length), 30);
        var widths = Enumerable.Range(0, tasks.Count).Select(i => Math.Min(rows.Max(r => r.Cells[i].Length), MaxColumn)).ToArray();
        foreach (var (label, cells) in rows)
        {
            var shown = label.StartsWith("  ", StringComparison.Ordinal) ? "  " + Output.OneLine(label[2..], labelWidth - 2) : Output.OneLine(label, labelWidth);
            var line = shown.PadRight(labelWidth) + "  "
                + string.Join("  ", cells.Select((c, i) => Output.OneLine(c, widths[i]).PadRight(widths[i])));
            w.WriteLine(label == "task" ? Output.Paint(line.TrimEnd(), "1") : line.TrimEnd());
        }

        var withTests = tasks.Where(t => t.Tests.Count > 0).ToList();
        if (withTests.Count > 0)
        {
            w.WriteLine();
            w.WriteLine(Output.Paint("test commands", "1"));
            foreach (var t in withTests)
            {
                foreach (var run in t.Tests)
                {
                    w.WriteLine($"  #{Id(t.Task.Id)}  turn {Id(run.Turn)}  `{Output.OneLine(run.Command, 70)}` exited {run.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "?"}");
                }
            }
        }
    }

    /// <summary>Null when every prompt is the same; otherwise each prompt's part that differs (common words at both ends cut to "…").</summary>
    internal static IReadOnlyList<string>? Prompts(IReadOnlyList<string> prompts)
    {
        if (prompts.Distinct(StringComparer.Ordinal).Count() <= 1)
        {
            return null;
        }

        var words = prompts.Select(p => p.Split((char[])[' ', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries)).ToList();
        var shortest = words.Min(w => w.Length);
        var prefix = 0;
        while (prefix < shortest && words.All(w => w[prefix] == words[0][prefix]))
        {
            prefix++;
        }

        var suffix = 0;
        while (suffix < shortest - prefix && words.All(w => w[^(suffix + 1)] == words[0][^(suffix + 1)]))
        {
            suffix++;
        }

        return [.. words.Select(w => (prefix > 0 ? "…" : "") + string.Join(' ', w[prefix..^suffix]) + (suffix > 0 ? "…" : ""))];
    }

    private static string Id(long n) => n.ToString(CultureInfo.InvariantCulture);
}
