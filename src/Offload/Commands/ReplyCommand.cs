using System.CommandLine;
using Offload.Protocol;

namespace Offload.Cli.Commands;

public static class ReplyCommand
{
    public static Command Create()
    {
        var id = Common.TaskIdArgument();
        var text = new Argument<string>("message") { Description = "What the agent should do next; `-` reads it from stdin" };
        var maxTurns = Common.MaxTurnsOption("The task's new turn limit (all turns so far count)");
        var maxCost = Common.MaxCostOption("The task's new cost limit in US dollars (all spending so far counts)");
        var timeout = Common.TimeoutOption("The wall-clock limit of the run, e.g. 20m");
        var json = Common.JsonOption();
        var command = new Command("reply", "Continue a finished task with a new message: same conversation, worktree and branch")
        {
            id, text, maxTurns, maxCost, timeout, json,
        };
        command.SetAction(async (parse, ct) =>
        {
            var message = parse.GetValue(text) == "-" ? Common.Utf8(Common.ReadStdin(), "the reply read from stdin") : parse.GetValue(text)!;
            if (message.Contains('\0', StringComparison.Ordinal))
            {
                throw new CliException(ExitCodes.BadInput, "the reply contains a NUL byte, so it is not text; was a binary file given by mistake?",
                    "give plain text; to show the agent a binary file, put it in the worktree and name its path in the reply");
            }

            var request = new ReplyRequest(message, parse.GetValue(maxTurns), parse.GetValue(maxCost), parse.GetValue(timeout));
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
