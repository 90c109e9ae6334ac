using System.CommandLine;
using Offload.Protocol;

namespace Offload.Cli.Commands;

public static class CancelCommand
{
    public static Command Create()
    {
        var id = Common.TaskIdArgument();
        var json = Common.JsonOption();
        var command = new Command("cancel", "Stop a queued or running task (its process tree is killed; its work so far is committed)") { id, json };
        command.SetAction(async (parse, ct) => await Common.WithClientAsync(async client =>
        {
            var task = await client.PostAsync<TaskInfo>($"v1/tasks/{parse.GetValue(id)}/cancel", null, ct);
            if (parse.GetValue(json))
            {
                Output.Json(task);
            }
            else
            {
                Console.Out.WriteLine($"task {task.Id} {Output.Status(task.Status)}");
            }

            return ExitCodes.Ok;
        }, cancellationToken: ct));
        return command;
    }
}
