using System.CommandLine;
using Offload.Protocol;

namespace Offload.Cli.Commands;

public static class ReplyCommand
{
    public static Command Create()
    {
        var id = Common.TaskIdArgument();
        var text = new Argument<string>("message") { Description = "What the agent should do next; `-` reads it from stdin" };
        var maxTurns = new Option<int?>("--max-turns") { Description = "The task's new turn limit (all turns so far count)" };
        var maxCost = new Option<decimal?>("--max-cost") { Description = "The task's new cost limit in US dollars (all spending so far counts)" };
        var timeout = new Option<string?>("--timeout") { Description = "The wall-clock limit of the run, e.g. 20m" };
        var json = Common.JsonOption();
        var command = new Command("reply", "Continue a finished task with a new message: same conversation, worktree and branch")
        {
            id, text, maxTurns, maxCost, timeout, json,
        };
        command.SetAction(async (parse, ct) =>
        {
            var message = parse.GetValue(text) == "-" ? Console.In.ReadToEnd() : parse.GetValue(text)!;
            var request = new ReplyRequest(message, parse.GetValue(maxTurns), parse.GetValue(maxCost), RunCommand.ParseDuration(parse.GetValue(timeout)));
            return await Common.WithClientAsync(async client =>
            {
                var task = await client.PostAsync<TaskInfo>($"v1/tasks/{parse.GetValue(id)}/reply", request, ct);
                if (parse.GetValue(json))
                {
                    Output.Json(task);
                }
                else
                {
                    Console.Out.WriteLine($"task {task.Id} {task.Status.ToWire()} · goes on in branch {task.Branch}");
                    if (!Console.IsOutputRedirected)
                    {
                        Console.Out.WriteLine(Output.Paint($"  offload logs {task.Id} -f   ·   offload wait {task.Id}", "2"));
                    }
                }

                return ExitCodes.Ok;
            }, cancellationToken: ct);
        });
        return command;
    }
}
