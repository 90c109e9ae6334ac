using System.CommandLine;
using Offload.Protocol;

namespace Offload.Cli.Commands;

public static class WaitCommand
{
    public static Command Create()
    {
        var ids = Common.TaskIdsArgument("The tasks to wait for");
        var json = Common.JsonOption();
        var command = new Command("wait", "Block until the tasks end; exit 0 only if all succeeded (8 failed, 9 limited, 10 cancelled)") { ids, json };
        command.SetAction(async (parse, ct) => await Common.WithClientAsync(async client =>
        {
            var tasks = await Task.WhenAll(parse.GetValue(ids)!.Select(id => client.GetAsync<TaskInfo>($"v1/tasks/{id}/wait", ct)));
            if (parse.GetValue(json))
            {
                Output.Json(tasks);
            }
            else
            {
                foreach (var t in tasks)
                {
                    Console.Out.WriteLine($"task {t.Id} {Output.Status(t.Status)}{(t.Error is null ? "" : " · " + t.Error)}");
                }
            }

            return tasks.Select(t => t.Status switch
            {
                OffloadTaskStatus.Succeeded => ExitCodes.Ok,
                OffloadTaskStatus.Cancelled => ExitCodes.TaskCancelled,
                OffloadTaskStatus.Limited => ExitCodes.TaskLimited,
                _ => ExitCodes.TaskFailed,
            }).Max();
        }, cancellationToken: ct));
        return command;
    }
}
