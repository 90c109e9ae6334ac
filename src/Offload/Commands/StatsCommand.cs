using System.CommandLine;
using System.Globalization;
using Offload.Protocol;

namespace Offload.Cli.Commands;

/// <summary><c>offload stats</c>: how tasks did across time, split by model, repository, day, status or tag.</summary>
public static class StatsCommand
{
    private const int BarWidth = 30;

    public static Command Create()
    {
        var since = new Option<DateTimeOffset?>("--since")
        {
            Description = "Only tasks created since then: a span back from now (90m, 24h, 7d, 2w) or a date (2026-12-01)",
            CustomParser = r => ParseSince(r.Tokens[0].Value) ?? Refuse(r),
        };
        var by = new Option<string?>("--by") { Description = "Split by model, repo, day (drawn as bars), status or tag" };
        by.AcceptOnlyFromAmong("model", "repo", "day", "status", "tag");
        var tag = new Option<string?>("--tag") { Description = "Only tasks with this tag" };
        var json = Common.JsonOption();
        var command = new Command("stats",
            "Figures across tasks: how many, success and check pass rates, median and p90 wall time, turns, tokens, cost, retries, approvals, compactions")
        {
            since, by, tag, json,
        };
        command.SetAction(async (parse, ct) => await Common.WithClientAsync(async client =>
        {
            var query = new List<string>();
            if (parse.GetValue(since) is { } from)
            {
                query.Add("since=" + Uri.EscapeDataString(from.ToString("O", CultureInfo.InvariantCulture)));
            }

            if (parse.GetValue(by) is { } split)
            {
                query.Add("by=" + split);
            }

            if (parse.GetValue(tag) is { Length: > 0 } t)
            {
                query.Add("tag=" + Uri.EscapeDataString(t));
            }

            query.Add("tz=" + ((int)TimeZoneInfo.Local.GetUtcOffset(DateTimeOffset.UtcNow).TotalMinutes).ToString(CultureInfo.InvariantCulture));
            var stats = await client.GetAsync<StatsResponse>("v1/stats?" + string.Join("&", query), ct);
            if (parse.GetValue(json))
            {
                Output.Json(stats);
            }
            else
            {
                Print(stats, parse.GetValue(tag));
            }

            return ExitCodes.Ok;
        }, cancellationToken: ct));
        return command;
    }

    internal static DateTimeOffset? ParseSince(string text)
    {
        if (DateTimeOffset.TryParseExact(text, ["yyyy-MM-dd", "yyyy-MM-ddTHH:mm", "yyyy-MM-ddTHH:mm:ss"], CultureInfo.InvariantCulture, DateTimeStyles.AssumeLocal, out var at))
        {
            return at;
        }

        if (text.Length >= 2 && long.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0)
        {
            TimeSpan? span = text[^1] switch
            {
                'm' => TimeSpan.FromMinutes(n),
                'h' => TimeSpan.FromHours(n),
                'd' => TimeSpan.FromDays(n),
                'w' => TimeSpan.FromDays(7 * n),
                _ => null,
            };
            if (span is { } back && back < TimeSpan.FromDays(36_500))
            {
                return DateTimeOffset.Now - back;
            }
        }

        return null;
    }

    private static DateTimeOffset? Refuse(System.CommandLine.Parsing.ArgumentResult result)
    {
        result.AddError($"--since takes a span back from now (90m, 24h, 7d, 2w) or a date (2026-12-01), not '{result.Tokens[0].Value}'");
        return null;
    }

    private static void Print(StatsResponse stats, string? tag)
    {
        var w = Console.Out;
        var total = stats.Total;
        w.WriteLine(Output.Paint($"stats · {(stats.Since is { } s ? "since " + s.ToLocalTime().ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture) : "all time")}"
            + (tag is null ? "" : $" · tag {tag}") + $" · {total.Tasks} task{(total.Tasks == 1 ? "" : "s")}", "1"));
        if (total.Tasks == 0)
        {
            w.WriteLine("no tasks in that time: `offload stats` without --since counts every task");
            return;
        }

        if (stats.By == "day")
        {
            var most = stats.Rows.Max(r => r.Tasks);
            var mostCost = stats.Rows.Max(r => r.CostUsd);
            w.WriteLine(Output.Paint($"{"DAY",-10}  {"TASKS",-(BarWidth + 5)}  {"COST",-(BarWidth / 2 + 9)}  OK", "1"));
            foreach (var r in stats.Rows)
            {
                var bar = new string('█', Math.Max(1, (int)Math.Round((double)r.Tasks / most * BarWidth)));
                var costBar = mostCost == 0 ? "" : new string('▒', (int)Math.Round((double)(r.CostUsd / mostCost) * (BarWidth / 2)));
                w.WriteLine($"{r.Key,-10}  {Output.Paint(bar, "36")}{new string(' ', BarWidth - bar.Length)} {r.Tasks,4}  {Output.Paint(costBar, "33")}{new string(' ', BarWidth / 2 - costBar.Length)} {Output.Cost(r.CostUsd),8}  {Percent(r.SuccessRate)}");
            }

            w.WriteLine();
        }

        var keyWidth = Math.Clamp(stats.Rows.Select(r => r.Key.Length).DefaultIfEmpty(3).Max(), 5, 40);
        w.WriteLine(Output.Paint($"{(stats.By ?? "").ToUpperInvariant().PadRight(keyWidth)}  {"TASKS",5} {"OK",5} {"CHECK",5} {"MEDIAN",7} {"P90",7} {"TURNS",6} {"TOKENS",7} {"CACHED",7} {"COST",9} {"RETRY",5} {"ASKED",5} {"COMPACT",7}", "1"));
        foreach (var r in stats.Rows.Append(total))
        {
            var key = ReferenceEquals(r, total) ? "all" : Output.OneLine(r.Key, keyWidth);
            var line = $"{key.PadRight(keyWidth)}  {r.Tasks,5} {Percent(r.SuccessRate),5} {Percent(r.CheckPassRate),5} {Seconds(r.MedianSeconds),7} {Seconds(r.P90Seconds),7} {r.Turns,6} "
                + $"{Output.Tokens(r.InputTokens + r.OutputTokens),7} {Output.Tokens(r.CacheReadTokens),7} {Output.Cost(r.CostUsd),9} {r.Retries,5} {r.Approvals,5} {r.Compactions,7}";
            w.WriteLine(ReferenceEquals(r, total) && stats.Rows.Count > 0 ? Output.Paint(line, "1") : line);
        }

        w.WriteLine(Output.Paint($"OK: succeeded of ended ({total.Succeeded}/{total.Ended}) · CHECK: checks passed of tasks checked ({total.CheckPassed}/{total.Checked}) · MEDIAN, P90: wall time of ended tasks · ASKED: approvals asked", "2"));
    }

    private static string Percent(double? rate) => rate is { } r ? (r * 100).ToString("0", CultureInfo.InvariantCulture) + "%" : "-";

    private static string Seconds(double? seconds) => seconds is { } s ? Output.Duration(TimeSpan.FromSeconds(s)) : "-";
}
