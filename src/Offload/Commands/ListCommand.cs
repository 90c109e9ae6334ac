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
        var json = Common.JsonOption();
        var command = new Command("list", "List tasks: id, status, age, turns, tokens, cost, plan progress (done/total), title") { all, limit, json };
        command.Aliases.Add("ls");
        command.SetAction(async (parse, ct) => await Common.WithClientAsync(async client =>
        {
            var page = await client.GetAsync<Page<TaskInfo>>($"v1/tasks?all={parse.GetValue(all)}&limit={parse.GetValue(limit)}", ct);
            if (parse.GetValue(json))
            {
                Output.Json(page.Items);
                return ExitCodes.Ok;
            }

            if (page.Items.Count == 0)
            {
                Console.Out.WriteLine("no tasks yet: offload run \"…\" starts one");
                return ExitCodes.Ok;
            }

            var now = DateTimeOffset.UtcNow;
            Console.Out.WriteLine(Output.Paint($"{"ID",-5} {"STATUS",-12} {"AGE",5} {"TURNS",5} {"TOKENS",7} {"COST",8} {"PLAN",5}  TITLE", "1"));
            foreach (var t in page.Items)
            {
                var mark = t.Status.IsFinal() && !t.Seen ? "*" : " ";
                var status = t.Status.ToWire() + (t.Discarded ? " (x)" : "");
                var title = Output.OneLine(t.Title, 60) + (t.Status is OffloadTaskStatus.Limited or OffloadTaskStatus.Failed && t.Error is not null
                    ? Output.Paint($"  ({Output.OneLine(t.Error, 60)})", "2") : "");
                Console.Out.WriteLine($"{t.Id + mark,-5} {Output.Paint(status.PadRight(12), Output.StatusColor(t.Status))} {Output.Age(t.CreatedAt, now),5} {t.Turns,5} {Output.Tokens(t.Usage.InputTokens + t.Usage.OutputTokens),7} {Output.Cost(t.Usage.CostUsd),8} {(t.Plan is { } p ? $"{p.Done}/{p.Total}" : "-"),5}  {title}");
            }

            if (page.Items.Any(t => t.Status.IsFinal() && !t.Seen))
            {
                Console.Out.WriteLine(Output.Paint("* finished, not looked at yet (offload show ID)", "2"));
            }

            return ExitCodes.Ok;
        }, cancellationToken: ct));
        return command;
    }
}
