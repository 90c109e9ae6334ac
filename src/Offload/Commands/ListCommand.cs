using System.CommandLine;
using System.Globalization;
using Offload.Protocol;

namespace Offload.Cli.Commands;

public static class ListCommand
{
    public static Command Create()
    {
        var all = new Option<bool>("--all", "-a") { Description = "Include discarded tasks" };
        var limit = new Option<int>("--limit", "-n")
        {
            Description = "How many tasks to show, newest first",
            HelpName = "N",
            DefaultValueFactory = _ => 50,
            CustomParser = r =>
            {
                if (int.TryParse(r.Tokens[0].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0)
                {
                    return n;
                }

                r.AddError($"--limit takes a whole number above 0, not '{r.Tokens[0].Value}'");
                return 0;
            },
        };
        var tag = new Option<string?>("--tag") { Description = "Only tasks with this tag (`run --tag`)" };
        var grep = new Option<string?>("--grep") { Description = "Only tasks whose prompt or title contains this text (any case)" };
        var expand = new Option<bool>("--expand", "-e") { Description = "Unfold best-of-N groups: one line per task under each group's line" };
        var group = new Argument<TaskRef?>("group")
        {
            Description = "A best-of-N group (g3): list its tasks",
            Arity = ArgumentArity.ZeroOrOne,
            CustomParser = r => Common.TaskOrGroup(r, r.Tokens[0].Value) switch
            {
                { IsGroup: true } named => named,
                _ when r.Tokens[0].Value.All(char.IsAsciiDigit) => Refuse(r, r.Tokens[0].Value), // a task number
                _ => null, // neither: TaskOrGroup said so
            },
        };
        var json = Common.JsonOption();
        var command = new Command("list",
            "List tasks: id, status, age, turns, tokens, cost, plan progress (done/total), title; a best-of-N group is one line (gN) that `--expand` or `ls gN` unfolds")
        {
            group, all, limit, tag, grep, expand, json,
        };
        command.Aliases.Add("ls");
        command.SetAction(async (parse, ct) => await Common.WithClientAsync(async client =>
        {
            var query = $"v1/tasks?all={parse.GetValue(all)}&limit={parse.GetValue(limit)}";
            if (parse.GetValue(tag) is { Length: > 0 } t0)
            {
                query += "&tag=" + Uri.EscapeDataString(t0);
            }

            if (parse.GetValue(grep) is { Length: > 0 } g0)
            {
                query += "&grep=" + Uri.EscapeDataString(g0);
            }

            var onlyGroup = parse.GetValue(group);
            if (onlyGroup is { } og)
            {
                query += $"&group={og.Id}";
            }

            var page = await client.GetAsync<Page<TaskInfo>>(query, ct);
            if (parse.GetValue(json))
            {
                Output.Json(page.Items);
                return ExitCodes.Ok;
            }

            if (page.Items.Count == 0)
            {
                Console.Out.WriteLine(onlyGroup is { } none ? $"there is no group {none}"
                    : parse.GetValue(tag) is not null || parse.GetValue(grep) is not null ? "no task matches" : "no tasks yet: offload run \"…\" starts one");
                return onlyGroup is null ? ExitCodes.Ok : ExitCodes.NotFound;
            }

            var now = DateTimeOffset.UtcNow;
            var unfold = parse.GetValue(expand) || onlyGroup is not null;
            Console.Out.WriteLine(Output.Paint($"{"ID",-5} {"STATUS",-12} {"AGE",5} {"TURNS",5} {"TOKENS",7} {"COST",8} {"PLAN",5}  TITLE", "1"));
            var shown = new HashSet<long>();
            foreach (var t in page.Items)
            {
                if (t.Group is { } g && onlyGroup is null)
                {
                    if (!shown.Add(g))
                    {
                        continue;
                    }

                    var members = page.Items.Where(m => m.Group == g).OrderBy(m => m.Id).ToList();
                    Console.Out.WriteLine(GroupLine(g, members, now));
                    if (unfold)
                    {
                        foreach (var m in members)
                        {
                            Console.Out.WriteLine(TaskLine(m, now, indent: true));
                        }
                    }

                    continue;
                }

                Console.Out.WriteLine(TaskLine(t, now, indent: false));
            }

            if (page.Items.Any(t => t.Status.IsFinal() && !t.Seen))
            {
                Console.Out.WriteLine(Output.Paint("* finished, not looked at yet (offload show ID)", "2"));
            }

            return ExitCodes.Ok;
        }, cancellationToken: ct));
        return command;
    }

    private static TaskRef? Refuse(System.CommandLine.Parsing.ArgumentResult result, string value)
    {
        result.AddError($"'{value}' is not a group: groups are named like g3 (`offload ls` shows them)");
        return null;
    }

    private static string TaskLine(TaskInfo t, DateTimeOffset now, bool indent)
    {
        var mark = t.Status.IsFinal() && !t.Seen ? "*" : " ";
        var status = t.Status.ToWire() + (t.Discarded ? " (x)" : "");
        var title = (indent ? t.Model : Output.OneLine(t.Title, 60)) + (t.Status is OffloadTaskStatus.Limited or OffloadTaskStatus.Failed && t.Error is not null
            ? Output.Paint($"  ({Output.OneLine(t.Error, 60)})", "2") : "");
        var id = (indent ? " " : "") + t.Id + mark;
        return $"{id,-5} {Output.Paint(status.PadRight(12), Output.StatusColor(t.Status))} {Output.Age(t.CreatedAt, now),5} {t.Turns,5} {Output.Tokens(t.Usage.InputTokens + t.Usage.OutputTokens),7} {Output.Cost(t.Usage.CostUsd),8} {(t.Plan is { } p ? $"{p.Done}/{p.Total}" : "-"),5}  {title}";
    }

    /// <summary>A group folded into one line: how many of its tasks ended, their sums, and its models.</summary>
    private static string GroupLine(long group, IReadOnlyList<TaskInfo> tasks, DateTimeOffset now)
    {
        var ended = tasks.Count(t => t.Status.IsFinal());
        var status = ended == tasks.Count ? $"done {tasks.Count(t => t.Status == OffloadTaskStatus.Succeeded)}/{tasks.Count}" : $"running {ended}/{tasks.Count}";
        var color = ended < tasks.Count ? Output.StatusColor(OffloadTaskStatus.Running)
            : tasks.Any(t => t.Status == OffloadTaskStatus.Succeeded) ? Output.StatusColor(OffloadTaskStatus.Succeeded) : Output.StatusColor(OffloadTaskStatus.Failed);
        var models = tasks.Select(t => t.Model).Distinct(StringComparer.Ordinal).ToList();
        var title = Output.OneLine(tasks[0].Title, 40) + Output.Paint($"  ({tasks.Count} tasks on {string.Join(", ", models)})", "2");
        return $"{"g" + group,-5} {Output.Paint(status.PadRight(12), color)} {Output.Age(tasks.Min(t => t.CreatedAt), now),5} {tasks.Sum(t => t.Turns),5} " +
            $"{Output.Tokens(tasks.Sum(t => t.Usage.InputTokens + t.Usage.OutputTokens)),7} {Output.Cost(tasks.Sum(t => t.Usage.CostUsd)),8} {"-",5}  {title}";
    }
}
