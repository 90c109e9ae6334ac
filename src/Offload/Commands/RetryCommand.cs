using System.CommandLine;
using Offload.Protocol;

namespace Offload.Cli.Commands;

public static class RetryCommand
{
    public static Command Create()
    {
        var id = Common.TaskIdArgument();
        var model = new Option<string?>("--model", "-m") { Description = "Use another model for the new attempt" };
        var maxTurns = Common.MaxTurnsOption("The task's new turn limit");
        var maxCost = Common.MaxCostOption("The task's new cost limit in US dollars (all spending so far counts)");
        var timeout = Common.TimeoutOption("The wall-clock limit of the run, e.g. 20m");
        var json = Common.JsonOption();
        var command = new Command("retry", "Start a finished task again from its base in a fresh attempt; the earlier one stays on record (`show` lists attempts)")
        {
            id, model, maxTurns, maxCost, timeout, json,
        };
        command.SetAction(async (parse, ct) =>
        {
            var request = new RetryRequest(parse.GetValue(model), parse.GetValue(maxTurns), parse.GetValue(maxCost), parse.GetValue(timeout));
            return await Common.WithClientAsync(async client =>
            {
                var task = await client.PostAsync<TaskInfo>($"v1/tasks/{parse.GetValue(id)}/retry", request, ct);
                if (parse.GetValue(json))
                {
                    Output.Json(task);
                }
                else
                {
                    Console.Out.WriteLine($"task {task.Id} {task.Status.ToWire()} · a new attempt from {task.BaseRef} @ {task.BaseCommit[..Math.Min(10, task.BaseCommit.Length)]} · {task.Model}");
                }

                return ExitCodes.Ok;
            }, cancellationToken: ct);
        });
        return command;
    }
}
